"""A job as its history tells it: state, input, accepted result and every event, in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ccn_core.decider import fold
from ccn_core.domain.job import JobDecider, JobState
from ccn_proto.envelope import Envelope
from ccn_proto.jobs import (
    JobAbandoned,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobCreated,
    JobDead,
    JobEvent,
    JobFailed,
    JobReleased,
    JobResultRejected,
    JobResultSetAside,
    JobResultSubmitted,
    LeaseRenewed,
)
from ccn_proto.scheduler import JobHistoryEntry, JobView

_DECIDER = JobDecider()


def history_entry(envelope: Envelope[JobEvent]) -> JobHistoryEntry:
    node_id: str | None = None
    attempt: int | None = None
    reason: str | None = None
    match envelope.data:
        case (
            JobClaimed()
            | JobResultSubmitted()
            | JobResultRejected()
            | JobCompleted()
            | JobFailed()
            | JobReleased()
            | JobResultSetAside()
            | JobAbandoned() as event
        ):
            node_id, attempt = event.node_id, event.attempt
            with_reason = JobFailed | JobReleased | JobResultSetAside | JobAbandoned | JobResultRejected
            reason = event.reason if isinstance(event, with_reason) else None
        case LeaseRenewed() as event:
            node_id = event.node_id
        case JobDead() as event:
            attempt, reason = event.attempts, event.reason
        case JobCancelled() as event:
            reason = event.reason
        case JobCreated():
            pass
    return JobHistoryEntry(
        event_id=envelope.event_id,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        node_id=node_id,
        attempt=attempt,
        reason=reason,
    )


def job_state(job_id: str, history: list[Envelope[JobEvent]]) -> JobState:
    return fold(_DECIDER, job_id, [envelope.data for envelope in history])


def job_view(job_id: str, history: list[Envelope[JobEvent]], now: datetime) -> JobView:
    state = job_state(job_id, history)
    created = next(e.data for e in history if isinstance(e.data, JobCreated))
    completed = next((e.data for e in history if isinstance(e.data, JobCompleted)), None)
    result: dict[str, Any] | None = completed.result if completed else None
    assert state.status != "absent", "a job with a history exists"
    return JobView(
        job_id=job_id,
        job_type=created.job_type,
        status=state.status,
        payload=created.payload,
        priority=created.priority,
        max_retries=created.max_retries,
        lease_s=created.lease_s,
        attempt=state.attempt,
        holder=state.holder,
        lease_until=state.lease_until,
        retry_at=state.retry_at if state.status == "retry_wait" else None,
        batch_id=created.batch_id,
        dataset_source=created.dataset_source,
        dataset_version=created.dataset_version,
        result=result,
        result_checksum=completed.checksum if completed else None,
        history=[history_entry(envelope) for envelope in history],
        server_time=now,
    )
