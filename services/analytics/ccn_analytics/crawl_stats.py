"""Crawl analytics per domain (CC-65), pure: the fetch records of CCN_FETCH folded into one
`DomainStats` per domain, the row of crawl_domain_stats.

`fold_event(stats, envelope)` is an evolve: the projection (crawl_projection) loads the rows a
batch touches, folds the batch's events into them in stream order and writes them back, in the
batch's transaction. Every field is a count, a sum added in stream order, or the latest of
something, so a rebuild by replay, whatever its batch boundaries, ends on the same row.

Latency is a histogram, so p95 needs no list of samples and survives replay: bucket i counts
answers that took at most 2^(i/8) ms (1 ms up to 2^17 ms, about 131 s; one more bucket for
longer), so a percentile read from it (the upper bound of its bucket) is high by at most 9%.
Latency is of fetches the site answered (PageFetchRecorded.elapsed_ms); a timeout's time is
the proxy's bound, not the site's latency, and counts as a failure instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import msgspec

from ccn_proto.envelope import Envelope
from ccn_proto.fetch import (
    BreakerChanged,
    DomainLimitAlert,
    ExtractionYieldRecorded,
    FetchEvent,
    FetchFailureRecorded,
    FetchRefusalRecorded,
    PageFetchRecorded,
)

BUCKETS_PER_DOUBLING: Final = 8
LATENCY_BOUNDS_MS: Final[tuple[float, ...]] = tuple(
    2.0 ** (i / BUCKETS_PER_DOUBLING) for i in range(17 * BUCKETS_PER_DOUBLING + 1)
)
HISTOGRAM_LENGTH: Final = len(LATENCY_BOUNDS_MS) + 1  # the last bucket: longer than every bound


class DomainStats(msgspec.Struct, kw_only=True):
    """One domain's crawl, as crawl_domain_stats holds it (column for column)."""

    domain: str
    pages_fetched: int = 0
    status_2xx: int = 0
    status_3xx: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    not_modified: int = 0
    bytes_stored: int = 0
    failures: dict[str, int] = msgspec.field(default_factory=dict)  # by FailureReason
    refusals: dict[str, int] = msgspec.field(default_factory=dict)  # by RefusalStage
    latency_count: int = 0
    latency_sum_ms: float = 0.0
    latency_histogram: list[int] = msgspec.field(default_factory=lambda: [0] * HISTOGRAM_LENGTH)
    yield_pages: int = 0
    fields_asked: int = 0
    fields_found: int = 0
    breaker_state: str | None = None  # None: never changed (closed)
    breaker_changed_at: datetime | None = None
    breaker_reason: str | None = None
    breaker_opens: int = 0
    limit_alerts: int = 0
    last_limit_alert_at: datetime | None = None
    last_limit_alert_limit: str | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None


def latency_bucket(elapsed_ms: float) -> int:
    """The histogram bucket of one answer's latency (NaN or at most 1 ms: the first)."""
    if math.isnan(elapsed_ms) or elapsed_ms <= 1.0:
        return 0
    if math.isinf(elapsed_ms):
        return len(LATENCY_BOUNDS_MS)
    # the smallest i with elapsed <= 2^(i/8); the epsilon keeps an exact bound in its own bucket
    index = math.ceil(math.log2(elapsed_ms) * BUCKETS_PER_DOUBLING - 1e-9)
    return min(index, len(LATENCY_BOUNDS_MS))


def percentile_ms(histogram: Sequence[int], fraction: float) -> float | None:
    """The latency at or under which `fraction` of the answers came: the upper bound of its
    bucket, so high by at most 9%; for the overflow bucket its lower bound (the longest bound,
    about 131 s: "at least"). None without answers."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen, index = 0, 0
    while seen + histogram[index] < rank:
        seen += histogram[index]
        index += 1
    return LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]


def fold_event(stats: DomainStats, envelope: Envelope[Any]) -> DomainStats:
    """`stats` after one fetch record of its domain (the record's own domain field)."""
    at = envelope.occurred_at
    stats.first_seen_at = at if stats.first_seen_at is None else min(stats.first_seen_at, at)
    stats.last_seen_at = at if stats.last_seen_at is None else max(stats.last_seen_at, at)
    event: FetchEvent = envelope.data
    match event:
        case PageFetchRecorded():
            stats.pages_fetched += 1
            _count_status(stats, event.status)
            stats.not_modified += int(event.not_modified)
            stats.bytes_stored += max(0, event.size or 0)
            elapsed = event.elapsed_ms if math.isfinite(event.elapsed_ms) and event.elapsed_ms > 0 else 0.0
            stats.latency_count += 1
            stats.latency_sum_ms += elapsed
            stats.latency_histogram[latency_bucket(elapsed)] += 1
        case FetchFailureRecorded():
            stats.failures[event.reason] = stats.failures.get(event.reason, 0) + 1
        case FetchRefusalRecorded():
            stats.refusals[event.stage] = stats.refusals.get(event.stage, 0) + 1
        case BreakerChanged():
            stats.breaker_state, stats.breaker_changed_at, stats.breaker_reason = event.state, at, event.reason
            stats.breaker_opens += int(event.state == "open")
        case DomainLimitAlert():
            stats.limit_alerts += 1
            stats.last_limit_alert_at, stats.last_limit_alert_limit = at, event.limit
        case ExtractionYieldRecorded():
            stats.yield_pages += event.pages
            stats.fields_asked += event.fields_asked
            stats.fields_found += min(event.fields_found, event.fields_asked)
    return stats


def _count_status(stats: DomainStats, status: int) -> None:
    if 200 <= status < 300:
        stats.status_2xx += 1
    elif 300 <= status < 400:
        stats.status_3xx += 1
    elif 400 <= status < 500:
        stats.status_4xx += 1
    elif status >= 500:
        stats.status_5xx += 1


class DomainReport(msgspec.Struct, frozen=True, kw_only=True):
    """A domain's stats as the admin API and `ccn crawl stats` show them."""

    domain: str
    pages_fetched: int
    successes: int  # 2xx answers and 304s (not modified)
    failed: int  # fetches that got no usable answer (FetchFailureRecorded)
    success_rate: float | None  # successes / (pages_fetched + failed)
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    not_modified: int
    bytes_stored: int
    failures: dict[str, int]
    refused: int
    refusals: dict[str, int]
    avg_latency_ms: float | None
    p95_latency_ms: float | None  # None: no answers
    fields_asked: int
    fields_found: int
    extraction_yield: float | None  # fields_found / fields_asked
    breaker_state: str
    breaker_changed_at: datetime | None
    breaker_reason: str | None
    breaker_opens: int
    limit_alerts: int
    last_limit_alert_at: datetime | None
    last_limit_alert_limit: str | None
    first_seen_at: datetime | None
    last_seen_at: datetime | None


def report(stats: DomainStats) -> DomainReport:
    failed = sum(stats.failures.values())
    successes = stats.status_2xx + stats.not_modified
    attempts = stats.pages_fetched + failed
    p95 = percentile_ms(stats.latency_histogram, 0.95)
    return DomainReport(
        domain=stats.domain,
        pages_fetched=stats.pages_fetched,
        successes=successes,
        failed=failed,
        success_rate=successes / attempts if attempts else None,
        status_2xx=stats.status_2xx,
        status_3xx=stats.status_3xx,
        status_4xx=stats.status_4xx,
        status_5xx=stats.status_5xx,
        not_modified=stats.not_modified,
        bytes_stored=stats.bytes_stored,
        failures=dict(sorted(stats.failures.items())),
        refused=sum(stats.refusals.values()),
        refusals=dict(sorted(stats.refusals.items())),
        avg_latency_ms=stats.latency_sum_ms / stats.latency_count if stats.latency_count else None,
        p95_latency_ms=None if p95 is None else round(p95, 3),
        fields_asked=stats.fields_asked,
        fields_found=stats.fields_found,
        extraction_yield=stats.fields_found / stats.fields_asked if stats.fields_asked else None,
        breaker_state=stats.breaker_state or "closed",
        breaker_changed_at=stats.breaker_changed_at,
        breaker_reason=stats.breaker_reason,
        breaker_opens=stats.breaker_opens,
        limit_alerts=stats.limit_alerts,
        last_limit_alert_at=stats.last_limit_alert_at,
        last_limit_alert_limit=stats.last_limit_alert_limit,
        first_seen_at=stats.first_seen_at,
        last_seen_at=stats.last_seen_at,
    )
