"""Commands the scheduler answers on ccn.cmd.scheduler.<name>, and their replies.

The edge authenticates nodes (through the registry) before it sends a node's command here, so
node commands carry the authenticated `node_id`, never a token. Every list and string is
bounded: a command is at most a few hundred kilobytes even at its limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ccn_proto.budgets import FailureKind, JobBudget, JobUsage
from ccn_proto.commands import CommandError
from ccn_proto.constraints import END, Sha256Hex, ShortText, Text
from ccn_proto.receipts import Attempt, Receipt, Signature

JobTypeName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[a-z][a-z0-9_]*{END}")]
JobId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9_-]+{END}")]
NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9_-]+{END}")]
Priority = Annotated[int, msgspec.Meta(ge=-100, le=100)]
MaxRetries = Annotated[int, msgspec.Meta(ge=0, le=20)]
LeaseSeconds = Annotated[float, msgspec.Meta(ge=1.0, le=3600.0)]
Concurrency = Annotated[int, msgspec.Meta(ge=1, le=256)]
IdempotencyKey = Annotated[str, msgspec.Meta(min_length=16, max_length=128)]
# validating: the result is in, the validation service has not yet settled it (ADR 0024)
JobStatus = Literal["queued", "claimed", "validating", "retry_wait", "completed", "dead", "cancelled"]

MAX_BATCH_JOBS = 1000
# one item of a create_batch, encoded: a batch travels in chunks, each chunk one command and one
# NATS message (max_payload 1 MiB by default), so one job must fit in one with room to spare
MAX_BATCH_JOB_BYTES = 768 * 1024


class CreateJob(msgspec.Struct, gc=False, tag="create_job", frozen=True, kw_only=True):
    """A retry under the same `idempotency_key` returns the first job; another body under the
    same key is a conflict. Without a key every call creates a job."""

    job_type: JobTypeName
    payload: dict[str, Any]
    priority: Priority = 0
    max_retries: MaxRetries = 3
    lease_s: LeaseSeconds = 60.0
    batch_id: ShortText | None = None
    dataset_source: Text | None = None
    dataset_version: ShortText | None = None
    idempotency_key: IdempotencyKey | None = None
    # a replica of that job, for consensus (the validation service asks for these; the edge's
    # public API never sets it)
    replica_of: JobId | None = None


class CreateJobReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    job_type: str
    status: JobStatus
    created: bool  # False: an earlier call under the same key created it
    server_time: datetime


class BatchJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """`item_key` names the item within its batch (a record id); its position when absent."""

    job_type: JobTypeName
    payload: dict[str, Any]
    item_key: ShortText | None = None
    priority: Priority = 0
    max_retries: MaxRetries = 3
    lease_s: LeaseSeconds = 60.0


class CreateBatch(msgspec.Struct, gc=False, tag="create_batch", frozen=True, kw_only=True):
    """Each item's job id is derived from (batch_id, item key), so a requeued batch recreates
    nothing that exists: the whole batch may be sent again after any failure."""

    batch_id: ShortText
    dataset_source: Text | None = None
    dataset_version: ShortText | None = None
    jobs: Annotated[list[BatchJob], msgspec.Meta(min_length=1, max_length=MAX_BATCH_JOBS)]
    # a later chunk of a submission whose earlier chunks were created: the scheduler admits it
    # even when creations have waited past its bound, so a submission once begun is not refused
    # part way (its count bound still holds)
    continues_batch: bool = False


class CreateBatchReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    batch_id: str
    job_ids: list[str]  # in the order of the items
    created: int
    existing: int
    server_time: datetime


class ClaimJobs(msgspec.Struct, gc=False, tag="claim_jobs", frozen=True, kw_only=True):
    """Take up to `slots` ready jobs of the given types. `concurrency` is what the node
    advertised: it never holds more jobs than that, whatever it asks for."""

    node_id: NodeId
    job_types: Annotated[list[JobTypeName], msgspec.Meta(min_length=1, max_length=32)]
    concurrency: Concurrency
    slots: Concurrency = 1
    wait_s: Annotated[float, msgspec.Meta(ge=0.0, le=30.0)] = 0.0
    # names this claim for a WithdrawClaim: the caller gave up on it (its node left)
    claim_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    # the hash of the address the node connects from, as the edge saw it: replicas of one job
    # never go to two nodes behind one address
    ip_hash: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class WithdrawClaim(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Published (not requested) on subjects.claims_withdrawn(), heard by every scheduler
    replica: the claim of that id, if it is still waiting, returns at once with nothing taken."""

    claim_id: Annotated[str, msgspec.Meta(max_length=64)]


class JobOffer(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """`correlation_id` is the job's (given when it was created, carried by `job.claimed`): send
    it with the job's renewals, fetches, result or failure, so the job's whole life is one thread."""

    job_id: str
    job_type: str
    payload: dict[str, Any]
    attempt: int
    lease_until: datetime
    correlation_id: str
    budget: JobBudget | None = None  # the node's resource budgets, which the job runs under


class ClaimJobsReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """`withheld`: why node governance gives the node nothing now (it is draining, offline,
    backed off, or its daily quota is spent), and `backoff_until` until when, where that is
    known; `draining`: the node gets no new job, and once it holds none it is told bye."""

    node_id: str
    offers: list[JobOffer]
    held: int  # jobs the node holds now, these offers included
    server_time: datetime
    withheld: Text | None = None
    backoff_until: datetime | None = None
    draining: bool = False


MAX_BATCHED_ASKS = 256


class ClaimBatch(msgspec.Struct, gc=False, tag="claim_batch", frozen=True, kw_only=True):
    """The claims of many nodes in one request: an edge gathers those of its connections while
    its previous batch is out, so a busy edge sends one command where it had one per node.
    Answered at once: each ask takes what is ready now and does not wait (`wait_s` is ignored);
    a node that got nothing long-polls with its own claim_jobs."""

    asks: Annotated[list[ClaimJobs], msgspec.Meta(min_length=1, max_length=MAX_BATCHED_ASKS)]


class BatchedClaimOutcome(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """One ask's answer, in the order of the asks: its reply, or why it was refused."""

    reply: ClaimJobsReply | None = None
    error: CommandError | None = None


class ClaimBatchReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    outcomes: list[BatchedClaimOutcome]


class HeldJobs(msgspec.Struct, gc=False, tag="held_jobs", frozen=True, kw_only=True):
    """The jobs a node holds now. An edge asks when a node (re)connects: a node keeps running
    its jobs across a dropped connection, and their results and renewals arrive on the new one.

    `running`: the jobs the node says (in its hello) it still runs. Those of its jobs waiting
    for release after a dropped connection stay its own if named here, and are released when
    their grace ends if not. None (a node that names none): every one stays its own."""

    node_id: NodeId
    running: Annotated[list[JobId], msgspec.Meta(max_length=256)] | None = None


class NodeDisconnected(msgspec.Struct, gc=False, tag="node_disconnected", frozen=True, kw_only=True):
    """A node's connection closed while it held `job_ids`: they go back after the release grace,
    unless the node reconnects and names them, or renews them on another connection, first.
    `release_now`: the node said bye, or said it no longer runs them: they go back at once."""

    node_id: NodeId
    job_ids: Annotated[list[JobId], msgspec.Meta(max_length=256)]
    release_now: bool = False


class NodeDisconnectedReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    pending: int  # of the node's jobs, how many now wait for release
    release_at: datetime | None
    server_time: datetime


class HeldJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    attempt: int
    lease_until: datetime
    correlation_id: str  # the job's


class HeldJobsReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    jobs: list[HeldJob]
    server_time: datetime


class RenewLeases(msgspec.Struct, gc=False, tag="renew_leases", frozen=True, kw_only=True):
    node_id: NodeId
    job_ids: Annotated[list[JobId], msgspec.Meta(min_length=1, max_length=256)]


class LeaseView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    lease_until: datetime


class LostLease(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    code: str  # ccn_core.errors code: conflict (not the holder, expired), not_found
    message: str


class RenewLeasesReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    renewed: list[LeaseView]
    lost: list[LostLease]  # stop working on these: the job went elsewhere
    server_time: datetime


class SubmitResult(msgspec.Struct, gc=False, tag="submit_result", frozen=True, kw_only=True):
    """`checksum` is the SHA-256 of the result's canonical bytes (sorted keys, no whitespace,
    UTF-8); the scheduler recomputes it and refuses a mismatch."""

    node_id: NodeId
    job_id: JobId
    result: dict[str, Any]
    checksum: Sha256Hex
    usage: JobUsage | None = None
    # the node's Ed25519 signature over (job, attempt, checksum) (ccn_proto.receipts), which the
    # edge checked against the node's registered key; None: the node registered no key
    attempt: Attempt | None = None
    signature: Signature | None = None


class SubmitResultReply(msgspec.Struct, gc=False, frozen=True, kw_only=True, omit_defaults=True):
    job_id: str
    status: JobStatus
    duplicate: bool  # True: the same result was accepted before; nothing new was written
    server_time: datetime
    # the service's signed receipt for the result, once one is issued with the answer (the
    # node keeps it: ccn_cli.node.receipts_store); None: none yet
    receipt: Receipt | None = None


class BatchedResult(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A result with the job's correlation id: each job's steps stay on their own thread.
    `claim`: the node's next ask, sent with its result (the node said it wants more once this
    one is recorded); taken as a ClaimBatch ask is, right after the result is recorded, so the
    job's slot is free for it. One round trip per job instead of two."""

    correlation_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    submit: SubmitResult
    claim: ClaimJobs | None = None


class SubmitResults(msgspec.Struct, gc=False, tag="submit_results", frozen=True, kw_only=True):
    """Results of many nodes in one request, gathered by an edge as ClaimBatch is."""

    items: Annotated[list[BatchedResult], msgspec.Meta(min_length=1, max_length=MAX_BATCHED_ASKS)]


class BatchedResultOutcome(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """The result's answer, and the answer to the ask sent with it (none when the result was
    refused: the ask was not made)."""

    reply: SubmitResultReply | None = None
    error: CommandError | None = None
    claim: BatchedClaimOutcome | None = None


class SubmitResultsReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    outcomes: list[BatchedResultOutcome]


MAX_SETTLED_RESULTS = 512
SettleVerdict = Literal["complete", "reject"]


class SettledResult(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The validation service's verdict on a submitted result, for the job to follow:
    `complete` (validated and final; `result` is the submitted result, the job's answer) or
    `reject` (`reason` summarises the result aggregate's reasons; the job is tried again).
    `released_by`: an admin released the result from quarantine, after a rejection."""

    job_id: JobId
    node_id: NodeId
    attempt: Attempt
    checksum: Sha256Hex
    verdict: SettleVerdict
    correlation_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    result: dict[str, Any] | None = None
    reason: Text | None = None
    released_by: ShortText | None = None
    # the group's answer, agreed by its replicas (consensus): it completes the group's first
    # job whichever node's result it is
    agreed: bool = False


class SettleResults(msgspec.Struct, gc=False, tag="settle_results", frozen=True, kw_only=True):
    items: Annotated[list[SettledResult], msgspec.Meta(min_length=1, max_length=MAX_SETTLED_RESULTS)]


class SettledOutcome(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    status: JobStatus | None = None
    error: CommandError | None = None


class SettleResultsReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    outcomes: list[SettledOutcome]


class FailJob(msgspec.Struct, gc=False, tag="fail_job", frozen=True, kw_only=True):
    node_id: NodeId
    job_id: JobId
    reason: Text
    kind: FailureKind = "error"
    usage: JobUsage | None = None


class FailJobReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    status: JobStatus  # retry_wait, or dead when no attempts are left
    retry_at: datetime | None
    server_time: datetime


class ReleaseJob(msgspec.Struct, gc=False, tag="release_job", frozen=True, kw_only=True):
    """The holder hands a job back unworked (e.g. its offer never reached the node): queued again
    at once, without a backoff and without spending an attempt. Only the current holder may."""

    node_id: NodeId
    job_id: JobId
    reason: Text


class ReleaseJobReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    status: JobStatus  # queued: claimable again now
    server_time: datetime


class CancelJob(msgspec.Struct, gc=False, tag="cancel_job", frozen=True, kw_only=True):
    job_id: JobId
    reason: Text | None = None


class CancelJobReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    status: JobStatus
    server_time: datetime


class GetJob(msgspec.Struct, gc=False, tag="get_job", frozen=True, kw_only=True):
    job_id: JobId


class JobHistoryEntry(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    event_id: str
    type: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    node_id: str | None = None
    attempt: int | None = None
    reason: str | None = None


class JobView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A job as its event history has it (not a read model that may lag)."""

    job_id: str
    job_type: str
    status: JobStatus
    payload: dict[str, Any]
    priority: int
    max_retries: int
    lease_s: float
    attempt: int
    holder: str | None
    lease_until: datetime | None
    retry_at: datetime | None
    batch_id: str | None
    dataset_source: str | None
    dataset_version: str | None
    result: dict[str, Any] | None
    result_checksum: str | None
    history: list[JobHistoryEntry]
    server_time: datetime


SchedulerCommand = (
    CreateJob
    | CreateBatch
    | ClaimJobs
    | ClaimBatch
    | HeldJobs
    | NodeDisconnected
    | RenewLeases
    | SubmitResult
    | SubmitResults
    | FailJob
    | ReleaseJob
    | CancelJob
    | GetJob
)
