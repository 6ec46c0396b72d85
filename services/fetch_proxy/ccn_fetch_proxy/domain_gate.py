"""The seam between the fetch proxy and a domain's politeness: its rate limits, concurrency,
crawl-delay, Retry-After and circuit breaker.

The proxy calls `acquire` once per request it is about to send to a domain (each redirect hop
too) with the governing policy's canonical domain and limits and robots.txt's crawl-delay, and
`release` once the request is over, with how it went (or that it was never sent: a later check
refused it). Either may hand back events to record (the breaker changed, a domain keeps hitting
its limits); the proxy appends them to CCN_FETCH. Nothing else in the proxy knows how limits are
kept. The KV-shared implementation (ccn_core.politeness, ccn_core.domain_limiter) plugs in here;
`SharedGate` is that; `UnlimitedGate` lets every request through and keeps nothing (tests of
the proxy's other checks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

import msgspec

from ccn_core.domain.domain_policy import PolicyLimits
from ccn_core.domain_limiter import DomainLimiter
from ccn_core.domain_limiter import Permit as LimiterPermit
from ccn_core.domain_limiter import Refusal as LimiterRefusal
from ccn_core.politeness import FetchResult
from ccn_proto.fetch import BreakerChanged, DomainLimitAlert, FailureReason

GateEvent = BreakerChanged | DomainLimitAlert
MAX_RETRY_AFTER_S = 86_400.0


class Permit(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    token: str = ""
    probe: bool = False  # the breaker is half open and this request decides it
    events: tuple[GateEvent, ...] = ()


class LimitRefusal(msgspec.Struct, frozen=True, kw_only=True):
    """No request now: `stage` rate_limit (a limit, crawl-delay or Retry-After) or breaker."""

    stage: Literal["rate_limit", "breaker"]
    reason: str
    retry_after: float
    detail: str = ""
    events: tuple[GateEvent, ...] = ()


class RequestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a request went: its `status`, or the `failure` that left it without one; neither when
    it was never sent. `retry_after`: the response's header as it came."""

    status: int | None = None
    elapsed_ms: float = 0.0
    failure: FailureReason | None = None
    retry_after: str | None = None

    @property
    def sent(self) -> bool:
        return self.status is not None or self.failure is not None


NOT_SENT = RequestOutcome()


class DomainGate(Protocol):
    async def acquire(
        self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None
    ) -> Permit | LimitRefusal: ...

    async def release(self, permit: Permit, outcome: RequestOutcome) -> Sequence[GateEvent]: ...


class UnlimitedGate:
    """Every request allowed, nothing kept."""

    async def acquire(self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None) -> Permit | LimitRefusal:
        return Permit(domain=domain)

    async def release(self, permit: Permit, outcome: RequestOutcome) -> Sequence[GateEvent]:
        return ()


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delta-seconds or an HTTP date) as seconds from `now`, held between
    0 and a day; None when absent or unreadable."""
    text = (value or "").strip()[:64]
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return min(float(text[:9]), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


class SharedGate:
    """The domain gate every proxy replica shares: ccn_core.domain_limiter's per-domain state in
    NATS KV (limits per minute and hour, concurrency leases, crawl-delay, Retry-After,
    AutoThrottle, the breaker). A bucket that does not answer refuses (Unavailable comes up to
    the caller as a "not now"), never lets a request through unchecked."""

    def __init__(self, limiter: DomainLimiter, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._limiter = limiter
        self._clock = clock

    async def acquire(self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None) -> Permit | LimitRefusal:
        decided = await self._limiter.acquire(domain, limits, crawl_delay_s)
        if isinstance(decided, LimiterRefusal):
            return LimitRefusal(
                stage="breaker" if decided.limit == "breaker" else "rate_limit",
                reason="breaker_open" if decided.limit == "breaker" else f"domain_{decided.limit}_limit",
                retry_after=decided.retry_after_s,
                detail=f"{domain}: {decided.limit} (retry in {decided.retry_after_s:.3g} s)",
                events=decided.events,
            )
        return Permit(domain=domain, token=decided.lease_id, probe=decided.probe, events=decided.events)

    async def release(self, permit: Permit, outcome: RequestOutcome) -> Sequence[GateEvent]:
        result = FetchResult(
            status=outcome.status,
            latency_s=outcome.elapsed_ms / 1000.0,
            failure=outcome.failure,
            retry_after_s=retry_after_seconds(outcome.retry_after, self._clock()),
        )
        lease = LimiterPermit(domain=permit.domain, lease_id=permit.token, probe=permit.probe)
        return await self._limiter.release(lease, result)
