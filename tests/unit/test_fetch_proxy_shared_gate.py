"""The adapter between the proxy's gate seam and the shared domain limiter: refusals keep their
kind (a breaker is stage breaker, every limit stage rate_limit), outcomes become what the
limiter learns from, and the limiter's events come through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from ccn_core.domain.domain_policy import PolicyLimits
from ccn_core.domain_limiter import DomainLimiter
from ccn_core.domain_limiter import Permit as LimiterPermit
from ccn_core.domain_limiter import Refusal as LimiterRefusal
from ccn_core.politeness import NOT_SENT, FetchResult
from ccn_fetch_proxy.domain_gate import LimitRefusal, Permit, RequestOutcome, SharedGate
from ccn_proto.fetch import BreakerChanged, DomainLimitAlert

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class StubLimiter:
    def __init__(self, answer: LimiterPermit | LimiterRefusal) -> None:
        self.answer = answer
        self.asked: list[tuple[str, PolicyLimits, float | None]] = []
        self.released: list[tuple[LimiterPermit, FetchResult]] = []

    async def acquire(self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None = None) -> object:
        self.asked.append((domain, limits, crawl_delay_s))
        return self.answer

    async def release(self, permit: LimiterPermit, result: FetchResult) -> list[BreakerChanged]:
        self.released.append((permit, result))
        return [BreakerChanged(domain=permit.domain, state="open", previous="closed", reason="5 failures")]


def gate(answer: LimiterPermit | LimiterRefusal) -> tuple[SharedGate, StubLimiter]:
    stub = StubLimiter(answer)
    return SharedGate(cast(DomainLimiter, stub), clock=lambda: NOW), stub


async def test_refusals_keep_their_kind_and_their_events() -> None:
    alert = DomainLimitAlert(domain="example.org", limit="per_minute", denials=10, window_s=60.0)
    cases = (
        ("breaker", "breaker", "breaker_open"),
        ("per_minute", "rate_limit", "domain_per_minute_limit"),
        ("crawl_delay", "rate_limit", "domain_crawl_delay_limit"),
    )
    for limit, stage, reason in cases:
        shared, stub = gate(LimiterRefusal(limit=limit, retry_after_s=2.5, events=(alert,)))  # type: ignore[arg-type]
        refused = await shared.acquire("example.org", PolicyLimits(requests_per_minute=6), 1.0)
        assert isinstance(refused, LimitRefusal)
        assert (refused.stage, refused.reason, refused.retry_after, refused.events) == (stage, reason, 2.5, (alert,))
        assert stub.asked == [("example.org", PolicyLimits(requests_per_minute=6), 1.0)]


async def test_a_permit_is_given_back_with_what_the_request_taught() -> None:
    shared, stub = gate(LimiterPermit(domain="example.org", lease_id="lease-1", probe=True))
    permit = await shared.acquire("example.org", PolicyLimits(), None)
    assert permit == Permit(domain="example.org", token="lease-1", probe=True)
    events = await shared.release(permit, RequestOutcome(status=503, elapsed_ms=250.0, retry_after="120"))
    assert [event.state for event in events] == ["open"]
    held, result = stub.released[-1]
    assert held == LimiterPermit(domain="example.org", lease_id="lease-1", probe=True)
    assert result == FetchResult(status=503, latency_s=0.25, retry_after_s=120.0)
    await shared.release(permit, RequestOutcome(elapsed_ms=900.0, failure="timeout"))
    assert stub.released[-1][1] == FetchResult(latency_s=0.9, failure="timeout")
    await shared.release(permit, RequestOutcome())
    assert stub.released[-1][1] == NOT_SENT
