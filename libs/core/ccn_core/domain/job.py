"""The job aggregate: create, claim, renew, submit, settle, fail, abandon, retry, cancel — pure rules.

A node's result ends its part (job.result_submitted: the lease ends, the job is `validating`);
the validation service's verdict settles it (ADR 0024): job.completed, the job's answer, or
job.result_rejected, which counts the attempt and tries the job again. An admin may release a
rejected result from quarantine, which completes the job with it unless the job is being worked
on or has finished otherwise.

Time and the jitter draw come in with the command, so a decision is reproducible in a test.
The checksum of a result is recomputed here from its canonical bytes: a node cannot get a
result accepted whose checksum it merely asserted.

A shadow-banned holder's result is set aside (job.result_set_aside): the job is queued again at
once for another node and the attempt is not counted. Whether the holder is shadow-banned is the
claim owner's knowledge (its node view), so it comes in with the command, as time does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_core.retry_policy import RetryPolicy
from ccn_proto.budgets import FailureKind, JobUsage
from ccn_proto.canonical import result_checksum
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

JobStatus = Literal["absent", "queued", "claimed", "validating", "retry_wait", "completed", "dead", "cancelled"]
FINISHED: frozenset[JobStatus] = frozenset({"completed", "dead", "cancelled"})
# where a released result may still complete its job: not while a node works on it, nor after
# it completed or was cancelled (a job that died of rejections is completed by its release)
RELEASABLE: frozenset[JobStatus] = frozenset({"queued", "validating", "retry_wait", "dead"})
# set-aside results a job remembers (node, checksum): bounds its state whatever a node sends
MAX_SET_ASIDE_KEPT = 8
SHADOW_BANNED_REASON = "its node is shadow-banned"


class JobState(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    status: JobStatus = "absent"
    job_type: str = ""
    max_retries: int = 0
    lease_s: float = 60.0
    attempt: int = 0
    holder: str | None = None
    lease_until: datetime | None = None
    retry_at: datetime | None = None
    idempotency_key_hash: str | None = None
    request_fingerprint: str | None = None
    completed_by: str | None = None
    result_checksum: str | None = None
    # the latest claim's node, kept after it ends: a release retried after its reply was lost
    # is told from a release by a node that never held the job
    claimed_by: str | None = None
    # (node, checksum) of results set aside, latest last: the same result sent again is answered
    # as the first was, and the claim owner offers the job to other nodes first
    set_aside: tuple[tuple[str, str], ...] = ()
    # (node, attempt, checksum) of the result awaiting its verdict, while `validating`; and of
    # the latest rejected one, so a verdict sent again is answered without a second event
    submitted: tuple[str, int, str] | None = None
    rejected: tuple[str, int, str] | None = None

    def set_aside_by(self, node_id: str) -> bool:
        return any(node == node_id for node, _ in self.set_aside)


class CreateJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    created: JobCreated


class ClaimJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    now: datetime
    replica: str | None = None


class SubmitResult(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    result: dict[str, Any]
    checksum: str
    now: datetime
    replica: str | None = None  # the deciding scheduler replica, recorded on the event
    usage: JobUsage | None = None  # as the node reported it
    shadow_banned: bool = False  # the node is shadow-banned: its result does not complete the job
    signature: str | None = None  # the node's, as the edge checked it


class SettleResult(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """The validation service's verdict on the submitted result (node, attempt, checksum):
    `complete` makes `result` the job's answer, `reject` tries the job again. `released_by`: an
    admin released a rejected result from quarantine."""

    node_id: str
    attempt: int
    checksum: str
    verdict: Literal["complete", "reject"]
    now: datetime
    jitter: float
    result: dict[str, Any] | None = None
    reason: str | None = None
    released_by: str | None = None
    replica: str | None = None


class FailJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    reason: str
    now: datetime
    jitter: float
    replica: str | None = None
    kind: FailureKind = "error"
    usage: JobUsage | None = None


class ReleaseJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """The holder hands the job back unworked: queued at once, its attempt not counted."""

    node_id: str
    reason: str
    now: datetime
    replica: str | None = None


class ExpireLease(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """From the claim owner's lease sweep, or when the holder opted out or disconnected.

    Renewals are not events (ADR 0016): the claim owner keeps each lease's end in memory and
    names it here as `lease_until`, the evidence the abandonment is decided on; the later of it
    and the claim's own lease end is the one that counts."""

    now: datetime
    jitter: float
    reason: str = "lease expired"
    node_id: str | None = None  # release only if this node still holds it
    lease_until: datetime | None = None


class CancelJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    reason: str | None = None


JobCommand = CreateJob | ClaimJob | SubmitResult | SettleResult | FailJob | ReleaseJob | ExpireLease | CancelJob


class JobDecider:
    aggregate = "job"

    def __init__(self, retry_policy: RetryPolicy | None = None) -> None:
        self._retry = retry_policy or RetryPolicy()

    def initial_state(self, aggregate_id: str) -> JobState:
        return JobState(job_id=aggregate_id)

    def decide(self, command: JobCommand, state: JobState, now: datetime) -> list[JobEvent]:
        if not isinstance(command, CreateJob) and state.status == "absent":
            raise NotFound(f"job {state.job_id} does not exist")
        match command:
            case CreateJob(created=created):
                return self._create(created, state)
            case ClaimJob():
                return self._claim(command, state)
            case SubmitResult():
                if state.status == "completed" and (state.completed_by, state.result_checksum) == (
                    command.node_id,
                    command.checksum,
                ):
                    return []  # the same result again (a retry after a lost reply): accepted once
                if state.submitted == (command.node_id, state.attempt, command.checksum):
                    return []  # the same result again while it is judged
                if (command.node_id, command.checksum) in state.set_aside and state.holder != command.node_id:
                    return []  # a set-aside result again: answered as the first time, nothing new
                self._require_holder(state, command.node_id)
                if result_checksum(command.result) != command.checksum:
                    raise BadInput("result checksum does not match the result's canonical bytes", field="checksum")
                if command.shadow_banned:
                    return [
                        JobResultSetAside(
                            node_id=command.node_id,
                            attempt=state.attempt,
                            checksum=command.checksum,
                            reason=SHADOW_BANNED_REASON,
                            replica=command.replica,
                        )
                    ]
                return [
                    JobResultSubmitted(
                        node_id=command.node_id,
                        attempt=state.attempt,
                        job_type=state.job_type,
                        result=command.result,
                        checksum=command.checksum,
                        replica=command.replica,
                        usage=command.usage,
                        signature=command.signature,
                    )
                ]
            case SettleResult():
                return self._settle(command, state)
            case FailJob():
                self._require_holder(state, command.node_id)
                retry_at = self._next_try(state, command.now, command.jitter)
                failed = JobFailed(
                    node_id=command.node_id,
                    attempt=state.attempt,
                    reason=command.reason,
                    retry_at=retry_at,
                    replica=command.replica,
                    kind=command.kind,
                    usage=command.usage,
                )
                if retry_at:
                    return [failed]
                return [failed, JobDead(attempts=state.attempt, reason=command.reason, replica=command.replica)]
            case ReleaseJob():
                if state.status == "queued" and state.claimed_by == command.node_id:
                    # queued after this node's claim: only its release does that (a failure or
                    # an abandonment waits for a retry), so this is that release again
                    return []
                self._require_holder(state, command.node_id)
                released = JobReleased(
                    node_id=command.node_id, attempt=state.attempt, reason=command.reason, replica=command.replica
                )
                return [released]
            case ExpireLease():
                return self._expire(command, state)
            case CancelJob():
                if state.status in FINISHED:
                    raise Conflict(f"job {state.job_id} is already {state.status}")
                return [JobCancelled(reason=command.reason)]
        raise TypeError(f"not a job command: {command!r}")

    def _settle(self, command: SettleResult, state: JobState) -> list[JobEvent]:
        key = (command.node_id, command.attempt, command.checksum)
        if command.verdict == "reject":
            if state.rejected == key and state.submitted != key:
                return []  # this verdict again: recorded once
            if state.status != "validating" or state.submitted != key:
                raise Conflict(f"job {state.job_id} has no result {command.checksum[:12]} awaiting a verdict")
            retry_at = self._next_try(state, command.now, command.jitter)
            reason = command.reason or "the result was rejected"
            rejected = JobResultRejected(
                node_id=command.node_id,
                attempt=command.attempt,
                checksum=command.checksum,
                reason=reason,
                retry_at=retry_at,
            )
            if retry_at:
                return [rejected]
            return [rejected, JobDead(attempts=state.attempt, reason=reason, replica=command.replica)]
        if state.status == "completed":
            if state.result_checksum == command.checksum:
                return []  # completed with this result already: a verdict sent again
            raise Conflict(f"job {state.job_id} is completed with another result")
        if command.result is None:
            raise BadInput("a completion names the result", field="result")
        if result_checksum(command.result) != command.checksum:
            raise BadInput("result checksum does not match the result's canonical bytes", field="checksum")
        if command.released_by is None:
            if state.status != "validating" or state.submitted != key:
                raise Conflict(f"job {state.job_id} has no result {command.checksum[:12]} awaiting a verdict")
        elif state.status not in RELEASABLE:
            raise Conflict(f"job {state.job_id} is {state.status}: a released result cannot complete it now")
        return [
            JobCompleted(
                node_id=command.node_id,
                attempt=command.attempt,
                result=command.result,
                checksum=command.checksum,
                replica=command.replica,
                released_by=command.released_by,
            )
        ]

    def _create(self, created: JobCreated, state: JobState) -> list[JobEvent]:
        if state.status == "absent":
            if created.max_retries < 0 or created.lease_s <= 0:
                raise BadInput("max_retries must be >= 0 and lease_s > 0")
            return [created]
        if created.idempotency_key_hash and created.idempotency_key_hash == state.idempotency_key_hash:
            if created.request_fingerprint == state.request_fingerprint:
                return []
            raise Conflict("this Idempotency-Key was used for a different job")
        raise Conflict(f"job {state.job_id} already exists")

    def _claim(self, command: ClaimJob, state: JobState) -> list[JobEvent]:
        if state.status == "claimed" and state.holder == command.node_id:
            return []  # a retried claim by the holder: it already has the job
        claimable = state.status == "queued" or (
            state.status == "retry_wait" and state.retry_at is not None and state.retry_at <= command.now
        )
        if not claimable:
            raise Conflict(f"job {state.job_id} is {state.status}, not claimable")
        return [
            JobClaimed(
                node_id=command.node_id,
                attempt=state.attempt + 1,
                lease_until=command.now + timedelta(seconds=state.lease_s),
                replica=command.replica,
            )
        ]

    def _require_holder(self, state: JobState, node_id: str) -> None:
        """A lease that ran out ends in an abandonment event, decided by the claim owner with
        the renewals it saw (ADR 0016): until then the holder holds the job, and its result
        counts even if it arrives after the lease's nominal end."""
        if state.status != "claimed" or state.holder != node_id:
            raise Conflict(f"node {node_id} does not hold job {state.job_id}")

    def _next_try(self, state: JobState, now: datetime, jitter: float) -> datetime | None:
        if state.attempt > state.max_retries:
            return None
        return self._retry.retry_at(now, state.attempt, jitter)

    def _expire(self, command: ExpireLease, state: JobState) -> list[JobEvent]:
        if state.status != "claimed" or state.holder is None:
            return []  # finished or already released: nothing to abandon
        if command.node_id is not None and command.node_id != state.holder:
            return []
        ends = [end for end in (state.lease_until, command.lease_until) if end is not None]
        if command.node_id is None and ends and max(ends) > command.now:
            return []  # renewed since the sweep looked
        retry_at = self._next_try(state, command.now, command.jitter)
        abandoned = JobAbandoned(node_id=state.holder, attempt=state.attempt, reason=command.reason, retry_at=retry_at)
        return [abandoned] if retry_at else [abandoned, JobDead(attempts=state.attempt, reason=command.reason)]

    def evolve(self, state: JobState, event: JobEvent) -> JobState:
        replace = msgspec.structs.replace
        match event:
            case JobCreated():
                return replace(
                    state,
                    status="queued",
                    job_type=event.job_type,
                    max_retries=event.max_retries,
                    lease_s=event.lease_s,
                    idempotency_key_hash=event.idempotency_key_hash,
                    request_fingerprint=event.request_fingerprint,
                )
            case JobClaimed():
                return replace(
                    state,
                    status="claimed",
                    holder=event.node_id,
                    attempt=event.attempt,
                    lease_until=event.lease_until,
                    claimed_by=event.node_id,
                )
            case LeaseRenewed():
                return replace(state, lease_until=event.lease_until)
            case JobResultSubmitted():
                return replace(
                    state,
                    status="validating",
                    holder=None,
                    lease_until=None,
                    submitted=(event.node_id, event.attempt, event.checksum),
                )
            case JobResultRejected():
                return replace(
                    state,
                    status="retry_wait",
                    holder=None,
                    lease_until=None,
                    retry_at=event.retry_at,
                    submitted=None,
                    rejected=(event.node_id, event.attempt, event.checksum),
                )
            case JobCompleted():
                return replace(
                    state,
                    status="completed",
                    holder=None,
                    lease_until=None,
                    retry_at=None,
                    completed_by=event.node_id,
                    result_checksum=event.checksum,
                    submitted=None,
                )
            case JobReleased():
                # the attempt is handed back with the job: the next claim has the same number,
                # and max_retries counts only attempts a node worked on. claimed_by stays: a
                # retried release by the same node is answered without a second event
                return replace(
                    state, status="queued", holder=None, lease_until=None, retry_at=None, attempt=event.attempt - 1
                )
            case JobResultSetAside():
                # queued again at once, the attempt handed back (the node did not fail the job);
                # the node is remembered so the job goes to another node first
                kept = (*state.set_aside, (event.node_id, event.checksum))[-MAX_SET_ASIDE_KEPT:]
                return replace(
                    state,
                    status="queued",
                    holder=None,
                    lease_until=None,
                    retry_at=None,
                    attempt=event.attempt - 1,
                    set_aside=kept,
                )
            case JobFailed() | JobAbandoned():
                return replace(state, status="retry_wait", holder=None, lease_until=None, retry_at=event.retry_at)
            case JobDead():
                return replace(state, status="dead", holder=None, lease_until=None, retry_at=None)
            case JobCancelled():
                return replace(state, status="cancelled", holder=None, lease_until=None, retry_at=None)
        raise TypeError(f"not a job event: {event!r}")
