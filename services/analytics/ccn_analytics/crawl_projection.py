"""Crawl analytics' projections of CCN_FETCH (CC-65).

- `CrawlDomainStatsProjection`: every fetch record into crawl_domain_stats. A batch reads the
  rows of the domains it names (locked), folds its events into them in stream order
  (ccn_analytics.crawl_stats.fold_event) and writes them back: two statements a batch, however
  many events, and the same rows whatever the batch boundaries, so a rebuild equals live.
- `FetchLogProjection`: breaker changes and limit alerts as steps of the orchestrator log
  (`domain_breaker_changed`, `domain_limit_alert`), with job_id and node_id NULL.

A record of a type this service does not know yet (a newer proxy's) is skipped, never a reason
to stop; one that does not decode goes to the dead letter like any other projection's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ccn_analytics.crawl_stats import HISTOGRAM_LENGTH, DomainStats, fold_event
from ccn_analytics.orchestrator_projection import (
    LogRow,
    Step,
    StreamLogProjection,
    actor_replica,
    data_decoders,
    decode_known,
    present,
    step_rows,
)
from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.topology import CRAWL_DOMAIN_STATS, ORCHESTRATOR_FETCH_LOG, ConsumerSpec
from ccn_proto.envelope import Envelope
from ccn_proto.fetch import FETCH_EVENT_TYPES, BreakerChanged, DomainLimitAlert

_DECODERS = data_decoders(FETCH_EVENT_TYPES)
COLUMNS: tuple[str, ...] = DomainStats.__struct_fields__
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM crawl_domain_stats WHERE domain = ANY($1::text[]) FOR UPDATE"  # noqa: S608
_JSON_COLUMNS = frozenset({"failures", "refusals"})
_UPSERT = (
    f"INSERT INTO crawl_domain_stats ({', '.join(COLUMNS)}) VALUES ("  # noqa: S608 - constant column names
    + ", ".join(f"${i}::jsonb" if name in _JSON_COLUMNS else f"${i}" for i, name in enumerate(COLUMNS, start=1))
    + ") ON CONFLICT (domain) DO UPDATE SET "
    + ", ".join(f"{name} = EXCLUDED.{name}" for name in COLUMNS[1:])
)
_encode = msgspec.json.Encoder().encode
_decode_counts = msgspec.json.Decoder(dict[str, int]).decode


def decode_fetch_event(data: bytes) -> Envelope[Any] | None:
    """The fetch record, or None when its type is one this service does not know yet."""
    return decode_known(data, _DECODERS)


def fold_batch(rows: dict[str, DomainStats], envelopes: Sequence[Envelope[Any]]) -> dict[str, DomainStats]:
    """The rows after the batch, in stream order; `rows` holds the stored rows of its domains."""
    for envelope in envelopes:
        domain = envelope.data.domain
        stats = rows.get(domain)
        if stats is None:
            stats = rows[domain] = DomainStats(domain=domain)
        fold_event(stats, envelope)
    return rows


def stats_of_record(record: Any) -> DomainStats:  # an asyncpg Record: Any is what asyncpg types it as
    values = {name: record[name] for name in COLUMNS}
    for name in _JSON_COLUMNS:
        values[name] = _decode_counts(values[name])
    histogram = list(values["latency_histogram"])
    values["latency_histogram"] = histogram + [0] * (HISTOGRAM_LENGTH - len(histogram))
    return DomainStats(**values)


def _row(stats: DomainStats) -> tuple[object, ...]:
    values = [getattr(stats, name) for name in COLUMNS]
    return tuple(
        _encode(value).decode() if name in _JSON_COLUMNS else value for name, value in zip(COLUMNS, values, strict=True)
    )


class CrawlDomainStatsProjection:
    """CCN_FETCH into crawl_domain_stats."""

    tables = ("crawl_domain_stats",)

    def __init__(self, spec: ConsumerSpec = CRAWL_DOMAIN_STATS) -> None:
        self.spec = spec

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        envelopes = [envelope for stored in events if (envelope := decode_fetch_event(stored.data)) is not None]
        if not envelopes:
            return
        domains = sorted({envelope.data.domain for envelope in envelopes})
        stored_rows = {record["domain"]: stats_of_record(record) for record in await conn.fetch(_SELECT, domains)}
        folded = fold_batch(stored_rows, envelopes)
        await conn.executemany(_UPSERT, [_row(folded[domain]) for domain in domains])


def fetch_steps(envelope: Envelope[Any]) -> list[Step]:
    match envelope.data:
        case BreakerChanged() as changed:
            facts = present(
                domain=changed.domain,
                state=changed.state,
                previous=changed.previous,
                reason=changed.reason,
                consecutive_failures=changed.consecutive_failures,
                open_until=changed.open_until,
            )
            return [Step(event="domain_breaker_changed", details=facts)]
        case DomainLimitAlert() as alert:
            facts = present(domain=alert.domain, limit=alert.limit, denials=alert.denials, window_s=alert.window_s)
            return [Step(event="domain_limit_alert", details=facts)]
    return []  # a fetch's own record: the crawl stats have it, the log does not


class FetchLogProjection(StreamLogProjection):
    """Domain steps: CCN_FETCH's breaker changes and limit alerts into orchestrator_log."""

    def __init__(self, spec: ConsumerSpec = ORCHESTRATOR_FETCH_LOG) -> None:
        super().__init__(spec)

    def event_rows(self, stored: StoredEvent) -> list[LogRow] | None:
        envelope = decode_fetch_event(stored.data)
        if envelope is None:
            return None
        steps = fetch_steps(envelope)
        return step_rows(envelope, self.spec.stream, stored.seq, steps, job_id=None, replica=actor_replica(envelope))
