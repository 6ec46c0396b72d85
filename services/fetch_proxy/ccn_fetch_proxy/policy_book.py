"""Every domain's policy, in memory: what the fetch proxy checks a URL's host against.

Folded from CCN_POLICY with the domain-policy decider's own `evolve`: a replay of the stream as
it stands at start, then an ordered push consumer from the next sequence, so a change an admin
makes reaches every proxy replica within moments and no read model stands in the way
(ARCHITECTURE.md: the write side never waits on a read model). Until the replay is done the
book is not ready, and a proxy that is not ready refuses to fetch rather than guess.

`policy_for(host)` resolves subdomains: the host's own entry wins; failing that, the nearest
parent entry that reaches it, where a blocked parent reaches every subdomain and an allowed
parent only those of a policy with include_subdomains. So `www.example.org` under an allowed
`example.org` (subdomains included) is allowed within example.org's limits, a block of
`example.org` blocks `www.example.org` unless that host has an entry of its own, and a host
with no entry that reaches it has no policy (not on the allow-list: refused).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import msgspec
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from ccn_core.domain.domain_policy import DomainPolicyDecider, DomainPolicyState, canonical_domain, policy_id
from ccn_core.errors import BadInput
from ccn_core.eventstore import EVERY_EVENT, EventStore
from ccn_core.logging import get_logger
from ccn_core.topology import POLICY
from ccn_proto.domains import DomainEvent
from ccn_proto.envelope import Envelope

log = get_logger("ccn.fetch_proxy.policy_book")
_decode = msgspec.json.Decoder(Envelope[DomainEvent]).decode
# far above any allow-list this project keeps (an import holds at most 20,000 rows), low enough
# that a flood of policy events cannot exhaust a proxy's memory
DEFAULT_MAX_DOMAINS = 1_000_000


class PolicyBook:
    def __init__(self, *, max_domains: int = DEFAULT_MAX_DOMAINS) -> None:
        self._decider = DomainPolicyDecider()
        self._max_domains = max_domains
        self._policies: dict[str, DomainPolicyState] = {}  # by policy id
        self._ready = asyncio.Event()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._subscription: Any = None
        self._full_logged = False
        self.last_seq = 0
        self.skipped = 0  # events that did not decode, or did not fit

    def __len__(self) -> int:
        return len(self._policies)

    @property
    def ready(self) -> bool:
        """The replay is done and changes are followed."""
        return self._ready.is_set()

    def policy(self, domain: str) -> DomainPolicyState | None:
        """The entry of exactly this canonical domain, if it has one."""
        state = self._policies.get(policy_id(domain))
        return state if state is not None and state.status != "unreviewed" else None

    def policy_for(self, host: str) -> DomainPolicyState | None:
        """The policy that governs fetches from `host` (a host name, any case, Unicode or IDNA),
        or None when no entry reaches it (or it is not a domain name at all)."""
        try:
            domain = canonical_domain(host)
        except BadInput:
            return None
        labels = domain.split(".")
        for start in range(len(labels) - 1):  # a public suffix alone is never a policy
            state = self.policy(".".join(labels[start:]))
            if state is None:
                continue
            if start == 0 or state.status == "blocked" or state.limits.include_subdomains:
                return state
        return None

    def apply(self, aggregate_id: str, event: DomainEvent) -> None:
        before = self._policies.get(aggregate_id)
        if before is None and len(self._policies) >= self._max_domains:
            self.skipped += 1
            if not self._full_logged:
                log.error("policy book is full: further domains are not followed", max_domains=self._max_domains)
                self._full_logged = True
            return
        self._policies[aggregate_id] = self._decider.evolve(before or self._decider.initial_state(aggregate_id), event)

    def apply_stored(self, seq: int, data: bytes) -> None:
        if seq <= self.last_seq:
            return  # a redelivery after the ordered consumer reset itself
        try:
            envelope = _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.skipped += 1
            log.error("policy event skipped: it does not decode", seq=seq, error=str(exc))
        else:
            self.apply(envelope.aggregate_id, envelope.data)
        self._advance(seq)

    def _advance(self, seq: int) -> None:
        self.last_seq = max(self.last_seq, seq)
        waiting = []
        for wanted, future in self._waiters:
            if wanted <= self.last_seq:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((wanted, future))
        self._waiters = waiting

    async def caught_up(self, seq: int, timeout_s: float) -> bool:
        """Wait until the book has folded the stream up to `seq` (an append's ack); False when
        it has not within `timeout_s`."""
        if self.last_seq >= seq:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (seq, future)
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return False
        return True

    async def wait_ready(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def start(self, store: EventStore, js: Any) -> float:
        """Replay CCN_POLICY as it stands, then follow it; returns the seconds the replay took."""
        started = time.perf_counter()
        up_to = (await js.stream_info(POLICY.name)).state.last_seq
        async for batch in store.scan(POLICY.name, EVERY_EVENT, 1, up_to_seq=up_to):
            for stored in batch:
                self.apply_stored(stored.seq, stored.data)
        self._advance(up_to)

        async def on_message(msg: Msg) -> None:
            self.apply_stored(msg.metadata.sequence.stream, msg.data)

        self._subscription = await js.subscribe(
            "ccn.domain.>",
            stream=POLICY.name,
            cb=on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last_seq + 1),
        )
        self._ready.set()
        elapsed = time.perf_counter() - started
        log.info("policy book ready", domains=len(self._policies), last_seq=self.last_seq, replay_s=round(elapsed, 3))
        return elapsed

    async def stop(self) -> None:
        self._ready.clear()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # the connection may be closing: the consumer is ephemeral anyway
                log.info("policy book subscription not ended cleanly", error=str(exc))

    def domains(self) -> Mapping[str, DomainPolicyState]:
        """Every entry, by policy id (a copy)."""
        return dict(self._policies)
