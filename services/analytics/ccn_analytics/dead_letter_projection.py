"""Dead letters as operators see them (ADR 0012): CCN_DEADLETTER → `dead_letters` (one row per
dead letter, with its replay status) and → orchestrator_log (`event_dead_lettered`, beside the
steps of the job or node whose event it was, on that event's correlation id).

The records hold no part of the poison event: where it is, its type and ids, and the error,
all made printable by the consumer that recorded them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccn_analytics.orchestrator_projection import LogRow, Step, StreamLogProjection, present, step_rows
from ccn_core import subjects
from ccn_core.db import Connection
from ccn_core.dead_letter import decode_dead_letter_event, replay_hint
from ccn_core.eventstore import StoredEvent
from ccn_core.projection import Statement, execute_in_order
from ccn_core.topology import DEAD_LETTERS, ORCHESTRATOR_DEADLETTER_LOG, ConsumerSpec
from ccn_proto.deadletter import DeadLettered, DeadLetterEvent, DeadLetterReplayed, DeadLetterReplayFailed
from ccn_proto.envelope import Envelope

# the aggregate of a dead-lettered event, as the log's columns name it, from its subject
_JOB_AGGREGATES = frozenset({"job"})
_NODE_AGGREGATES = frozenset({"node", "telemetry"})


def dead_letter_steps(envelope: Envelope[DeadLetterEvent]) -> list[Step]:
    match envelope.data:
        case DeadLettered() as record:
            facts = present(
                dead_letter_id=envelope.aggregate_id,
                consumer=record.consumer,
                stream=record.stream,
                stream_seq=record.stream_seq,
                subject=record.subject,
                event_type=record.event_type,
                event_id=record.event_id,
                error_class=record.error_class,
                error=record.error_message,
                deliveries=record.deliveries,
                replay=replay_hint(envelope.aggregate_id),
            )
            return [Step(event="event_dead_lettered", node_id=_aggregate(record, _NODE_AGGREGATES), details=facts)]
        case DeadLetterReplayed() as replayed:
            facts = {"dead_letter_id": envelope.aggregate_id, "replay_id": replayed.replay_id}
            return [Step(event="dead_letter_replayed", details=facts)]
        case DeadLetterReplayFailed() as failed:
            facts = {
                "dead_letter_id": envelope.aggregate_id,
                "replay_id": failed.replay_id,
                "error_class": failed.error_class,
                "error": failed.error_message,
            }
            return [Step(event="dead_letter_replay_failed", details=facts)]
    raise TypeError(f"not a dead letter event: {envelope.data!r}")


def _aggregate(record: DeadLettered, aggregates: frozenset[str]) -> str | None:
    """The id in the dead-lettered event's subject (ccn.<aggregate>.<id>.<event>) when its
    aggregate is one of `aggregates`."""
    try:
        aggregate, aggregate_id, _ = subjects.split_event(record.subject)
    except ValueError:
        return None
    return aggregate_id if aggregate in aggregates else None


def dead_letter_log_rows(envelope: Envelope[DeadLetterEvent], stream: str, seq: int) -> list[LogRow]:
    job_id = _aggregate(envelope.data, _JOB_AGGREGATES) if isinstance(envelope.data, DeadLettered) else None
    return step_rows(envelope, stream, seq, dead_letter_steps(envelope), job_id=job_id, replica=None)


class DeadLetterLogProjection(StreamLogProjection):
    """The dead letters: CCN_DEADLETTER into orchestrator_log."""

    def __init__(self, spec: ConsumerSpec = ORCHESTRATOR_DEADLETTER_LOG) -> None:
        super().__init__(spec)

    def event_rows(self, stored: StoredEvent) -> list[LogRow] | None:
        return dead_letter_log_rows(decode_dead_letter_event(stored.data), self.spec.stream, stored.seq)


_RECORDED = """
INSERT INTO dead_letters (dead_letter_id, consumer, consumer_kind, stream, stream_seq, subject, event_type, event_id,
                          correlation_id, error_class, error_message, deliveries, status, dead_lettered_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $13)
ON CONFLICT (dead_letter_id) DO UPDATE SET
    status = 'pending', error_class = EXCLUDED.error_class, error_message = EXCLUDED.error_message,
    deliveries = EXCLUDED.deliveries, dead_lettered_at = EXCLUDED.dead_lettered_at, updated_at = EXCLUDED.updated_at"""
_REPLAYED = """
UPDATE dead_letters SET status = 'replayed', replays = replays + 1, last_replay_error = NULL, updated_at = $2
WHERE dead_letter_id = $1"""
_REPLAY_FAILED = """
UPDATE dead_letters SET status = 'failed_again', replays = replays + 1, last_replay_error = $2, updated_at = $3
WHERE dead_letter_id = $1"""


def dead_letter_statement(envelope: Envelope[DeadLetterEvent]) -> Statement:
    at = envelope.occurred_at
    dead_letter = envelope.aggregate_id
    args: tuple[Any, ...]
    match envelope.data:
        case DeadLettered() as r:
            args = (dead_letter, r.consumer, r.kind, r.stream, r.stream_seq, r.subject, r.event_type, r.event_id)
            return _RECORDED, (*args, envelope.correlation_id, r.error_class, r.error_message, r.deliveries, at)
        case DeadLetterReplayed():
            return _REPLAYED, (dead_letter, at)
        case DeadLetterReplayFailed() as failed:
            return _REPLAY_FAILED, (dead_letter, f"{failed.error_class}: {failed.error_message}", at)
    raise TypeError(f"not a dead letter event: {envelope.data!r}")


class DeadLetterReadModel:
    """CCN_DEADLETTER into dead_letters: each dead letter and where its replays stand."""

    spec = DEAD_LETTERS
    tables = ("dead_letters",)

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        statements = [dead_letter_statement(decode_dead_letter_event(stored.data)) for stored in events]
        await execute_in_order(conn, statements)
