"""The seam between the fetch proxy and a domain's politeness: its rate limits, concurrency,
crawl-delay, Retry-After and circuit breaker.

The proxy calls `acquire` once per request it is about to send to a domain (each redirect hop
too) and `release` once the request is over, with how it went; nothing else in the proxy knows
how limits are kept. The KV-shared implementation (ccn_core.politeness and
ccn_core.domain_limiter) plugs in here; until it is wired, `UnlimitedGate` lets every request
through, so no limit is enforced by the proxy itself.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

from ccn_core.domain.domain_policy import PolicyLimits


class Permit(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    token: str = ""


class LimitRefusal(msgspec.Struct, frozen=True, kw_only=True):
    """No request now: `stage` rate_limit (a limit, crawl-delay or Retry-After) or breaker."""

    stage: Literal["rate_limit", "breaker"]
    reason: str
    retry_after: float
    detail: str = ""


class RequestOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a request went: `status` None when no response came (`failure` says why)."""

    status: int | None
    elapsed_ms: float
    failure: str | None = None
    retry_after: str | None = None


class DomainGate(Protocol):
    async def acquire(
        self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None
    ) -> Permit | LimitRefusal: ...

    async def release(self, permit: Permit, outcome: RequestOutcome) -> None: ...


class UnlimitedGate:
    """Every request allowed, nothing kept: the gate until the shared limiter is wired."""

    async def acquire(self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None) -> Permit | LimitRefusal:
        return Permit(domain=domain)

    async def release(self, permit: Permit, outcome: RequestOutcome) -> None:
        return None
