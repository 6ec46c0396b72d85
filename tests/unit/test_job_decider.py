"""The job aggregate's rules as a table, plus the retry policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ccn_core.decider import fold
from ccn_core.domain.job import (
    MAX_SET_ASIDE_KEPT,
    CancelJob,
    ClaimJob,
    CreateJob,
    ExpireLease,
    FailJob,
    JobDecider,
    ReleaseJob,
    SettleResult,
    SubmitResult,
    result_checksum,
)
from ccn_core.errors import BadInput, CcnError, Conflict, NotFound
from ccn_core.retry_policy import RetryPolicy
from ccn_proto.budgets import JobUsage
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

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(seconds=30)
EXPIRED = T0 + timedelta(seconds=61)
JOB = "job-1"
policy = RetryPolicy(base_s=2.0, cap_s=300.0)
decider = JobDecider(policy)
CREATED = JobCreated(
    job_type="extract_text",
    payload={"html": "<p>x</p>"},
    max_retries=1,
    lease_s=60.0,
    idempotency_key_hash="k",
    request_fingerprint="f",
)
CLAIMED = JobClaimed(node_id="n1", attempt=1, lease_until=T0 + timedelta(seconds=60))
RESULT = {"text": "x", "language": "en"}
FAILED_ONCE = JobFailed(node_id="n1", attempt=1, reason="crash", retry_at=T0 + timedelta(seconds=1))
CLAIMED_AGAIN = JobClaimed(node_id="n2", attempt=2, lease_until=T0 + timedelta(seconds=62))
RELEASED = JobReleased(node_id="n1", attempt=1, reason="the node left before the offer reached it")
CHECKSUM = result_checksum(RESULT)
SET_ASIDE = JobResultSetAside(node_id="n1", attempt=1, checksum=CHECKSUM, reason="its node is shadow-banned")
USAGE = JobUsage(cpu_time_s=1.5, max_memory_mb=200, wall_ms=1800, bytes_fetched=4096)


def submitted(node: str = "n1", attempt: int = 1, **fields: object) -> JobResultSubmitted:
    return JobResultSubmitted(
        node_id=node, attempt=attempt, job_type="extract_text", result=RESULT, checksum=CHECKSUM, **fields
    )  # type: ignore[arg-type]


SUBMITTED = submitted()


def settle(verdict: str, node: str = "n1", attempt: int = 1, **fields: object) -> SettleResult:
    return SettleResult(
        node_id=node,
        attempt=attempt,
        checksum=CHECKSUM,
        verdict=verdict,  # type: ignore[arg-type]
        now=T0,
        jitter=0.5,
        result=RESULT if verdict == "complete" else None,
        **fields,  # type: ignore[arg-type]
    )


COMPLETED = JobCompleted(node_id="n1", attempt=1, result=RESULT, checksum=CHECKSUM)

CASES: list[tuple[str, list[JobEvent], object, list[JobEvent] | type[CcnError]]] = [
    ("create", [], CreateJob(created=CREATED), [CREATED]),
    ("a retried create under the same key is answered", [CREATED], CreateJob(created=CREATED), []),
    (
        "the same key with another body is a conflict",
        [CREATED],
        CreateJob(
            created=JobCreated(
                job_type="extract_text", payload={}, idempotency_key_hash="k", request_fingerprint="other"
            )
        ),
        Conflict,
    ),
    ("claim a queued job", [CREATED], ClaimJob(node_id="n1", now=T0), [CLAIMED]),
    ("a job is never held by two nodes", [CREATED, CLAIMED], ClaimJob(node_id="n2", now=T0), Conflict),
    ("a retried claim by the holder changes nothing", [CREATED, CLAIMED], ClaimJob(node_id="n1", now=T0), []),
    ("claiming a job that does not exist", [], ClaimJob(node_id="n1", now=T0), NotFound),
    (
        "a claim after a renewal event of an older release is decided as before (renewals are no longer written)",
        [CREATED, CLAIMED, LeaseRenewed(node_id="n1", lease_until=LATER + timedelta(seconds=60))],
        ClaimJob(node_id="n2", now=LATER),
        Conflict,
    ),
    (
        "result by the holder with the right checksum",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum=result_checksum(RESULT), now=LATER),
        [SUBMITTED],
    ),
    (
        "a checksum that is not the result's",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum="0" * 64, now=LATER),
        BadInput,
    ),
    (
        "a result from a node that does not hold the job",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n2", result=RESULT, checksum=result_checksum(RESULT), now=LATER),
        Conflict,
    ),
    (
        "a retried identical result is answered without a second completion",
        [CREATED, CLAIMED, JobCompleted(node_id="n1", attempt=1, result=RESULT, checksum=result_checksum(RESULT))],
        SubmitResult(node_id="n1", result=RESULT, checksum=result_checksum(RESULT), now=EXPIRED),
        [],
    ),
    (
        "a different result after completion is never accepted",
        [CREATED, CLAIMED, JobCompleted(node_id="n1", attempt=1, result=RESULT, checksum=result_checksum(RESULT))],
        SubmitResult(node_id="n1", result={"text": "y"}, checksum=result_checksum({"text": "y"}), now=LATER),
        Conflict,
    ),
    (
        "the same result from another node after completion is never accepted",
        [CREATED, CLAIMED, JobCompleted(node_id="n1", attempt=1, result=RESULT, checksum=result_checksum(RESULT))],
        SubmitResult(node_id="n2", result=RESULT, checksum=result_checksum(RESULT), now=LATER),
        Conflict,
    ),
    (
        "a late result still counts while the holder holds the job: only an abandonment ends a lease",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum=result_checksum(RESULT), now=EXPIRED),
        [SUBMITTED],
    ),
    (
        "a result after the expired lease was abandoned is refused",
        [CREATED, CLAIMED, JobAbandoned(node_id="n1", attempt=1, reason="lease expired", retry_at=EXPIRED)],
        SubmitResult(node_id="n1", result=RESULT, checksum=result_checksum(RESULT), now=EXPIRED),
        Conflict,
    ),
    (
        "a failure with retries left waits for its backoff",
        [CREATED, CLAIMED],
        FailJob(node_id="n1", reason="crash", now=T0, jitter=0.5),
        [FAILED_ONCE],
    ),
    (
        "the job is not claimable before its retry time",
        [CREATED, CLAIMED, FAILED_ONCE],
        ClaimJob(node_id="n2", now=T0),
        Conflict,
    ),
    (
        "and is claimable after it",
        [CREATED, CLAIMED, FAILED_ONCE],
        ClaimJob(node_id="n2", now=T0 + timedelta(seconds=2)),
        [CLAIMED_AGAIN],
    ),
    (
        "the last failure makes the job dead",
        [CREATED, CLAIMED, FAILED_ONCE, CLAIMED_AGAIN],
        FailJob(node_id="n2", reason="crash again", now=T0 + timedelta(seconds=3), jitter=0.5),
        [
            JobFailed(node_id="n2", attempt=2, reason="crash again", retry_at=None),
            JobDead(attempts=2, reason="crash again"),
        ],
    ),
    (
        "an expired lease abandons the job",
        [CREATED, CLAIMED],
        ExpireLease(now=EXPIRED, jitter=0.0),
        [JobAbandoned(node_id="n1", attempt=1, reason="lease expired", retry_at=EXPIRED)],
    ),
    ("a lease not yet at its end is kept", [CREATED, CLAIMED], ExpireLease(now=LATER, jitter=0.0), []),
    (
        "a lease the owner saw renewed is kept past the claim's own end",
        [CREATED, CLAIMED],
        ExpireLease(now=EXPIRED, jitter=0.0, lease_until=EXPIRED + timedelta(seconds=30)),
        [],
    ),
    (
        "a renewed lease that ran out too is abandoned",
        [CREATED, CLAIMED],
        ExpireLease(now=EXPIRED + timedelta(seconds=31), jitter=0.0, lease_until=EXPIRED + timedelta(seconds=30)),
        [JobAbandoned(node_id="n1", attempt=1, reason="lease expired", retry_at=EXPIRED + timedelta(seconds=31))],
    ),
    (
        "a release for an opted-out node frees its job at once",
        [CREATED, CLAIMED],
        ExpireLease(now=LATER, jitter=0.0, reason="node opted out", node_id="n1"),
        [JobAbandoned(node_id="n1", attempt=1, reason="node opted out", retry_at=LATER)],
    ),
    (
        "a release for another node leaves the job",
        [CREATED, CLAIMED],
        ExpireLease(now=LATER, jitter=0.0, node_id="n9"),
        [],
    ),
    (
        "the holder releases its job unworked",
        [CREATED, CLAIMED],
        ReleaseJob(node_id="n1", reason=RELEASED.reason, now=LATER),
        [RELEASED],
    ),
    (
        "a released job is claimable at once, on the same attempt",
        [CREATED, CLAIMED, RELEASED],
        ClaimJob(node_id="n2", now=LATER),
        [JobClaimed(node_id="n2", attempt=1, lease_until=LATER + timedelta(seconds=60))],
    ),
    (
        "a release spends no retry: the failure after it still has one left (max_retries=1)",
        [CREATED, CLAIMED, RELEASED, JobClaimed(node_id="n2", attempt=1, lease_until=LATER + timedelta(seconds=60))],
        FailJob(node_id="n2", reason="crash", now=T0, jitter=0.5),
        [JobFailed(node_id="n2", attempt=1, reason="crash", retry_at=T0 + timedelta(seconds=1))],
    ),
    (
        "a release after a failure keeps the attempts counted before it",
        [CREATED, CLAIMED, FAILED_ONCE, CLAIMED_AGAIN],
        ReleaseJob(node_id="n2", reason="gone", now=T0 + timedelta(seconds=3)),
        [JobReleased(node_id="n2", attempt=2, reason="gone")],
    ),
    (
        "only the holder may release",
        [CREATED, CLAIMED],
        ReleaseJob(node_id="n2", reason="not mine", now=LATER),
        Conflict,
    ),
    (
        "a release after the lease was abandoned is refused",
        [CREATED, CLAIMED, JobAbandoned(node_id="n1", attempt=1, reason="lease expired", retry_at=EXPIRED)],
        ReleaseJob(node_id="n1", reason="late", now=EXPIRED),
        Conflict,
    ),
    (
        "a queued job nobody claimed cannot be released",
        [CREATED],
        ReleaseJob(node_id="n1", reason="x", now=T0),
        Conflict,
    ),
    (
        "a retried release by the same node is answered without a second event",
        [CREATED, CLAIMED, RELEASED],
        ReleaseJob(node_id="n1", reason=RELEASED.reason, now=LATER),
        [],
    ),
    (
        "a release by a node whose claim was released and taken by another is refused",
        [CREATED, CLAIMED, RELEASED, JobClaimed(node_id="n2", attempt=1, lease_until=LATER + timedelta(seconds=60))],
        ReleaseJob(node_id="n1", reason="again", now=LATER),
        Conflict,
    ),
    (
        "a released job has no lease to expire",
        [CREATED, CLAIMED, RELEASED],
        ExpireLease(now=EXPIRED, jitter=0.0),
        [],
    ),
    (
        "a finished job cannot be released",
        [CREATED, CLAIMED, JobCancelled()],
        ReleaseJob(node_id="n1", reason="x", now=T0),
        Conflict,
    ),
    (
        "a result names the replica that accepted it",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum=result_checksum(RESULT), now=LATER, replica="s-1"),
        [submitted(replica="s-1")],
    ),
    (
        "a failure, and the death it decides, name the replica that decided them",
        [CREATED, CLAIMED, FAILED_ONCE, CLAIMED_AGAIN],
        FailJob(node_id="n2", reason="crash", now=T0 + timedelta(seconds=3), jitter=0.5, replica="s-2"),
        [
            JobFailed(node_id="n2", attempt=2, reason="crash", retry_at=None, replica="s-2"),
            JobDead(attempts=2, reason="crash", replica="s-2"),
        ],
    ),
    (
        "a release names the replica that decided it",
        [CREATED, CLAIMED],
        ReleaseJob(node_id="n1", reason="gone", now=LATER, replica="s-0"),
        [JobReleased(node_id="n1", attempt=1, reason="gone", replica="s-0")],
    ),
    (
        "a shadow-banned holder's result is set aside, not completed",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum=CHECKSUM, now=LATER, shadow_banned=True),
        [SET_ASIDE],
    ),
    (
        "a shadow-banned holder's result with a wrong checksum is refused as any other",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum="0" * 64, now=LATER, shadow_banned=True),
        BadInput,
    ),
    (
        "a set-aside result sent again is answered without a new event",
        [CREATED, CLAIMED, SET_ASIDE],
        SubmitResult(node_id="n1", result=RESULT, checksum=CHECKSUM, now=LATER, shadow_banned=True),
        [],
    ),
    (
        "another result of the set-aside node, not holding the job, is refused",
        [CREATED, CLAIMED, SET_ASIDE],
        SubmitResult(node_id="n1", result={"text": "y"}, checksum=result_checksum({"text": "y"}), now=LATER),
        Conflict,
    ),
    (
        "after a set-aside another node claims the job with the same attempt number",
        [CREATED, CLAIMED, SET_ASIDE],
        ClaimJob(node_id="n2", now=LATER),
        [JobClaimed(node_id="n2", attempt=1, lease_until=LATER + timedelta(seconds=60))],
    ),
    (
        "and that node's result completes it",
        [CREATED, CLAIMED, SET_ASIDE, JobClaimed(node_id="n2", attempt=1, lease_until=LATER)],
        SubmitResult(node_id="n2", result=RESULT, checksum=CHECKSUM, now=LATER),
        [submitted("n2")],
    ),
    (
        "a result carries the usage its node reported",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum=CHECKSUM, now=LATER, usage=USAGE),
        [submitted(usage=USAGE)],
    ),
    (
        "a result carries the node's signature, for its receipt",
        [CREATED, CLAIMED],
        SubmitResult(node_id="n1", result=RESULT, checksum=CHECKSUM, now=LATER, signature="s" * 86),
        [submitted(signature="s" * 86)],
    ),
    (
        "the same result sent again while it is judged is answered without a second event",
        [CREATED, CLAIMED, SUBMITTED],
        SubmitResult(node_id="n1", result=RESULT, checksum=CHECKSUM, now=LATER),
        [],
    ),
    (
        "a job awaiting its verdict is not claimable",
        [CREATED, CLAIMED, SUBMITTED],
        ClaimJob(node_id="n2", now=T0),
        Conflict,
    ),
    (
        "nor does its lease expire: the node's part is over",
        [CREATED, CLAIMED, SUBMITTED],
        ExpireLease(now=EXPIRED, jitter=0.5),
        [],
    ),
    ("a validated result completes the job", [CREATED, CLAIMED, SUBMITTED], settle("complete"), [COMPLETED]),
    (
        "a completion sent again changes nothing",
        [CREATED, CLAIMED, SUBMITTED, COMPLETED],
        settle("complete"),
        [],
    ),
    (
        "a completion must carry the result it names",
        [CREATED, CLAIMED, SUBMITTED],
        SettleResult(
            node_id="n1", attempt=1, checksum=CHECKSUM, verdict="complete", now=T0, jitter=0.5, result={"text": "y"}
        ),
        BadInput,
    ),
    (
        "a verdict on a result that is not the one awaited is refused",
        [CREATED, CLAIMED, SUBMITTED],
        settle("complete", node="n2"),
        Conflict,
    ),
    (
        "a rejected result counts the attempt and waits for a retry",
        [CREATED, CLAIMED, SUBMITTED],
        settle("reject", reason="schema: text is missing"),
        [
            JobResultRejected(
                node_id="n1",
                attempt=1,
                checksum=CHECKSUM,
                reason="schema: text is missing",
                retry_at=T0 + timedelta(seconds=1),
            )
        ],
    ),
    (
        "a rejection of the last attempt is the job's death",
        [CREATED, CLAIMED, FAILED_ONCE, CLAIMED_AGAIN, submitted("n2", 2)],
        settle("reject", node="n2", attempt=2, reason="bad"),
        [
            JobResultRejected(node_id="n2", attempt=2, checksum=CHECKSUM, reason="bad", retry_at=None),
            JobDead(attempts=2, reason="bad"),
        ],
    ),
    (
        "a rejection sent again changes nothing",
        [
            CREATED,
            CLAIMED,
            SUBMITTED,
            JobResultRejected(node_id="n1", attempt=1, checksum=CHECKSUM, reason="bad", retry_at=T0),
        ],
        settle("reject", reason="bad"),
        [],
    ),
    (
        "a rejected result's job is claimable again once its retry is due",
        [
            CREATED,
            CLAIMED,
            SUBMITTED,
            JobResultRejected(node_id="n1", attempt=1, checksum=CHECKSUM, reason="bad", retry_at=T0),
        ],
        ClaimJob(node_id="n2", now=LATER),
        [JobClaimed(node_id="n2", attempt=2, lease_until=LATER + timedelta(seconds=60))],
    ),
    (
        "a result an admin released completes a job that died of rejections",
        [
            CREATED,
            CLAIMED,
            SUBMITTED,
            JobResultRejected(node_id="n1", attempt=1, checksum=CHECKSUM, reason="bad", retry_at=None),
            JobDead(attempts=1, reason="bad"),
        ],
        settle("complete", released_by="admin"),
        [JobCompleted(node_id="n1", attempt=1, result=RESULT, checksum=CHECKSUM, released_by="admin")],
    ),
    (
        "but not one another node is working on",
        [
            CREATED,
            CLAIMED,
            SUBMITTED,
            JobResultRejected(node_id="n1", attempt=1, checksum=CHECKSUM, reason="bad", retry_at=T0),
            JobClaimed(node_id="n2", attempt=2, lease_until=LATER),
        ],
        settle("complete", released_by="admin"),
        Conflict,
    ),
    (
        "nor one completed with another result",
        [
            CREATED,
            CLAIMED,
            JobResultSubmitted(
                node_id="n1", attempt=1, job_type="extract_text", result={"a": 1}, checksum=result_checksum({"a": 1})
            ),
            JobCompleted(node_id="n1", attempt=1, result={"a": 1}, checksum=result_checksum({"a": 1})),
        ],
        settle("complete", released_by="admin"),
        Conflict,
    ),
    (
        "a failure carries its kind and usage",
        [CREATED, CLAIMED],
        FailJob(node_id="n1", reason="killed: memory", now=T0, jitter=0.0, kind="budget_exceeded", usage=USAGE),
        [JobFailed(node_id="n1", attempt=1, reason="killed: memory", retry_at=T0, kind="budget_exceeded", usage=USAGE)],
    ),
    ("cancel a queued job", [CREATED], CancelJob(reason="not needed"), [JobCancelled(reason="not needed")]),
    ("a finished job cannot be cancelled", [CREATED, JobCancelled()], CancelJob(), Conflict),
]


@pytest.mark.parametrize(("given", "command", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_job_rules(given: list[JobEvent], command: object, expected: list[JobEvent] | type[CcnError]) -> None:
    state = fold(decider, JOB, given)
    if isinstance(expected, list):
        assert decider.decide(command, state, T0) == expected  # type: ignore[arg-type]
    else:
        with pytest.raises(expected):
            decider.decide(command, state, T0)  # type: ignore[arg-type]


def test_a_release_hands_the_attempt_back_and_keeps_the_claims_node() -> None:
    state = fold(decider, JOB, [CREATED, CLAIMED, RELEASED])
    assert (state.status, state.attempt, state.holder, state.lease_until, state.retry_at) == (
        "queued",
        0,
        None,
        None,
        None,
    )
    # a release retried by the same node is told apart from one by a node that never held it
    assert state.claimed_by == "n1"


def test_a_set_aside_result_requeues_the_job_at_once_without_counting_the_attempt() -> None:
    state = fold(decider, JOB, [CREATED, CLAIMED, SET_ASIDE])
    assert (state.status, state.attempt, state.holder, state.retry_at) == ("queued", 0, None, None)
    assert state.set_aside_by("n1") and not state.set_aside_by("n2")
    assert state.completed_by is None and state.result_checksum is None


def test_the_set_aside_record_is_bounded() -> None:
    events: list[JobEvent] = [CREATED]
    for attempt in range(1, 30):
        node = f"n{attempt}"
        events += [
            JobClaimed(node_id=node, attempt=1, lease_until=LATER),
            JobResultSetAside(node_id=node, attempt=1, checksum=CHECKSUM, reason="shadow-banned"),
        ]
    state = fold(decider, JOB, events)
    assert len(state.set_aside) == MAX_SET_ASIDE_KEPT and state.set_aside[-1] == ("n29", CHECKSUM)


def test_retry_delay_grows_exponentially_under_a_cap_with_full_jitter() -> None:
    assert policy.delay_s(1, 0.999999) == pytest.approx(2.0, rel=1e-3)
    assert policy.delay_s(4, 0.999999) == pytest.approx(16.0, rel=1e-3)
    assert policy.delay_s(30, 0.999999) == pytest.approx(300.0, rel=1e-3)
    assert policy.delay_s(5, 0.0) == 0.0


def test_the_checksum_is_of_canonical_bytes() -> None:
    assert result_checksum({"b": 1, "a": [1, 2]}) == result_checksum({"a": [1, 2], "b": 1})
    assert result_checksum({"a": 1}) != result_checksum({"a": 2})
