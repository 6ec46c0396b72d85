"""Heartbeat samples with metrics → community_node_telemetry, kept as long as the stream keeps
the samples (CCN_TELEMETRY_MAX_AGE_S).

The table is pruned by the samples' own time, not the clock: rows older than the stream's age
before the newest sample applied go, so a rebuild by replay prunes exactly as the live run did.
Pruning runs at most once per PRUNE_EVERY of sample time, on the (seen_at) index, so a batch
pays one indexed delete now and then, not one per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import msgspec

from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.projection import ColumnarSql
from ccn_core.topology import NODE_TELEMETRY
from ccn_proto.envelope import Envelope
from ccn_proto.nodes import HeartbeatSample

PRUNE_EVERY: Final = timedelta(minutes=1)
_decode_heartbeat = msgspec.json.Decoder(Envelope[HeartbeatSample]).decode

_INSERT = ColumnarSql("""
INSERT INTO community_node_telemetry (stream_seq, node_id, session_id, seen_at, cpu_load, memory_free,
                                      last_job_ms, network_latency_ms)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::bigint[],
                     $7::bigint[], $8::int[])
ON CONFLICT (stream_seq) DO NOTHING""")
_PRUNE = "DELETE FROM community_node_telemetry WHERE seen_at < $1"

TelemetryRow = tuple[int, str, str, datetime, float | None, int | None, int | None, int | None]


def telemetry_rows(events: Sequence[StoredEvent]) -> list[TelemetryRow]:
    """One row per sample that carried metrics."""
    rows: list[TelemetryRow] = []
    for stored in events:
        sample = _decode_heartbeat(stored.data).data
        metrics = sample.metrics
        if metrics is None:
            continue
        rows.append(
            (
                stored.seq,
                sample.node_id,
                sample.session_id,
                sample.seen_at,
                metrics.cpu_load,
                metrics.memory_free,
                metrics.last_job_ms,
                metrics.network_latency_ms,
            )
        )
    return rows


class NodeTelemetry:
    spec = NODE_TELEMETRY
    tables = ("community_node_telemetry",)

    def __init__(self, max_age_s: float) -> None:
        # 0: the stream keeps samples for ever, and so does the table
        self._max_age = timedelta(seconds=max_age_s) if max_age_s > 0 else None
        self._pruned_at: datetime | None = None

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        rows = telemetry_rows(events)
        if not rows:
            return
        await conn.execute(_INSERT.text, *(list(column) for column in zip(*rows, strict=True)))
        newest = max(row[3] for row in rows)
        if self._max_age is not None and (self._pruned_at is None or newest - self._pruned_at >= PRUNE_EVERY):
            await conn.execute(_PRUNE, newest - self._max_age)
            self._pruned_at = newest
