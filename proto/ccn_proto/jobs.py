"""The job aggregate's events. A successful job costs four appends (created, claimed,
result_submitted, completed): the node's part ends when its result is recorded, and the job
completes when the validation service has judged the result (ADR 0024). Every other event
records a decision a human would ask about later."""

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
    # a replica of job `replica_of` for consensus (ADR 0024): the claim path never gives two jobs
    # of one group to one node, nor to two nodes sharing an ip_hash
    replica_of: ShortText | None = None


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


class JobResultSubmitted(msgspec.Struct, gc=False, tag="job.result_submitted", frozen=True, kw_only=True):
    """The holder's result is in: its lease ends and its slot is free. The job waits for the
    validation service's verdict (status `validating`): `job.completed` or
    `job.result_rejected` follows. `job_type` is the job's, so the verdict needs no other read."""

    node_id: str
    attempt: int
    job_type: str
    result: dict[str, Any]
    checksum: str
    replica: str | None = None
    usage: JobUsage | None = None  # as the node reported it
    # the node's Ed25519 signature over (job, attempt, checksum), as the edge checked it; the
    # receipt for the result carries it (ccn_proto.receipts)
    signature: str | None = None


class JobResultSubmittedBytes(msgspec.Struct, gc=False, tag="job.result_submitted", frozen=True, kw_only=True):
    """job.result_submitted with its result left as JSON bytes (see JobCreatedBytes)."""

    node_id: str
    attempt: int
    job_type: str
    result: msgspec.Raw
    checksum: str
    replica: str | None = None
    usage: JobUsage | None = None
    signature: str | None = None


class JobResultRejected(msgspec.Struct, gc=False, tag="job.result_rejected", frozen=True, kw_only=True):
    """The validation service rejected the submitted result (its reasons are on the result
    aggregate, ccn_proto.results). The attempt counts: the job waits for a retry, or, with no
    attempts left, a job.dead follows in the same decision."""

    node_id: str
    attempt: int
    checksum: str
    reason: Text
    retry_at: datetime | None


# job.completed is the job's answer, final: a validated result (and, for a job type that asks
# for replicas, an agreed one), or one an admin released from quarantine (`released_by`).
class JobCompleted(msgspec.Struct, gc=False, tag="job.completed", frozen=True, kw_only=True):
    node_id: str
    attempt: int
    result: dict[str, Any]
    checksum: str
    replica: str | None = None
    usage: JobUsage | None = None  # as the node reported it
    released_by: str | None = None


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
    # a replica of job `replica_of` for consensus (ADR 0024): the claim path never gives two jobs
    # of one group to one node, nor to two nodes sharing an ip_hash
    replica_of: ShortText | None = None


class JobCompletedBytes(msgspec.Struct, gc=False, tag="job.completed", frozen=True, kw_only=True):
    """job.completed with its result left as JSON bytes, as JobCreatedBytes leaves the payload."""

    node_id: str
    attempt: int
    result: msgspec.Raw
    checksum: str
    replica: str | None = None
    usage: JobUsage | None = None
    released_by: str | None = None


JobEvent = (
    JobCreated
    | JobClaimed
    | LeaseRenewed
    | JobResultSubmitted
    | JobResultRejected
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
    | JobResultSubmittedBytes
    | JobResultRejected
    | JobCompletedBytes
    | JobFailed
    | JobReleased
    | JobResultSetAside
    | JobAbandoned
    | JobDead
    | JobCancelled
)
