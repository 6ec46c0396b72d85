"""Politeness towards one domain, pure: may a fetch start now, and what its answer teaches.

A domain's traffic is one small state (`DomainTraffic`) that every fetch-proxy replica shares
(ccn_core.domain_limiter keeps it in NATS KV); `admit` decides a fetch against it and `complete`
folds the fetch's outcome back in. Both are pure: time, the lease id and the limits come in as
arguments, so every boundary is a table row in the tests.

A fetch starts only when all of these allow it, checked in this order (the first that refuses
is named, with when to ask again):
1. the breaker (ccn_core.circuit_breaker) is not open;
2. the site's Retry-After (after a 429 or 503) has passed;
3. the minimum interval since the last start has passed: robots.txt's crawl-delay, or the
   AutoThrottle delay (ccn_core.autothrottle) when that is longer;
4. requests per minute and 5. per hour (GCRA, ccn_core.ratelimit);
6. fewer than `max_concurrent` fetches are in flight;
7. when the breaker is half open, no probe is out already.
Refusals 1 (while open) to 5 are *final* for a state read earlier: the arrival times and the
"not before" times only grow, so the shared state is at least as strict as any copy of it, and a
replica may refuse from its cache without asking. Concurrency and the probe are not: a fetch may
have finished since.

Per-minute and per-hour limits hold in every sliding window, not only on average: a GCRA with
burst b and rate r' admits at most b + r' - 1 requests in any window of its period, so a limit
of n per period runs as burst b = max(1, n // 20) (per hour: n // 60) and rate n - b + 1. A site
asking for 60 a minute gets at most 60 in any 60 s, 3 of them at once, then one each 60/58 s.

A fetch in flight holds a lease that expires after `lease_s` (longer than the proxy's total
fetch time): the lease of a replica that died frees itself, and expired leases are dropped at
the next decision. A changed limit keeps the arrival times (a lowered limit is thus never
crossed by a fresh burst).
"""

from __future__ import annotations

import math
from typing import Final, Literal, NamedTuple

import msgspec

from ccn_core.autothrottle import ThrottleConfig, next_delay
from ccn_core.circuit_breaker import Breaker, BreakerConfig, breaker_learns, breaker_passage
from ccn_core.domain.domain_policy import PolicyLimits
from ccn_core.ratelimit import NS_PER_S, GcraState, gcra
from ccn_proto.fetch import BreakerChanged, DomainLimitAlert, FailureReason, LimitKind

RefusedBy = LimitKind | Literal["breaker"]
LIMIT_KINDS: Final[tuple[LimitKind, ...]] = LimitKind.__args__  # type: ignore[attr-defined]
# refusals a stale copy of the state may give for good (see the module docstring)
_MONOTONIC: Final = frozenset({"retry_after", "crawl_delay", "per_minute", "per_hour"})
# the site is in trouble (not merely this page): these open the breaker and raise the delay
BREAKER_FAILURES: Final[frozenset[FailureReason]] = frozenset(
    {"timeout", "connect_failed", "tls_error", "bad_response"}
)
MAX_CRAWL_DELAY_S = 600.0  # a robots.txt asking for more is held to this (a fetch each 10 min)
MAX_RETRY_AFTER_S = 3600.0  # the shared state's TTL: a longer wait would be forgotten anyway
CONCURRENT_RETRY_S = 1.0  # a slot frees when a fetch ends, which no one can know in advance
MAX_LEASES = 64  # the policy's bound on max_concurrent (ccn_proto.domains.Concurrent)


class DomainLimits(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    per_minute: int
    per_hour: int
    max_concurrent: int

    def __post_init__(self) -> None:
        if not (
            1 <= self.per_minute <= 600 and 1 <= self.per_hour <= 36_000 and 1 <= self.max_concurrent <= MAX_LEASES
        ):
            raise ValueError(f"limits out of bounds: {self}")


# a domain whose policy names no limit: one fetch at a time, every 2 s at most, 1000 an hour
DEFAULT_DOMAIN_LIMITS: Final = DomainLimits(per_minute=30, per_hour=1000, max_concurrent=1)


def limits_for(policy: PolicyLimits, defaults: DomainLimits = DEFAULT_DOMAIN_LIMITS) -> DomainLimits:
    """The limits a domain's policy sets, each one it leaves None taken from the defaults."""
    return DomainLimits(
        per_minute=policy.requests_per_minute or defaults.per_minute,
        per_hour=policy.requests_per_hour or defaults.per_hour,
        max_concurrent=policy.max_concurrent or defaults.max_concurrent,
    )


class WindowRule(NamedTuple):
    rate: int
    period_s: float
    burst: int


def window_rule(limit: int, period_s: float, burst_divisor: int) -> WindowRule:
    """The GCRA that admits at most `limit` requests in any window of `period_s`."""
    burst = max(1, limit // burst_divisor)
    return WindowRule(rate=limit - burst + 1, period_s=period_s, burst=burst)


class AlarmConfig(msgspec.Struct, frozen=True, kw_only=True):
    denials: int = 30  # refusals by a limit ...
    window_s: float = 60.0  # ... within one window (aligned on the epoch) raise one alert


class PolitenessConfig(msgspec.Struct, frozen=True, kw_only=True):
    defaults: DomainLimits = DEFAULT_DOMAIN_LIMITS
    throttle: ThrottleConfig = ThrottleConfig()
    breaker: BreakerConfig = BreakerConfig()
    alarm: AlarmConfig = AlarmConfig()
    lease_s: float = 120.0


class Lease(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    id: str
    expires_ns: int
    probe: bool = False


class DomainTraffic(msgspec.Struct, frozen=True, kw_only=True):
    """What every replica shares about one domain."""

    minute: GcraState | None = None
    hour: GcraState | None = None
    leases: tuple[Lease, ...] = ()
    next_start_ns: int = 0  # crawl-delay / AutoThrottle: no fetch starts before
    retry_after_until_ns: int = 0  # the site's Retry-After: no fetch starts before
    throttle_delay_s: float | None = None  # None: not learnt yet (the configured start delay)
    breaker: Breaker = Breaker()


class FetchResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """How a fetch that was admitted ended. Neither status nor failure: it was never sent (a
    later check refused it), which teaches nothing and only frees its lease."""

    status: int | None = None
    latency_s: float = 0.0
    failure: FailureReason | None = None
    retry_after_s: float | None = None  # the response's Retry-After, in seconds from now

    @property
    def sent(self) -> bool:
        return self.status is not None or self.failure is not None

    @property
    def site_failed(self) -> bool:
        """Does this count against the site's breaker (a 5xx, a timeout, no connection)?"""
        return (self.status is not None and self.status >= 500) or self.failure in BREAKER_FAILURES


NOT_SENT: Final = FetchResult()


class Admission(NamedTuple):
    traffic: DomainTraffic  # to store when admitted; the state given when refused
    lease: Lease | None  # None: refused
    refused_by: RefusedBy | None
    retry_after_s: float
    events: list[BreakerChanged]

    @property
    def final(self) -> bool:
        """A refusal that no fresher copy of the state could turn into an admission."""
        if self.refused_by in _MONOTONIC:
            return True
        return self.refused_by == "breaker" and self.traffic.breaker.state == "open"


def _refused(traffic: DomainTraffic, by: RefusedBy, retry_after_s: float) -> Admission:
    return Admission(traffic, None, by, retry_after_s, [])


def admit(
    traffic: DomainTraffic,
    domain: str,
    limits: DomainLimits,
    crawl_delay_s: float | None,
    now_ns: int,
    lease_id: str,
    config: PolitenessConfig,
) -> Admission:
    """May a fetch from `domain` start at `now_ns`? Admitted: the state to store, with its lease."""
    live = tuple(lease for lease in traffic.leases if lease.expires_ns > now_ns)
    verdict = breaker_passage(traffic.breaker, domain, any(lease.probe for lease in live), now_ns)
    if verdict.passage == "refuse" and traffic.breaker.state == "open":
        return _refused(traffic, "breaker", verdict.retry_after_s)
    if traffic.retry_after_until_ns > now_ns:
        return _refused(traffic, "retry_after", (traffic.retry_after_until_ns - now_ns) / NS_PER_S)
    if traffic.next_start_ns > now_ns:
        return _refused(traffic, "crawl_delay", (traffic.next_start_ns - now_ns) / NS_PER_S)
    minute = window_rule(limits.per_minute, 60.0, 20)
    per_minute = gcra(minute.rate, minute.period_s, minute.burst, traffic.minute, now_ns)
    if not per_minute.allowed:
        return _refused(traffic, "per_minute", per_minute.retry_after_s)
    hour = window_rule(limits.per_hour, 3600.0, 60)
    per_hour = gcra(hour.rate, hour.period_s, hour.burst, traffic.hour, now_ns)
    if not per_hour.allowed:
        return _refused(traffic, "per_hour", per_hour.retry_after_s)
    if len(live) >= limits.max_concurrent:
        return _refused(traffic, "concurrent", CONCURRENT_RETRY_S)
    if verdict.passage == "refuse":
        return _refused(traffic, "breaker", verdict.retry_after_s)
    lease = Lease(id=lease_id, expires_ns=now_ns + round(config.lease_s * NS_PER_S), probe=verdict.passage == "probe")
    interval_s = max(_bounded(crawl_delay_s, MAX_CRAWL_DELAY_S), _throttle_delay(traffic, config))
    admitted = msgspec.structs.replace(
        traffic,
        minute=per_minute.state,
        hour=per_hour.state,
        leases=(*live, lease),
        next_start_ns=now_ns + round(interval_s * NS_PER_S),
        breaker=verdict.breaker,
    )
    return Admission(admitted, lease, None, 0.0, verdict.events)


def complete(
    traffic: DomainTraffic, domain: str, lease_id: str, result: FetchResult, now_ns: int, config: PolitenessConfig
) -> tuple[DomainTraffic, list[BreakerChanged]]:
    """The state after the fetch holding `lease_id` ended with `result`: its lease freed, and
    the breaker, the AutoThrottle delay and the site's Retry-After told what happened."""
    held = next((lease for lease in traffic.leases if lease.id == lease_id), None)
    leases = tuple(lease for lease in traffic.leases if lease.id != lease_id and lease.expires_ns > now_ns)
    traffic = msgspec.structs.replace(traffic, leases=leases)
    if not result.sent:
        return traffic, []
    failed = result.site_failed
    breaker, events = breaker_learns(
        traffic.breaker, domain, failed, held is not None and held.probe, now_ns, config.breaker
    )
    error = failed or result.status in (429, 503)
    delay = next_delay(_throttle_delay(traffic, config), result.latency_s, result.status, error, config.throttle)
    retry_until = traffic.retry_after_until_ns
    if result.status in (429, 503) and result.retry_after_s is not None:
        wait_s = _bounded(result.retry_after_s, MAX_RETRY_AFTER_S)
        retry_until = max(retry_until, now_ns + round(wait_s * NS_PER_S))
    learnt = msgspec.structs.replace(traffic, breaker=breaker, throttle_delay_s=delay, retry_after_until_ns=retry_until)
    return learnt, events


def _throttle_delay(traffic: DomainTraffic, config: PolitenessConfig) -> float:
    return config.throttle.start_delay_s if traffic.throttle_delay_s is None else traffic.throttle_delay_s


def _bounded(seconds: float | None, most: float) -> float:
    """A site's own number of seconds (robots.txt, Retry-After), read as hostile."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0.0:
        return 0.0
    return min(seconds, most)


# ---- limit alerts: a domain that keeps hitting its limits ----


class Alarm(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    window: int = -1  # now // window: which window the counts are of
    counts: tuple[int, ...] = (0,) * len(LIMIT_KINDS)  # refusals per LIMIT_KINDS in it
    alerted: bool = False


def note_refusal(
    alarm: Alarm, domain: str, refused_by: RefusedBy, now_ns: int, config: AlarmConfig
) -> tuple[Alarm, DomainLimitAlert | None]:
    """Count one refusal; the `config.denials`-th within a window raises the window's one alert,
    naming the limit that refused most (the breaker is not a limit: it is not counted)."""
    if refused_by == "breaker":
        return alarm, None
    window_ns = round(config.window_s * NS_PER_S)
    window = now_ns // window_ns
    if window != alarm.window:
        alarm = Alarm(window=window)
    index = LIMIT_KINDS.index(refused_by)
    counts = tuple(count + (1 if position == index else 0) for position, count in enumerate(alarm.counts))
    total = sum(counts)
    if alarm.alerted or total < config.denials:
        return msgspec.structs.replace(alarm, counts=counts), None
    most = LIMIT_KINDS[max(range(len(counts)), key=lambda position: (counts[position], -position))]
    alert = DomainLimitAlert(domain=domain, limit=most, denials=total, window_s=config.window_s)
    return Alarm(window=window, counts=counts, alerted=True), alert
