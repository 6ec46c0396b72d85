"""The quarantine read model: CCN_RESULTS verdicts → quarantined_results, one row per rejected
result, updated when an admin releases or discards it.

A decision always follows its rejection in the stream, so a batch inserts its rejections first
(one statement) and then applies its decisions in stream order (one statement each kind): the
rows end as if every event had been applied one by one. A decision whose rejection is not in the
table cannot come from the decider (it refuses to decide on anything but a rejected result), so
it fails the batch loudly and goes to a dead letter rather than vanishing.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.topology import QUARANTINE_READ_MODEL, ConsumerSpec
from ccn_proto.envelope import Envelope
from ccn_proto.results import ResultDiscarded, ResultRejected, ResultReleased

QuarantineEvent = ResultRejected | ResultReleased | ResultDiscarded
_decode = msgspec.json.Decoder(Envelope[QuarantineEvent]).decode
_QUARANTINE_EVENTS = frozenset({"rejected", "released", "discarded"})
_encode = msgspec.json.Encoder().encode

_INSERT = """
INSERT INTO quarantined_results (job_id, node_id, attempt, checksum, job_type, job_type_version, rules_version,
                                 reasons, reasons_truncated, rejected_at, correlation_id, status, last_seq)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, 'rejected', $12)
ON CONFLICT (job_id, node_id, attempt, checksum) DO NOTHING"""
_DECIDE = """
UPDATE quarantined_results
SET status = $5, decided_by = $6, decision_comment = $7, decided_at = $8, decision_correlation_id = $9, last_seq = $10
WHERE job_id = $1 AND node_id = $2 AND attempt = $3 AND checksum = $4 AND last_seq < $10
RETURNING 1"""
_EXISTS = """SELECT 1 FROM quarantined_results WHERE job_id = $1 AND node_id = $2 AND attempt = $3 AND checksum = $4"""


class UndecidableDecision(ValueError):
    """A release or discard of a result the table holds no rejection of."""


class QuarantineReadModel:
    """A Projection (ccn_core.projection) of CCN_RESULTS into quarantined_results."""

    tables = ("quarantined_results",)

    def __init__(self, spec: ConsumerSpec = QUARANTINE_READ_MODEL) -> None:
        self.spec = spec

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        # the consumer hears every result event (a dense read); verdicts accepted and receipts
        # are not the quarantine's
        decoded = [
            (stored.seq, _decode(stored.data))
            for stored in events
            if stored.subject.rsplit(".", 1)[-1] in _QUARANTINE_EVENTS
        ]
        rejections = [
            (
                envelope.aggregate_id,
                event.node_id,
                event.attempt,
                event.checksum,
                event.job_type,
                event.job_type_version,
                event.rules_version,
                _encode(event.reasons).decode(),
                event.reasons_truncated,
                envelope.occurred_at,
                envelope.correlation_id,
                seq,
            )
            for seq, envelope in decoded
            if isinstance(event := envelope.data, ResultRejected)
        ]
        if rejections:
            await conn.executemany(_INSERT, rejections)
        for seq, envelope in decoded:
            decision = envelope.data
            if isinstance(decision, ResultRejected):
                continue
            key = (envelope.aggregate_id, decision.node_id, decision.attempt, decision.checksum)
            status = "released" if isinstance(decision, ResultReleased) else "discarded"
            changed = await conn.fetchval(
                _DECIDE,
                *key,
                status,
                decision.by,
                decision.comment,
                envelope.occurred_at,
                envelope.correlation_id,
                seq,
            )
            if changed is None and await conn.fetchval(_EXISTS, *key) is None:
                raise UndecidableDecision(f"{envelope.type} of {key} before its rejection")
