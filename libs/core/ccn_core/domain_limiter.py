"""Politeness shared by every fetch-proxy replica: one NATS KV key per domain, decided with CAS.

The fetch proxy's one seam: `acquire(domain, limits, crawl_delay_s)` before it fetches, which
gives a `Permit` or a `Refusal(limit, retry_after_s)`, and `release(permit, result)` when the
fetch ended (or was never sent), which frees the permit and teaches AutoThrottle, the breaker
and the site's Retry-After. Both return the events to record (BreakerChanged, DomainLimitAlert).

Everything about one domain is one key, `fetch.<policy id>` in the `ccn_rate_limits` bucket,
holding ccn_core.politeness.DomainTraffic: the per-minute and per-hour GCRA arrival times, the
leases of fetches in flight, the crawl-delay/AutoThrottle and Retry-After "not before" times,
the AutoThrottle delay and the breaker. One key rather than one per limit (SharedLimiter's way)
because the checks must hold together: an admission writes all of them in one compare-and-set,
so a refusal by the hour limit never spends a minute permit, a slot is never taken for a fetch
the rate refuses, and a fetch costs one write to start and one to end, not four.

- A replica caches (state, revision) per domain. A refusal that a stale copy may give for good
  (`Admission.final`: arrival and not-before times only grow, an open breaker stays open until
  its time) is answered from the cache without a round trip. Any other refusal is checked
  against a fresh read first: a slot may have been freed since.
- An admission is written with `update(last=revision)`; if another replica wrote first, the key
  is read again and the decision made again, at most MAX_ATTEMPTS times, then refused (under
  such contention a refusal cannot be wrong). No two replicas can take one slot or one permit.
- A lease expires after `lease_s`: a replica that dies mid-fetch holds its slot no longer.
- The bucket keeps a key for an hour after its last write (in memory, ADR 0017); everything in
  it is over by then (the longest wait is an hour's Retry-After or an hour limit's tolerance).
- Limit alerts: each replica counts the refusals it gives (ccn_core.politeness.note_refusal);
  the first to reach the threshold in a window creates `fetch.<policy id>.alert.<window>`, and
  only the replica whose create succeeds returns the alert, so one is raised per window.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, NamedTuple

import msgspec
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ccn_core.domain.domain_policy import PolicyLimits, policy_id
from ccn_core.errors import BadInput, Unavailable
from ccn_core.key_locks import KeyLocks
from ccn_core.logging import get_logger
from ccn_core.politeness import (
    CONCURRENT_RETRY_S,
    Admission,
    Alarm,
    DomainLimits,
    DomainTraffic,
    FetchResult,
    PolitenessConfig,
    RefusedBy,
    admit,
    complete,
    limits_for,
    note_refusal,
)
from ccn_core.ratelimit import NS_PER_S
from ccn_core.topology import RATE_LIMIT_STATE
from ccn_proto.fetch import BreakerChanged, DomainLimitAlert

log = get_logger("ccn.domain_limiter")

BUCKET: Final = RATE_LIMIT_STATE.bucket
MAX_ATTEMPTS = 16
MAX_CACHED_DOMAINS = 10_000
KV_TIMEOUT_S = 2.0

_encode = msgspec.json.Encoder().encode
_decode_traffic = msgspec.json.Decoder(DomainTraffic).decode

PolitenessEvent = BreakerChanged | DomainLimitAlert
DEFAULT_POLITENESS: Final = PolitenessConfig()


class Permit(msgspec.Struct, frozen=True, kw_only=True):
    """A fetch from `domain` may start; give it back with `release`. `probe`: the breaker is
    half open and this fetch decides whether it closes."""

    domain: str
    lease_id: str
    probe: bool = False
    events: tuple[PolitenessEvent, ...] = ()


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """No fetch from this domain now: `limit` refused; ask again after `retry_after_s`."""

    limit: RefusedBy
    retry_after_s: float
    events: tuple[PolitenessEvent, ...] = ()


class _Cached(NamedTuple):
    traffic: DomainTraffic
    revision: int  # 0: the key does not exist


_KEY_TOKEN = re.compile(r"^[a-z0-9_U-]{1,160}$")


def traffic_key(domain: str) -> str:
    """The key of a canonical domain's traffic; BadInput for anything else (a key is a subject)."""
    token = policy_id(domain)
    if not _KEY_TOKEN.match(token):
        raise BadInput(f"not a canonical domain: {domain!r:.80}", field="domain")
    return f"fetch.{token}"


def alert_key(domain: str, window: int) -> str:
    return f"{traffic_key(domain)}.alert.{window}"


class DomainLimiter:
    def __init__(
        self,
        bucket: KeyValue,
        *,
        config: PolitenessConfig = DEFAULT_POLITENESS,
        clock: Callable[[], int] = time.time_ns,
        new_lease_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        timeout_s: float = KV_TIMEOUT_S,
        max_cached: int = MAX_CACHED_DOMAINS,
    ) -> None:
        self._bucket = bucket
        self._config = config
        self._clock = clock
        self._new_lease_id = new_lease_id
        self._timeout_s = timeout_s
        self._max_cached = max_cached
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._alarms: OrderedDict[str, Alarm] = OrderedDict()
        self._locks = KeyLocks()
        self.round_trips = 0  # KV requests made: what the cache saves is visible

    async def acquire(
        self, domain: str, limits: PolicyLimits | DomainLimits, crawl_delay_s: float | None = None
    ) -> Permit | Refusal:
        """May a fetch from `domain` (canonical) start now? Unavailable when the bucket does not
        answer: politeness that cannot be checked is a refusal, never a pass. BadInput for a
        domain that is not canonical (ccn_core.domain.domain_policy.canonical_domain)."""
        domain_limits = limits if isinstance(limits, DomainLimits) else limits_for(limits, self._config.defaults)
        key = traffic_key(domain)
        lease_id = self._new_lease_id()
        cached = self._cache.get(key)
        if cached is not None:
            admission = admit(
                cached.traffic, domain, domain_limits, crawl_delay_s, self._clock(), lease_id, self._config
            )
            if admission.lease is None and admission.final:
                return await self._refusal(domain, admission.refused_by or "concurrent", admission.retry_after_s)
        async with self._locks.one_at_a_time(key):
            return await self._decide_and_write(key, domain, domain_limits, crawl_delay_s, lease_id)

    async def _decide_and_write(
        self, key: str, domain: str, limits: DomainLimits, crawl_delay_s: float | None, lease_id: str
    ) -> Permit | Refusal:
        fresh = False
        for _ in range(MAX_ATTEMPTS):
            cached = self._cache.get(key)
            if cached is None:
                cached, fresh = await self._read(key), True
            admission: Admission = admit(
                cached.traffic, domain, limits, crawl_delay_s, self._clock(), lease_id, self._config
            )
            if admission.lease is None:
                if admission.final or fresh:
                    return await self._refusal(domain, admission.refused_by or "concurrent", admission.retry_after_s)
                await self._read(key)  # a slot or the probe may have been freed since
                fresh = True
                continue
            try:
                await self._write(key, admission.traffic, cached.revision)
            except KeyWrongLastSequenceError:
                await self._read(key)
                fresh = True
                continue
            return Permit(
                domain=domain, lease_id=admission.lease.id, probe=admission.lease.probe, events=tuple(admission.events)
            )
        # every attempt lost to another replica's write: the domain is crowded right now
        return await self._refusal(domain, "concurrent", CONCURRENT_RETRY_S)

    async def release(self, permit: Permit, result: FetchResult) -> list[BreakerChanged]:
        """Free `permit` and learn from `result` (NOT_SENT for a fetch a later check refused).
        Never raises: if the bucket does not answer, the lease frees itself when it expires and
        what the result would have taught is lost (logged)."""
        key = traffic_key(permit.domain)
        try:
            async with self._locks.one_at_a_time(key):
                fresh = False
                for _ in range(MAX_ATTEMPTS):
                    cached = self._cache.get(key)
                    if cached is None:
                        cached, fresh = await self._read(key), True
                    if not fresh and not any(lease.id == permit.lease_id for lease in cached.traffic.leases):
                        # another replica admitted it: this copy predates the lease
                        await self._read(key)
                        fresh = True
                        continue
                    learnt, events = complete(
                        cached.traffic, permit.domain, permit.lease_id, result, self._clock(), self._config
                    )
                    if learnt == cached.traffic:
                        return events
                    try:
                        await self._write(key, learnt, cached.revision)
                    except KeyWrongLastSequenceError:
                        await self._read(key)
                        fresh = True
                        continue
                    return events
        except Unavailable as error:
            log.warning("politeness_release_lost", domain=permit.domain, error=str(error))
            return []
        log.warning("politeness_release_lost", domain=permit.domain, error="too many conflicting writes")
        return []

    async def _refusal(self, domain: str, refused_by: RefusedBy, retry_after_s: float) -> Refusal:
        alarm, alert = note_refusal(
            self._alarms.pop(domain, Alarm()), domain, refused_by, self._clock(), self._config.alarm
        )
        self._alarms[domain] = alarm
        self._bound(self._alarms)
        if alert is None or not await self._first_to_alert(domain, alarm.window):
            return Refusal(limit=refused_by, retry_after_s=retry_after_s)
        return Refusal(limit=refused_by, retry_after_s=retry_after_s, events=(alert,))

    async def _first_to_alert(self, domain: str, window: int) -> bool:
        self.round_trips += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._bucket.create(alert_key(domain, window), str(self._clock() // NS_PER_S).encode())
        except KeyWrongLastSequenceError:
            return False  # another replica raised this window's alert
        except (TimeoutError, NatsError):
            return True  # an alert twice is better than none
        return True

    async def _write(self, key: str, traffic: DomainTraffic, revision: int) -> None:
        self.round_trips += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                if revision == 0:
                    written = await self._bucket.create(key, _encode(traffic))
                else:
                    written = await self._bucket.update(key, _encode(traffic), last=revision)
        except KeyWrongLastSequenceError:
            raise
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"domain limits cannot be checked now: {type(exc).__name__}", retry_after=1.0) from exc
        self._remember(key, _Cached(traffic, written))

    async def _read(self, key: str) -> _Cached:
        self.round_trips += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                entry = await self._bucket.get(key)
        except KeyNotFoundError:  # never written, idle for an hour, or deleted
            cached = _Cached(DomainTraffic(), 0)
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"domain limits cannot be checked now: {type(exc).__name__}", retry_after=1.0) from exc
        else:
            try:
                traffic = _decode_traffic(entry.value or b"")
            except msgspec.DecodeError:
                # not ours to read (only proxies write here): start afresh, and overwrite it
                log.warning("politeness_state_unreadable", key=key)
                traffic = DomainTraffic()
            cached = _Cached(traffic, entry.revision or 0)
        self._remember(key, cached)
        return cached

    def _remember(self, key: str, cached: _Cached) -> None:
        self._cache[key] = cached
        self._cache.move_to_end(key)
        self._bound(self._cache)

    def _bound(self, table: OrderedDict[str, _Cached] | OrderedDict[str, Alarm]) -> None:
        # forgetting a domain costs one read when it is next asked for, never correctness
        while len(table) > self._max_cached:
            table.popitem(last=False)
