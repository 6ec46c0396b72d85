"""The domain gate the fetch proxy runs with: politeness shared by every replica
(ccn_core.domain_limiter over ccn_core.politeness: per-minute and per-hour limits, concurrent
fetches, crawl-delay, AutoThrottle, Retry-After and the breaker, in one KV key per domain),
adapted to the proxy's seam (ccn_fetch_proxy.domain_gate)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ccn_core.domain.domain_policy import PolicyLimits
from ccn_core.domain_limiter import DomainLimiter
from ccn_core.domain_limiter import Permit as LimiterPermit
from ccn_core.domain_limiter import Refusal as LimiterRefusal
from ccn_core.politeness import NOT_SENT as NOTHING_SENT
from ccn_core.politeness import FetchResult
from ccn_fetch_proxy.domain_gate import GateEvent, LimitRefusal, Permit, RequestOutcome, retry_after_seconds


class SharedDomainGate:
    def __init__(self, limiter: DomainLimiter, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._limiter = limiter
        self._clock = clock

    async def acquire(self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None) -> Permit | LimitRefusal:
        decided = await self._limiter.acquire(domain, limits, crawl_delay_s)
        if isinstance(decided, LimiterRefusal):
            return LimitRefusal(
                stage="breaker" if decided.limit == "breaker" else "rate_limit",
                reason=decided.limit,
                retry_after=round(decided.retry_after_s, 3),
                detail=f"{domain}: {decided.limit} says wait {decided.retry_after_s:.1f} s",
                events=decided.events,
            )
        return Permit(domain=decided.domain, token=decided.lease_id, probe=decided.probe, events=decided.events)

    async def release(self, permit: Permit, outcome: RequestOutcome) -> Sequence[GateEvent]:
        held = LimiterPermit(domain=permit.domain, lease_id=permit.token, probe=permit.probe)
        result = (
            FetchResult(
                status=outcome.status,
                latency_s=outcome.elapsed_ms / 1000,
                failure=outcome.failure,
                retry_after_s=retry_after_seconds(outcome.retry_after, self._clock()),
            )
            if outcome.sent
            else NOTHING_SENT
        )
        return await self._limiter.release(held, result)
