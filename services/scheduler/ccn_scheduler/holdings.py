"""The claim ledger: per node, the jobs it holds or is being handed, in a NATS KV bucket.

A node must never hold more jobs than its advertised concurrency, even when its claims reach
different scheduler replicas at once. The job aggregates alone cannot tell (nothing indexes
them by holder without lag), so each claim first writes the job ids it is about to claim into
the node's ledger entry with compare-and-set, counting what the entry already lists; only then
does it append `job.claimed`. Two replicas racing for one node's entry: one CAS loses, re-reads,
and sees the other's reservations.

The ledger is a superset of the truth, never the truth: an entry is pruned when the job's own
history says the node no longer holds it (finished, released, claimed by another), and an
entry whose claim never landed is pruned after `RESERVATION_GRACE`. Nothing needs to remove
an entry when a job completes; a crash between ledger and aggregate can only make a node look
busier than it is, for a bounded time, never less busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta

import msgspec
import nats.errors
from cachetools import LRUCache
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from ccn_core.domain.job import JobState
from ccn_core.errors import CcnError, Unavailable
from ccn_core.eventstore import EventStore, OutgoingEvent, WrongLastSequence
from ccn_core.logging import get_logger
from ccn_core.topology import NODE_HOLDINGS

log = get_logger("ccn.scheduler.holdings")

# Longer than any claim takes (its append is bounded by the command timeout): a reservation
# younger than this may still become a claim, so it counts as held.
RESERVATION_GRACE = timedelta(seconds=30)
MAX_CAS_ATTEMPTS = 8


class Ledger(msgspec.Struct, frozen=True):
    """job id → when this node's claim of it was reserved."""

    jobs: dict[str, datetime] = msgspec.field(default_factory=dict)


_encode = msgspec.json.encode
_decode = msgspec.json.Decoder(Ledger).decode


def still_held(
    ledger: Ledger, states: Mapping[str, JobState], node_id: str, now: datetime, grace: timedelta = RESERVATION_GRACE
) -> Ledger:
    """The entries that still count against the node's concurrency: jobs it holds, and fresh
    reservations whose claim may still land. Pure: `states` are the jobs' current states.

    A claim is decided at its reservation's time, so a job whose latest claim is this node's at
    exactly that time took this reservation's claim, which has ended since (failed, abandoned):
    the node does not hold it, and it must not wait out the grace for a slot it has back."""
    kept: dict[str, datetime] = {}
    for job_id, reserved_at in ledger.jobs.items():
        state = states.get(job_id)
        if state is None:
            continue
        held = state.status == "claimed" and state.holder == node_id
        ended = state.claimed_by == node_id and state.claimed_at == reserved_at
        in_flight = state.status in ("queued", "retry_wait") and reserved_at > now - grace and not ended
        if held or in_flight:
            kept[job_id] = reserved_at
    return Ledger(jobs=kept)


StateLoader = Callable[[str], Awaitable[JobState]]


# nodes whose entry this replica remembers (a few hundred bytes each)
KNOWN_ENTRIES_MAX = 100_000


class NodeHoldings:
    """Reads are served from the entry this replica last read or wrote, when it has one: a
    write carries the revision it was based on, so an entry another replica changed meanwhile
    fails the compare-and-set and is read afresh. A claim then costs one KV write, not a read
    and a write.

    A write is a publish to the key's subject with the revision as its expected last subject
    sequence (what KeyValue.update sends), through the event store's publisher: nats-py's own
    path costs a request object and a JSON parse more per claim."""

    def __init__(self, js: JetStreamContext, store: EventStore, load_state: StateLoader) -> None:
        self._js = js
        self._store = store
        self._load_state = load_state
        self._kv: KeyValue | None = None
        self._known: LRUCache[str, tuple[Ledger, int]] = LRUCache(maxsize=KNOWN_ENTRIES_MAX)

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(NODE_HOLDINGS.bucket)
            except nats.errors.Error as exc:
                raise Unavailable(f"the claim ledger is unavailable: {exc!r}", retry_after=1.0) from exc
        return self._kv

    async def read(self, node_id: str, *, fresh: bool = False) -> tuple[Ledger, int]:
        """The node's entry and its revision (0: none yet): as this replica last saw it, or as
        stored when `fresh` or unknown here."""
        known = None if fresh else self._known.get(node_id)
        if known is not None:
            return known
        kv = await self._bucket()
        try:
            entry = await kv.get(node_id)
        except KeyNotFoundError:
            read: tuple[Ledger, int] = (Ledger(), 0)
        except nats.errors.Error as exc:
            raise Unavailable(f"the claim ledger did not answer: {exc!r}", retry_after=1.0) from exc
        else:
            read = (_decode(entry.value) if entry.value else Ledger()), entry.revision or 0
        self._known[node_id] = read
        return read

    async def current(self, node_id: str, now: datetime) -> tuple[Ledger, int]:
        """The node's entry pruned against the jobs' histories, and the revision it was read at."""
        ledger, revision = await self.read(node_id)
        states = await self._states(ledger.jobs)
        return still_held(ledger, states, node_id, now), revision

    async def _states(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        ids = list(job_ids)
        loaded = await asyncio.gather(*(self._load_state(job_id) for job_id in ids))
        return dict(zip(ids, loaded, strict=True))

    async def _write(self, node_id: str, ledger: Ledger, revision: int) -> bool:
        entry = OutgoingEvent(subject=NODE_HOLDINGS.key_subject(node_id), data=_encode(ledger), headers={})
        try:
            written = await self._store.append(entry, expected_last_seq=revision)
        except WrongLastSequence:
            self._known.pop(node_id, None)  # another replica wrote: read it next time
            return False
        except CcnError as exc:
            self._known.pop(node_id, None)  # the write may or may not have landed
            raise Unavailable(f"the claim ledger did not answer: {exc.message}", retry_after=1.0) from exc
        self._known[node_id] = (ledger, written.seq)
        return True

    async def reserve(
        self,
        node_id: str,
        candidates: list[str],
        concurrency: int,
        now: datetime,
        *,
        known: tuple[Ledger, int] | None = None,
    ) -> tuple[list[str], int]:
        """Reserve as many of `candidates` (in order) as the node has free slots for; returns
        those reserved and how many the node holds with them. `known` is a pruned entry and
        its revision the caller read already: it saves a read when nobody wrote since."""
        # a lost compare-and-set forgets the remembered entry: the next turn reads it afresh
        for _ in range(MAX_CAS_ATTEMPTS):
            ledger, revision = known if known is not None else await self.current(node_id, now)
            known = None
            free = concurrency - len(ledger.jobs)
            fresh = [job_id for job_id in candidates if job_id not in ledger.jobs]
            taken = fresh[: max(0, free)]
            if not taken:
                return [], len(ledger.jobs)
            jobs = dict(ledger.jobs)
            jobs.update(dict.fromkeys(taken, now))
            if await self._write(node_id, Ledger(jobs=jobs), revision):
                return taken, len(jobs)
        raise Unavailable(f"claims for node {node_id} are contended; try again", retry_after=0.2)

    async def release(self, node_id: str, job_ids: Iterable[str]) -> None:
        """Drop reservations whose claim did not land. Best effort: an entry left behind only
        makes the node look busy until RESERVATION_GRACE passes."""
        dropped = set(job_ids)
        if not dropped:
            return
        try:
            for _ in range(MAX_CAS_ATTEMPTS):
                ledger, revision = await self.read(node_id)
                if not dropped & ledger.jobs.keys():
                    return
                kept = {job_id: at for job_id, at in ledger.jobs.items() if job_id not in dropped}
                if await self._write(node_id, Ledger(jobs=kept), revision):
                    return
        except Unavailable as exc:
            log.warning("reservations left in the claim ledger until they age out", node_id=node_id, error=exc.message)
