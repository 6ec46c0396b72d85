"""Crawl analytics, pure: fetch records folded per domain (counts by status, cause and stage, the
latency histogram and its p95, extraction yield, breaker and alerts), the same rows whatever the
batch boundaries, the CSV export, and the orchestrator-log steps of a domain."""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from ccn_analytics.crawl_api import CSV_COLUMNS, csv_text
from ccn_analytics.crawl_projection import fetch_steps, fold_batch
from ccn_analytics.crawl_stats import (
    HISTOGRAM_LENGTH,
    LATENCY_BOUNDS_MS,
    DomainStats,
    fold_event,
    latency_bucket,
    percentile_ms,
    report,
)
from ccn_analytics.orchestrator_projection import Step
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.fetch import (
    BreakerChanged,
    DomainLimitAlert,
    ExtractionYieldRecorded,
    FetchEvent,
    FetchFailureRecorded,
    FetchRefusalRecorded,
    PageFetchRecorded,
)

T0 = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
D = "grants.example.org"


def envelope(data: FetchEvent, at: datetime = T0, n: int = 1) -> Envelope[Any]:
    tag = type(data).__struct_config__.tag
    assert isinstance(tag, str)
    return Envelope(
        event_id=f"01938a6e-0000-7000-8000-{n:012d}",
        type=tag,
        schema_version=1,
        aggregate_id="grants_example_org",
        occurred_at=at,
        correlation_id="c-1",
        causation_id=None,
        actor=Actor(kind="service", id="fetch-proxy-1"),
        data=data,
    )


def page(
    status: int, elapsed_ms: float, *, domain: str = D, size: int | None = 100, not_modified: bool = False
) -> PageFetchRecorded:
    return PageFetchRecorded(
        fetch_id="f",
        job_id="j",
        node_id="n",
        domain=domain,
        url=f"https://{domain}/",
        final_url=f"https://{domain}/",
        status=status,
        size=size,
        not_modified=not_modified,
        elapsed_ms=elapsed_ms,
    )


def failure(reason: str) -> FetchFailureRecorded:
    return msgspec.convert(
        {"fetch_id": "f", "job_id": "j", "node_id": "n", "domain": D, "url": "u", "reason": reason, "elapsed_ms": 5.0},
        FetchFailureRecorded,
    )


def refusal(stage: str, domain: str = D) -> FetchRefusalRecorded:
    return msgspec.convert(
        {"fetch_id": "f", "job_id": "j", "node_id": "n", "domain": domain, "url": "u", "stage": stage, "reason": "r"},
        FetchRefusalRecorded,
    )


@pytest.mark.parametrize(
    ("elapsed_ms", "bucket"),
    [(-5.0, 0), (0.0, 0), (1.0, 0), (1.0001, 1), (2.0, 8), (2.0001, 9), (1000.0, 80), (2.0**17, 136), (1e9, 137)],
)
def test_a_latency_falls_in_the_first_bucket_whose_bound_holds_it(elapsed_ms: float, bucket: int) -> None:
    assert latency_bucket(elapsed_ms) == bucket
    if bucket < len(LATENCY_BOUNDS_MS):
        assert elapsed_ms <= LATENCY_BOUNDS_MS[bucket]
        assert bucket == 0 or elapsed_ms > LATENCY_BOUNDS_MS[bucket - 1]


def test_nan_and_infinite_latencies_land_in_the_end_buckets() -> None:
    assert latency_bucket(math.nan) == 0
    assert latency_bucket(math.inf) == HISTOGRAM_LENGTH - 1


def test_p95_from_the_histogram_is_within_nine_percent_above_the_exact_value() -> None:
    rng = random.Random(3)
    samples = [rng.lognormvariate(4.0, 1.0) for _ in range(5000)]
    histogram = [0] * HISTOGRAM_LENGTH
    for sample in samples:
        histogram[latency_bucket(sample)] += 1
    exact = sorted(samples)[math.ceil(0.95 * len(samples)) - 1]
    estimate = percentile_ms(histogram, 0.95)
    assert estimate is not None and exact <= estimate <= exact * 2 ** (1 / 8)
    assert percentile_ms([0] * HISTOGRAM_LENGTH, 0.95) is None


def test_a_domains_records_fold_into_counts_by_status_cause_and_stage() -> None:
    events: list[FetchEvent] = [
        page(200, 10.0),
        page(200, 30.0),
        page(304, 5.0, size=None, not_modified=True),
        page(404, 8.0),
        page(503, 400.0),
        failure("timeout"),
        failure("timeout"),
        failure("too_large"),
        refusal("robots"),
        refusal("egress"),
        refusal("robots"),
    ]
    stats = DomainStats(domain=D)
    for n, event in enumerate(events):
        fold_event(stats, envelope(event, T0 + timedelta(seconds=n)))
    shown = report(stats)
    assert (shown.pages_fetched, shown.status_2xx, shown.status_3xx, shown.status_4xx, shown.status_5xx) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert (shown.successes, shown.failed, shown.not_modified, shown.bytes_stored) == (3, 3, 1, 400)
    assert shown.success_rate == 3 / 8
    assert shown.failures == {"timeout": 2, "too_large": 1}
    assert (shown.refused, shown.refusals) == (3, {"egress": 1, "robots": 2})
    assert shown.avg_latency_ms == pytest.approx(453.0 / 5)
    assert shown.p95_latency_ms == pytest.approx(2 ** (70 / 8), abs=1e-3)  # 400 ms: the bucket up to 430.5 ms
    assert (shown.first_seen_at, shown.last_seen_at) == (T0, T0 + timedelta(seconds=10))
    assert (shown.breaker_state, shown.extraction_yield, shown.limit_alerts) == ("closed", None, 0)


def test_breaker_changes_alerts_and_extraction_yield_are_kept() -> None:
    stats = DomainStats(domain=D)
    opened = BreakerChanged(
        domain=D, state="open", previous="closed", reason="5 failures in a row", consecutive_failures=5
    )
    half = BreakerChanged(domain=D, state="half_open", previous="open", reason="cool-down over: one probe")
    alert = DomainLimitAlert(domain=D, limit="per_minute", denials=30, window_s=60.0)
    harvest = ExtractionYieldRecorded(domain=D, job_id="j", pages=2, fields_asked=10, fields_found=7)
    hostile = ExtractionYieldRecorded(domain=D, job_id="j", pages=1, fields_asked=2, fields_found=9)
    events: list[FetchEvent] = [opened, half, alert, harvest, hostile]
    for n, event in enumerate(events):
        fold_event(stats, envelope(event, T0 + timedelta(seconds=n)))
    shown = report(stats)
    assert (shown.breaker_state, shown.breaker_reason, shown.breaker_opens) == ("half_open", half.reason, 1)
    assert shown.breaker_changed_at == T0 + timedelta(seconds=1)
    assert (shown.limit_alerts, shown.last_limit_alert_limit) == (1, "per_minute")
    # found is never more than asked: a record claiming so counts what was asked
    assert (shown.fields_asked, shown.fields_found, shown.extraction_yield) == (12, 9, 0.75)


def test_the_rows_are_the_same_whatever_the_batch_boundaries() -> None:
    rng = random.Random(11)
    kinds: list[Callable[[], FetchEvent]] = [
        lambda: page(rng.choice((200, 301, 404, 500)), rng.uniform(0.5, 3000.0), domain=rng.choice((D, "b.example"))),
        lambda: failure(rng.choice(("timeout", "tls_error"))),
        lambda: refusal(rng.choice(("robots", "allow_list")), domain=rng.choice((D, "b.example", ""))),
    ]
    envelopes = [envelope(rng.choice(kinds)(), T0 + timedelta(milliseconds=n)) for n in range(500)]
    whole = fold_batch({}, envelopes)
    batched: dict[str, DomainStats] = {}
    start = 0
    while start < len(envelopes):
        size = rng.randint(1, 40)
        # as the projection does: the stored rows round-trip through their columns between batches
        batched = {key: msgspec.convert(msgspec.to_builtins(row), DomainStats) for key, row in batched.items()}
        batched = fold_batch(batched, envelopes[start : start + size])
        start += size
    assert batched == whole
    assert set(whole) == {D, "b.example", ""}


def test_the_csv_has_one_column_per_cause_and_stage_and_zeros_for_the_unseen() -> None:
    stats = DomainStats(domain=D)
    for event in (page(200, 12.0), failure("timeout"), refusal("robots")):
        fold_event(stats, envelope(event))
    rows = list(csv.DictReader(io.StringIO(csv_text([report(stats)]))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert (rows[0]["domain"], rows[0]["pages_fetched"], rows[0]["failures_timeout"]) == (D, "1", "1")
    assert (rows[0]["refusals_robots"], rows[0]["refusals_egress"], rows[0]["failures_tls_error"]) == ("1", "0", "0")
    assert rows[0]["breaker_changed_at"] == "" and rows[0]["first_seen_at"] == T0.isoformat()
    assert csv_text([]).splitlines() == [",".join(CSV_COLUMNS)]


def test_breaker_changes_and_alerts_are_domain_steps_of_the_orchestrator_log() -> None:
    until = T0 + timedelta(seconds=30)
    opened = BreakerChanged(
        domain=D,
        state="open",
        previous="closed",
        reason="5 failures in a row",
        consecutive_failures=5,
        open_until=until,
    )
    assert fetch_steps(envelope(opened)) == [
        Step(
            event="domain_breaker_changed",
            details={
                "domain": D,
                "state": "open",
                "previous": "closed",
                "reason": "5 failures in a row",
                "consecutive_failures": 5,
                "open_until": until,
            },
        )
    ]
    alert = DomainLimitAlert(domain=D, limit="concurrent", denials=30, window_s=60.0)
    assert fetch_steps(envelope(alert)) == [
        Step(event="domain_limit_alert", details={"domain": D, "limit": "concurrent", "denials": 30, "window_s": 60.0})
    ]
    assert fetch_steps(envelope(page(200, 1.0))) == []
