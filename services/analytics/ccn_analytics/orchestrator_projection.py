"""The orchestrator log projection (CC-22): job events → orchestrator_log rows, one per lifecycle step.

The mapping is pure (`lifecycle_steps`, `log_rows`): a stream event names its steps by what it
decided, not by what the job's history holds, so a replay yields the same rows in any order of
batches. `details` is built field by field from the event, so a payload, a result or a hash
added to an event later never reaches the log.

The log is a read model of two streams: this module projects CCN_JOBS, and
orchestrator_node_projection projects the node steps of CCN_NODES into the same table, each
with its own durable consumer and checkpoint. Rows are keyed by (event_id, step) and unique per
(stream, stream_seq, step), so the two never collide and a replay of either inserts nothing twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

import msgspec

from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.logging import get_logger
from ccn_core.topology import ORCHESTRATOR_LOG, ConsumerSpec
from ccn_proto.envelope import HEADER_TYPE, Envelope
from ccn_proto.jobs import (
    JobAbandoned,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobCompletedBytes,
    JobCreated,
    JobCreatedBytes,
    JobDead,
    JobEvent,
    JobEventBytes,
    JobFailed,
    JobReleased,
    JobResultRejected,
    JobResultSetAside,
    JobResultSubmitted,
    JobResultSubmittedBytes,
    LeaseRenewed,
)

log = get_logger("ccn.analytics.orchestrator")

# Every step the log records: a job's, in the order a job can live them, then a node's
# (orchestrator_node_projection records those), then a dead letter's (dead_letter_projection),
# then a crawled domain's (crawl_projection).
LIFECYCLE_EVENTS: tuple[str, ...] = (
    "job_created",
    "job_claimed",
    "job_released",
    "job_reassigned",
    "job_result_set_aside",
    "job_result_submitted",
    "job_result_rejected",
    "job_completed",
    "job_failed",
    "job_abandoned",
    "job_retried",
    "job_dead",
    "job_cancelled",
    "node_registered",
    "node_consent_recorded",
    "node_session_started",
    "node_session_ended",
    "node_opted_out",
    "node_banned",
    "node_shadow_banned",
    "node_drain_requested",
    "node_unbanned",
    "node_budgets_set",
    "node_rate_limited",
    "node_health_changed",
    "node_backoff_changed",
    "event_dead_lettered",
    "dead_letter_replayed",
    "dead_letter_replay_failed",
    "domain_breaker_changed",
    "domain_limit_alert",
)


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One lifecycle step recorded by an event: what, which node, which attempt, and the facts."""

    event: str
    node_id: str | None = None
    attempt: int | None = None
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class LogRow(msgspec.Struct, frozen=True, kw_only=True):
    """A row of orchestrator_log, in the table's column order (recorded_at is the database's)."""

    event_id: str
    step: int
    stream: str
    stream_seq: int
    occurred_at: datetime
    event: str
    event_type: str
    job_id: str | None  # None for a node's own step
    node_id: str | None
    replica: str | None
    actor_kind: str
    actor_id: str
    correlation_id: str
    causation_id: str | None
    attempt: int | None
    details: dict[str, Any]


# what the log maps: a job event, or the facts the log reads of one
LoggedJobEvent = JobEvent | JobCreatedBytes | JobCompletedBytes | JobResultSubmittedBytes


def present(**facts: Any) -> dict[str, Any]:  # JSON values of any shape: Any is the honest type
    return {name: value for name, value in facts.items() if value is not None}


def _ended(step: str, node_id: str, attempt: int, reason: str, retry_at: datetime | None) -> list[Step]:
    """A failure or an abandonment, and the retry it scheduled (none: a job.dead follows)."""
    ended = Step(event=step, node_id=node_id, attempt=attempt, details=present(reason=reason, retry_at=retry_at))
    if retry_at is None:
        return [ended]
    return [ended, Step(event="job_retried", attempt=attempt + 1, details={"retry_at": retry_at})]


def lifecycle_steps(event: LoggedJobEvent) -> list[Step]:
    """The lifecycle steps one job event records, in order; none for a lease renewal."""
    match event:
        case JobCreated() | JobCreatedBytes():
            facts = present(
                job_type=event.job_type,
                priority=event.priority,
                max_retries=event.max_retries,
                lease_s=event.lease_s,
                batch_id=event.batch_id,
                dataset_source=event.dataset_source,
                dataset_version=event.dataset_version,
            )
            return [Step(event="job_created", details=facts)]
        case JobClaimed():
            # a later attempt is the job handed out again after a failure or an abandonment
            name = "job_claimed" if event.attempt <= 1 else "job_reassigned"
            lease = {"lease_until": event.lease_until}
            return [Step(event=name, node_id=event.node_id, attempt=event.attempt, details=lease)]
        case LeaseRenewed():
            return []
        case JobResultSubmitted() | JobResultSubmittedBytes():
            # the holder's part is over; the validation service's verdict settles the job
            facts = {"checksum": event.checksum}
            return [Step(event="job_result_submitted", node_id=event.node_id, attempt=event.attempt, details=facts)]
        case JobResultRejected():
            return _ended("job_result_rejected", event.node_id, event.attempt, event.reason, event.retry_at)
        case JobCompleted() | JobCompletedBytes():
            # the validated result is the job's answer (or one an admin released from quarantine)
            facts = present(checksum=event.checksum, released_by=event.released_by)
            return [Step(event="job_completed", node_id=event.node_id, attempt=event.attempt, details=facts)]
        case JobReleased():
            # handed back unworked: queued at once, and the next claim has the same attempt
            return [
                Step(
                    event="job_released", node_id=event.node_id, attempt=event.attempt, details={"reason": event.reason}
                )
            ]
        case JobResultSetAside():
            # a shadow-banned node's result: kept out of the dataset, the job queued again at once
            facts = {"reason": event.reason, "checksum": event.checksum}
            return [Step(event="job_result_set_aside", node_id=event.node_id, attempt=event.attempt, details=facts)]
        case JobFailed():
            failed = _ended("job_failed", event.node_id, event.attempt, event.reason, event.retry_at)
            if event.kind != "error":  # over a budget, or its wall clock: the node said so
                failed[0].details["kind"] = event.kind
            return failed
        case JobAbandoned():
            return _ended("job_abandoned", event.node_id, event.attempt, event.reason, event.retry_at)
        case JobDead():
            return [Step(event="job_dead", attempt=event.attempts, details={"reason": event.reason})]
        case JobCancelled():
            return [Step(event="job_cancelled", details=present(reason=event.reason))]
    raise TypeError(f"not a job event: {event!r}")


def handling_replica(envelope: Envelope[LoggedJobEvent]) -> str | None:
    """The scheduler replica that decided the event, where the event tells: the events of a
    node's request (claim, result, failure, release, and the death a failure decides) name
    their replica; a service actor is a replica. Such an event written before it named its
    replica has the node as actor and no replica."""
    match envelope.data:
        case (
            JobClaimed()
            | JobResultSubmitted()
            | JobResultSubmittedBytes()
            | JobCompleted()
            | JobCompletedBytes()
            | JobFailed()
            | JobReleased()
            | JobResultSetAside()
            | JobDead()
        ) as event if event.replica:
            return event.replica
    return actor_replica(envelope)


def actor_replica(envelope: Envelope[Any]) -> str | None:
    """The acting service replica, when a service acted (not a node or an admin)."""
    return envelope.actor.id if envelope.actor.kind == "service" else None


def step_rows(
    envelope: Envelope[Any],
    stream: str,
    seq: int,
    steps: Iterable[Step],
    *,
    job_id: str | None,
    replica: str | None,
) -> list[LogRow]:
    """One row per step of one stream event: the envelope's who, when and why on each."""
    return [
        LogRow(
            event_id=envelope.event_id,
            step=index,
            stream=stream,
            stream_seq=seq,
            occurred_at=envelope.occurred_at,
            event=step.event,
            event_type=envelope.type,
            job_id=job_id,
            node_id=step.node_id,
            replica=replica,
            actor_kind=envelope.actor.kind,
            actor_id=envelope.actor.id,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            attempt=step.attempt,
            details=step.details,
        )
        for index, step in enumerate(steps)
    ]


def log_rows(envelope: Envelope[LoggedJobEvent], stream: str, seq: int) -> list[LogRow]:
    steps = lifecycle_steps(envelope.data)
    return step_rows(envelope, stream, seq, steps, job_id=envelope.aggregate_id, replica=handling_replica(envelope))


def _tag(event_type: type[msgspec.Struct]) -> str:
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str), f"{event_type.__name__} needs a string tag"
    return tag


# a data decoder per event type tag; Any: each returns its own Struct type
DataDecoders = Mapping[str, Callable[[bytes], Any]]


def data_decoders(event_types: Iterable[type[msgspec.Struct]]) -> DataDecoders:
    return {_tag(t): msgspec.json.Decoder(t).decode for t in event_types}


_decode_envelope = msgspec.json.Decoder(Envelope[msgspec.Raw]).decode


def decode_known(data: bytes, decoders: DataDecoders) -> Envelope[Any] | None:
    """The event, or None when its type is not one of `decoders` (a newer service's): such an
    event is skipped, never a reason to stop the log."""
    raw = _decode_envelope(data)
    decode = decoders.get(raw.type)
    if decode is None:
        return None
    return Envelope[Any](
        event_id=raw.event_id,
        type=raw.type,
        schema_version=raw.schema_version,
        aggregate_id=raw.aggregate_id,
        occurred_at=raw.occurred_at,
        correlation_id=raw.correlation_id,
        causation_id=raw.causation_id,
        actor=raw.actor,
        data=decode(raw.data),
    )


_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    JobCreatedBytes,
    JobClaimed,
    LeaseRenewed,
    JobResultSubmittedBytes,
    JobResultRejected,
    JobCompletedBytes,
    JobFailed,
    JobReleased,
    JobResultSetAside,
    JobAbandoned,
    JobDead,
    JobCancelled,
)
_JOB_DECODERS = data_decoders(_EVENT_TYPES)
# the known types in one pass (envelope and data together); decode_known is the way for the rest
_decode_logged = msgspec.json.Decoder(Envelope[JobEventBytes]).decode
_RENEWED = _tag(LeaseRenewed)


def decode_job_event(data: bytes) -> Envelope[LoggedJobEvent] | None:
    """The job event as the log reads it, or None when its type is one this log does not know yet."""
    try:
        # a frozen envelope of one of these types is one of LoggedJobEvent's: only invariance objects
        return cast(Envelope[LoggedJobEvent], _decode_logged(data))
    except msgspec.ValidationError:
        # a type this log does not know (None), or a known one that does not decode (raised)
        return decode_known(data, _JOB_DECODERS)


# One statement per batch: the rows travel as 16 arrays, so a batch costs one round trip and one
# plan, and ON CONFLICT keeps an event re-appended outside the duplicate window to its rows.
_INSERT = """
INSERT INTO orchestrator_log (event_id, step, stream, stream_seq, occurred_at, event, event_type, job_id, node_id,
                              replica, actor_kind, actor_id, correlation_id, causation_id, attempt, details)
SELECT e, st, s, q, o, ev, et, j, n, rp, ak, ai, c, ca, a, d::jsonb
FROM unnest($1::uuid[], $2::smallint[], $3::text[], $4::bigint[], $5::timestamptz[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::int[],
            $16::text[])
     AS x(e, st, s, q, o, ev, et, j, n, rp, ak, ai, c, ca, a, d)
ON CONFLICT (event_id, step) DO NOTHING"""
_encode = msgspec.json.Encoder().encode


def _columns(row: LogRow) -> tuple[object, ...]:
    values = msgspec.structs.astuple(row)
    return (*values[:-1], _encode(row.details).decode())


class StreamLogProjection(ABC):
    """A Projection (ccn_core.projection) of one stream into orchestrator_log; a subclass maps
    a stored event to its rows, or to None when its type is unknown (a newer service's): such
    an event is skipped with one warning per type, never a reason to stop the log."""

    tables = ("orchestrator_log",)

    def __init__(self, spec: ConsumerSpec) -> None:
        self.spec = spec
        self._unknown: set[str] = set()

    @abstractmethod
    def event_rows(self, stored: StoredEvent) -> list[LogRow] | None: ...

    def rows(self, stored: StoredEvent) -> list[LogRow]:
        rows = self.event_rows(stored)
        if rows is not None:
            return rows
        kind = stored.headers.get(HEADER_TYPE, stored.subject)
        if kind not in self._unknown:
            self._unknown.add(kind)
            log.warning("event type unknown to the orchestrator log; skipping it", stream=self.spec.stream, type=kind)
        return []

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        rows = [_columns(row) for stored in events for row in self.rows(stored)]
        if rows:
            await conn.execute(_INSERT, *(list(column) for column in zip(*rows, strict=True)))


class OrchestratorLogProjection(StreamLogProjection):
    """The job steps: CCN_JOBS into orchestrator_log."""

    def __init__(self, spec: ConsumerSpec = ORCHESTRATOR_LOG) -> None:
        super().__init__(spec)

    def event_rows(self, stored: StoredEvent) -> list[LogRow] | None:
        if stored.headers.get(HEADER_TYPE) == _RENEWED:
            return []  # the most frequent job event records no step: not worth decoding
        envelope = decode_job_event(stored.data)
        return None if envelope is None else log_rows(envelope, self.spec.stream, stored.seq)
