"""GCRA decisions against state shared by every edge replica, in a NATS key-value bucket
(docs/adr/0017-shared-rate-limits-in-nats-kv.md).

One key per limit and subject (`node.ws_ready.<node id>`, `global`), holding the key's TAT. Each
replica caches what it last read or wrote of a key, with the key's revision:
- a denial decided from the cache is final: the TAT only grows, so the shared value is at least
  as strict as the cached one, and refusing a flood costs no round trip;
- an allow is written with compare-and-set on the cached revision; if another replica wrote
  the key since, the write is refused, the key is read again and the decision made again. So
  no two replicas can both spend the same permit, and a limit holds across all of them.

A rule with `chunk` > 1 takes up to that many permits at once and spends them here. Permits
are counted in the shared state when taken, so in any window the requests allowed are at most
what the limit granted in it plus what the replicas held at its start: the slack is at most one
chunk per replica. Permits not spent within a second are dropped (only ever stricter). The chunk
grows while this replica spends whole chunks and shrinks when it drops permits, so a replica
that sees little of a key's traffic takes (and wastes) little of its limit.

The bucket is in memory with a TTL (ccn_core.topology): a key nobody wrote for longer than any
limit's tolerance is idle and vanishes, so the bucket's size follows the active subjects.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ccn_core.errors import Unavailable
from ccn_core.key_locks import KeyLocks
from ccn_core.rate_limit_config import LimitRule
from ccn_core.ratelimit import NS_PER_S, Decision, GcraState, emission_interval_ns, gcra

# a key the replicas fight over is decided again at most this often, then refused
MAX_ATTEMPTS = 16
# keys whose state this replica remembers (one per active node and action, plus the hot ones)
MAX_CACHED_KEYS = 100_000
KV_TIMEOUT_S = 2.0
# chunk permits a replica has not spent within this long are dropped: a replica that went quiet
# gives its share back to the others (the next chunk it takes is half the size)
PERMITS_KEPT_NS = NS_PER_S

_encode = msgspec.json.Encoder().encode
_decode_state = msgspec.json.Decoder(GcraState).decode


@dataclass
class _Cached:
    state: GcraState | None  # None: the stored value did not decode (it is overwritten)
    revision: int


@dataclass
class _Permits:
    left: int
    spend_by_ns: int
    size: int  # of the chunk these came in: the next is twice as big if these are all spent


def _next_chunk(previous: _Permits | None, most: int) -> int:
    """How many permits to take next: twice the last chunk when it was all spent in time, half
    when some were dropped unspent, from 1 up to the rule's chunk. A replica that sees little of
    a key's traffic thus takes little of its limit, and wastes little of it for the others."""
    if previous is None:
        return 1
    if previous.left > 0:
        return max(1, previous.size // 2)
    return min(most, previous.size * 2)


class SharedLimiter:
    def __init__(
        self,
        bucket: KeyValue,
        *,
        clock: Callable[[], int] = time.time_ns,
        max_cached: int = MAX_CACHED_KEYS,
        timeout_s: float = KV_TIMEOUT_S,
    ) -> None:
        self._bucket = bucket
        self._clock = clock
        self._max_cached = max_cached
        self._timeout_s = timeout_s
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._permits: OrderedDict[str, _Permits] = OrderedDict()
        self._locks = KeyLocks()
        self.round_trips = 0  # KV requests made: what the cache and chunks save is visible

    def forget(self) -> None:
        """Drop what this replica remembers (the limits changed: cached permits were taken
        under the old ones)."""
        self._cache.clear()
        self._permits.clear()

    async def take(self, key: str, rule: LimitRule, cost: int = 1) -> Decision:
        """Spend `cost` of `key`'s limit, or be told when to come back. Unavailable when the
        bucket does not answer."""
        if rule.chunk > 1:
            return await self._take_chunked(key, rule, cost)
        return await self._take_shared(key, rule, cost)

    def _spend_local(self, key: str, cost: int) -> Decision | None:
        now = self._clock()
        permits = self._permits.get(key)
        if permits is not None and permits.spend_by_ns >= now and permits.left >= cost:
            permits.left -= cost
            return Decision(True, 0.0, permits.left, GcraState(tat_ns=now))
        return None

    async def _take_chunked(self, key: str, rule: LimitRule, cost: int) -> Decision:
        spent = self._spend_local(key, cost)
        if spent is not None:
            return spent
        async with self._locks.one_at_a_time(f"refill:{key}"):  # one refill at a time; the rest spend it
            spent = self._spend_local(key, cost)
            if spent is not None:
                return spent
            return await self._refill(key, rule, cost)

    async def _refill(self, key: str, rule: LimitRule, cost: int) -> Decision:
        now = self._clock()
        previous = self._permits.pop(key, None)
        size = _next_chunk(previous, rule.chunk)
        chunk = min(max(size, cost), rule.burst)
        decision = await self._take_shared(key, rule, chunk)
        if not decision.allowed and chunk > cost:
            # the last permits before the limit: take just what this request needs
            chunk = cost
            decision = await self._take_shared(key, rule, cost)
        if not decision.allowed:
            return decision
        left = chunk - cost
        self._permits[key] = _Permits(left=left, spend_by_ns=now + PERMITS_KEPT_NS, size=size)
        self._bound(self._permits)
        return Decision(True, 0.0, left + decision.remaining, decision.state)

    async def _take_shared(self, key: str, rule: LimitRule, cost: int) -> Decision:
        cached = self._cache.get(key)
        if cached is not None:
            decision = gcra(rule.rate, rule.period_s, rule.burst, cached.state, self._clock(), cost)
            if not decision.allowed:
                return decision  # the shared TAT is at least this: no need to ask, nor to wait
        # this replica's requests for one key write one at a time: they would only conflict with
        # each other, and the ones waiting mostly find the key spent in the cache once it is
        async with self._locks.one_at_a_time(key):
            return await self._decide_and_write(key, rule, cost)

    async def _decide_and_write(self, key: str, rule: LimitRule, cost: int) -> Decision:
        for _ in range(MAX_ATTEMPTS):
            cached = self._cache.get(key)
            state = cached.state if cached is not None else None
            decision = gcra(rule.rate, rule.period_s, rule.burst, state, self._clock(), cost)
            if not decision.allowed:
                return decision  # the shared TAT is at least this: no need to ask
            try:
                revision = await self._write(key, decision.state, cached.revision if cached else 0)
            except KeyWrongLastSequenceError:
                await self._read(key)
                continue
            self._remember(key, _Cached(decision.state, revision))
            return decision
        # every attempt lost to another replica's write: the key is at its limit and fought
        # over, so refusing is the answer that cannot be wrong; the permit frees in an interval
        wait_ns = emission_interval_ns(rule.rate, rule.period_s) * cost
        cached = self._cache.get(key)
        state = cached.state if cached is not None and cached.state is not None else GcraState(tat_ns=self._clock())
        return Decision(False, wait_ns / NS_PER_S, 0, state)

    async def _write(self, key: str, state: GcraState, revision: int) -> int:
        self.round_trips += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                if revision == 0:
                    return await self._bucket.create(key, _encode(state))
                return await self._bucket.update(key, _encode(state), last=revision)
        except KeyWrongLastSequenceError:
            raise
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"rate limits cannot be checked now: {type(exc).__name__}", retry_after=1.0) from exc

    async def _read(self, key: str) -> None:
        self.round_trips += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                entry = await self._bucket.get(key)
        except KeyNotFoundError:  # never written, expired, or deleted: idle
            self._cache.pop(key, None)
            return
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"rate limits cannot be checked now: {type(exc).__name__}", retry_after=1.0) from exc
        try:
            state: GcraState | None = _decode_state(entry.value or b"")
        except msgspec.DecodeError:
            state = None
        self._remember(key, _Cached(state, entry.revision or 0))

    def _remember(self, key: str, cached: _Cached) -> None:
        self._cache[key] = cached
        self._cache.move_to_end(key)
        self._bound(self._cache)

    def _bound(self, table: OrderedDict[str, _Cached] | OrderedDict[str, _Permits]) -> None:
        # forgetting a key costs one read when it is next used, never correctness
        while len(table) > self._max_cached:
            table.popitem(last=False)
