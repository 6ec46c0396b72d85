"""robots.txt per origin, fetched once and kept until RFC 9309's rules say to fetch it again
(ccn_core.robots.robots_fetch_outcome: a day after a success or a 4xx; a 5xx, 429 or an
unreachable server disallows everything until its Retry-After or ten minutes, then is asked
again: fail closed).

One fetch per origin at a time: the requests that arrive while it runs wait for its answer
instead of fetching robots.txt again; the request that started it is its cause (its record names
that request). A fetch the domain's limits put off (`RobotsDeferred`) caches nothing: the next
request asks again. The cache holds a bounded number of origins, the least
recently used going first.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import msgspec

from ccn_core.egress import Target
from ccn_core.robots import CACHE_TTL_S, RETRY_AFTER_ERROR_S, RobotsRules, robots_fetch_outcome
from ccn_proto.fetch import RefusalStage

MAX_ORIGINS = 10_000


class RobotsFetch(msgspec.Struct, frozen=True):
    """What fetching robots.txt gave: the final status (None: unreachable, or refused on the
    way), the body when it was 2xx, and Retry-After."""

    status: int | None
    body: bytes = b""
    retry_after: str | None = None


class FetchCause(msgspec.Struct, frozen=True, kw_only=True):
    """The node request a fetch record is made for: its own, its gate's events, its robots.txt."""

    fetch_id: str
    job_id: str
    node_id: str
    correlation_id: str


class RobotsDeferred(Exception):
    """robots.txt was not asked for now: the domain's gate said no (`stage`, `reason`: its
    refusal's); try again after `retry_after`."""

    def __init__(self, stage: RefusalStage, reason: str, retry_after: float, detail: str) -> None:
        super().__init__(detail)
        self.stage: RefusalStage = stage
        self.reason = reason
        self.retry_after = retry_after
        self.detail = detail


class CachedRobots(msgspec.Struct, frozen=True, kw_only=True):
    rules: RobotsRules
    kind: str
    reason: str
    valid_until: datetime


FetchRobots = Callable[[Target, FetchCause], Awaitable[RobotsFetch]]


def origin_of(target: Target) -> str:
    return f"{target.scheme}://{target.authority}"


class RobotsCache:
    def __init__(
        self,
        fetch: FetchRobots,
        user_agent: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ttl_s: float = CACHE_TTL_S,
        error_retry_s: float = RETRY_AFTER_ERROR_S,
        max_origins: int = MAX_ORIGINS,
    ) -> None:
        self._fetch = fetch
        self._user_agent = user_agent
        self._clock = clock
        self._ttl_s = ttl_s
        self._error_retry_s = error_retry_s
        self._max_origins = max_origins
        self._entries: OrderedDict[str, CachedRobots] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[CachedRobots]] = {}
        self.fetches = 0

    async def robots_for(self, target: Target, cause: FetchCause) -> CachedRobots:
        origin = origin_of(target)
        cached = self._entries.get(origin)
        if cached is not None and self._clock() < cached.valid_until:
            self._entries.move_to_end(origin)
            return cached
        running = self._in_flight.get(origin)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[CachedRobots] = asyncio.get_running_loop().create_future()
        self._in_flight[origin] = future
        try:
            entry = await self._load(target, cause)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: the waiters (if any) raise it themselves
            raise
        finally:
            del self._in_flight[origin]
        future.set_result(entry)
        self._entries[origin] = entry
        self._entries.move_to_end(origin)
        while len(self._entries) > self._max_origins:
            self._entries.popitem(last=False)
        return entry

    async def _load(self, target: Target, cause: FetchCause) -> CachedRobots:
        self.fetches += 1
        fetched = await self._fetch(target, cause)
        outcome = robots_fetch_outcome(
            fetched.status,
            self._clock(),
            retry_after=fetched.retry_after,
            ttl_s=self._ttl_s,
            error_retry_s=self._error_retry_s,
        )
        if outcome.kind == "parse":
            rules = RobotsRules.parse(fetched.body, self._user_agent)
        elif outcome.kind == "allow_all":
            rules = RobotsRules.allow_all(self._user_agent)
        else:
            rules = RobotsRules.disallow_all(self._user_agent)
        return CachedRobots(rules=rules, kind=outcome.kind, reason=outcome.reason, valid_until=outcome.valid_until)
