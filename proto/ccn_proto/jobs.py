"""The job aggregate's events. A successful job costs three appends (created, claimed,
completed); every other event records a decision a human would ask about later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ccn_proto.budgets import FailureKind, JobUsage
from ccn_proto.constraints import ShortText, Text


class JobCreated(msgspec.Struct, gc=False, tag="job.created", frozen=True, kw_only=True):
    job_type: ShortText
    payload: dict[str, Any]
    priority: int = 0
    max_retries: int = 3
    lease_s: float = 60.0
    batch_id: ShortText | None = None
    dataset_source: Text | None = None
    dataset_version: ShortText | None = None
    idempotency_key_hash: str | None = None
    request_fingerprint: str | None = None


class JobClaimed(msgspec.Struct, gc=False, tag="job.claimed", frozen=True, kw_only=True):
    node_id: str
    attempt: int
    lease_until: datetime
    replica: str | None = None


class LeaseRenewed(msgspec.Struct, gc=False, tag="job.lease_renewed", frozen=True, kw_only=True):
    node_id: str
    lease_until: datetime


# `replica` on the events of a node's request (completed, failed, released, and the death a
# failure decides) names the scheduler replica that decided it, as job.claimed does; events
# written before they carried it decode with None.


class JobCompleted(msgspec.Struct, gc=False, tag="job.completed", frozen=True, kw_only=True):
    node_id: str
    attempt: int
    result: dict[str, Any]
    checksum: str
    replica: str | None = None
    usage: JobUsage | None = None  # as the node reported it


class JobFailed(msgspec.Struct, gc=False, tag="job.failed", frozen=True, kw_only=True):
    node_id: str
    attempt: int
    reason: Text
    retry_at: datetime | None  # None: no attempts left, a job.dead follows in the same decision
    replica: str | None = None
    kind: FailureKind = "error"
    usage: JobUsage | None = None


class JobReleased(msgspec.Struct, gc=False, tag="job.released", frozen=True, kw_only=True):
    """The holder handed the job back unworked (its offer never reached the node): the job is
    queued again at once and `attempt` is not counted, so the next claim has the same number."""

    node_id: str
    attempt: int
    reason: Text
    replica: str | None = None


class JobResultSetAside(msgspec.Struct, gc=False, tag="job.result_set_aside", frozen=True, kw_only=True):
    """A result that does not complete the job: its node is shadow-banned. The job is queued
    again at once for another node, and `attempt` is not counted (the node did not fail it)."""

    node_id: str
    attempt: int
    checksum: str
    reason: Text
    replica: str | None = None


class JobAbandoned(msgspec.Struct, gc=False, tag="job.abandoned", frozen=True, kw_only=True):
    node_id: str
    attempt: int
    reason: Text
    retry_at: datetime | None


class JobDead(msgspec.Struct, gc=False, tag="job.dead", frozen=True, kw_only=True):
    attempts: int
    reason: Text
    replica: str | None = None  # when a node's failure decided it; an expiry's actor is its replica


class JobCancelled(msgspec.Struct, gc=False, tag="job.cancelled", frozen=True, kw_only=True):
    reason: Text | None = None


class JobCreatedBytes(msgspec.Struct, gc=False, tag="job.created", frozen=True, kw_only=True):
    """job.created for a reader that only passes the payload on (the job read model, the
    orchestrator log, the claim owner's replay): the payload stays the JSON bytes it is stored
    as, with no dict built and encoded again. Its other fields are JobCreated's."""

    job_type: ShortText
    payload: msgspec.Raw
    priority: int = 0
    max_retries: int = 3
    lease_s: float = 60.0
    batch_id: ShortText | None = None
    dataset_source: Text | None = None
    dataset_version: ShortText | None = None
    idempotency_key_hash: str | None = None
    request_fingerprint: str | None = None


class JobCompletedBytes(msgspec.Struct, gc=False, tag="job.completed", frozen=True, kw_only=True):
    """job.completed with its result left as JSON bytes, as JobCreatedBytes leaves the payload."""

    node_id: str
    attempt: int
    result: msgspec.Raw
    checksum: str
    replica: str | None = None
    usage: JobUsage | None = None


JobEvent = (
    JobCreated
    | JobClaimed
    | LeaseRenewed
    | JobCompleted
    | JobFailed
    | JobReleased
    | JobResultSetAside
    | JobAbandoned
    | JobDead
    | JobCancelled
)

# the job events as a reader that passes documents on reads them: the others carry no document
JobEventBytes = (
    JobCreatedBytes
    | JobClaimed
    | LeaseRenewed
    | JobCompletedBytes
    | JobFailed
    | JobReleased
    | JobResultSetAside
    | JobAbandoned
    | JobDead
    | JobCancelled
)
