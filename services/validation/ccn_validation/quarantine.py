"""The result aggregate's verdicts and quarantine, as pure rules: one aggregate per job (stream
CCN_RESULTS, `ccn.result.<job_id>.<event>`), each result in it named by (node, attempt, checksum).

- `Judge`: a submitted result is judged by ccn_jobs.result_validation.judge_result, and the
  verdict recorded: `result.validated`, or `result.rejected` with every reason. Judging the same
  result again (the reactor redelivered `job.result_submitted`) records nothing; a different
  result for an attempt already judged is a conflict (the scheduler takes one result per attempt).
- A rejected result waits in quarantine for an admin, who decides once, with a comment:
  `Release` (accept it anyway: `result.released`) or `Discard` (`result.discarded`). Deciding a
  validated result, or deciding otherwise on one already decided, is a conflict; the same
  decision again records nothing (a retried request); an unknown result is not found.

The validator is passed in (`QuarantineDecider(validator=...)`), pure like the rest: the shell
gives the result as the job event carries it, and nothing here reads the clock or the network.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

import msgspec

from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_jobs.result_validation import Validator, judge_result
from ccn_proto.constraints import line_problem
from ccn_proto.results import (
    MAX_COMMENT_CHARS,
    ReceiptIssued,
    ResultDiscarded,
    ResultEvent,
    ResultRejected,
    ResultReleased,
    ResultValidated,
    VerdictEvent,
)

# the results one job's aggregate remembers: its attempts are few (the job's max_retries + 1),
# so this bounds the state whatever the commands
MAX_RESULTS_PER_JOB: Final = 64
MAX_NAME_CHARS: Final = 128

ResultStatus = Literal["validated", "rejected", "released", "discarded"]


class ResultKey(msgspec.Struct, gc=False, frozen=True):
    node_id: str
    attempt: int
    checksum: str


class JudgedResult(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    key: ResultKey
    status: ResultStatus
    reasons: int = 0  # how many reasons its rejection gave (0 when validated)


class VerdictState(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    results: tuple[JudgedResult, ...] = ()

    def find(self, key: ResultKey) -> JudgedResult | None:
        return next((result for result in self.results if result.key == key), None)

    def judged_attempt(self, node_id: str, attempt: int) -> JudgedResult | None:
        return next(
            (r for r in self.results if r.key.node_id == node_id and r.key.attempt == attempt),
            None,
        )

    @property
    def quarantined(self) -> tuple[JudgedResult, ...]:
        """Rejected results no admin has decided on yet."""
        return tuple(result for result in self.results if result.status == "rejected")


class Judge(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A node's result, as `job.result_submitted` carries it: `result` the JSON object (or its
    bytes), `checksum` the one the node asserted."""

    node_id: str
    attempt: int
    job_type: str
    result: dict[str, Any] | bytes
    checksum: str


class Release(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Accept a rejected result anyway. What follows, once the services are wired (ADR 0024):
    the scheduler treats `result.released` as it treats `result.validated`, so the job completes
    with this result (`job.completed`) and, for a job type that asks for replicas, the result
    joins its consensus like any validated one; the release and its comment are in the audit
    trail, and the reasons it was rejected stay on record in the `result.rejected` before it."""

    node_id: str
    attempt: int
    checksum: str
    by: str
    comment: str


class Discard(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Confirm a rejection: the result leaves quarantine and is never used; the job goes on
    without it (its retries, or another replica, as the scheduler decides)."""

    node_id: str
    attempt: int
    checksum: str
    by: str
    comment: str


VerdictCommand = Judge | Release | Discard


class QuarantineDecider:
    aggregate = "result"

    def __init__(self, validator: Validator = judge_result) -> None:
        self._validate = validator

    def initial_state(self, aggregate_id: str) -> VerdictState:
        return VerdictState(job_id=aggregate_id)

    def decide(self, command: VerdictCommand, state: VerdictState, now: datetime) -> list[VerdictEvent]:
        key = ResultKey(
            node_id=_name(command.node_id, "node_id"),
            attempt=_attempt(command.attempt),
            checksum=_name(command.checksum, "checksum"),
        )
        if isinstance(command, Judge):
            return self._decide_judge(command, key, state)
        by, comment = _name(command.by, "by"), _comment(command.comment)
        wanted: ResultStatus = "released" if isinstance(command, Release) else "discarded"
        if _undecided_or(state, key, wanted) == wanted:
            return []  # decided so already: a retried command changes nothing
        decided = ResultReleased if isinstance(command, Release) else ResultDiscarded
        return [decided(**_key_fields(key), by=by, comment=comment)]

    def _decide_judge(self, command: Judge, key: ResultKey, state: VerdictState) -> list[VerdictEvent]:
        if state.find(key) is not None:
            return []  # judged already: a redelivery
        if state.judged_attempt(key.node_id, key.attempt) is not None:
            raise Conflict(
                f"attempt {key.attempt} of node {key.node_id} was already judged with another result",
                field="checksum",
            )
        if len(state.results) >= MAX_RESULTS_PER_JOB:
            raise Conflict(f"job {state.job_id} has {MAX_RESULTS_PER_JOB} results judged; no more are taken")
        verdict = self._validate(_name(command.job_type, "job_type"), command.result, key.checksum)
        if verdict.accepted:
            return [
                ResultValidated(
                    **_key_fields(key),
                    job_type=verdict.job_type,
                    job_type_version=verdict.job_type_version,
                    rules_version=verdict.rules_version,
                )
            ]
        return [
            ResultRejected(
                **_key_fields(key),
                job_type=verdict.job_type,
                job_type_version=verdict.job_type_version,
                rules_version=verdict.rules_version,
                reasons=verdict.reasons,
                reasons_truncated=verdict.reasons_truncated,
            )
        ]

    def evolve(self, state: VerdictState, event: ResultEvent) -> VerdictState:
        if isinstance(event, ReceiptIssued):
            return state  # a receipt records a verdict already folded
        key = ResultKey(event.node_id, event.attempt, event.checksum)
        if isinstance(event, ResultValidated | ResultRejected):
            if state.find(key) is not None:
                return state
            judged = JudgedResult(
                key=key,
                status="validated" if isinstance(event, ResultValidated) else "rejected",
                reasons=len(event.reasons) if isinstance(event, ResultRejected) else 0,
            )
            return msgspec.structs.replace(state, results=(*state.results, judged))
        status: ResultStatus = "released" if isinstance(event, ResultReleased) else "discarded"
        results = tuple(
            msgspec.structs.replace(result, status=status) if result.key == key else result for result in state.results
        )
        return msgspec.structs.replace(state, results=results)


def _key_fields(key: ResultKey) -> dict[str, Any]:
    return {"node_id": key.node_id, "attempt": key.attempt, "checksum": key.checksum}


def _undecided_or(state: VerdictState, key: ResultKey, wanted: ResultStatus) -> ResultStatus:
    """The result's status when it is rejected (undecided) or already `wanted`; NotFound or
    Conflict otherwise."""
    judged = state.find(key)
    if judged is None:
        raise NotFound(
            f"job {state.job_id} has no result of node {key.node_id}, attempt {key.attempt}, with that checksum"
        )
    if judged.status not in ("rejected", wanted):
        act = "release" if wanted == "released" else "discard"
        raise Conflict(f"cannot {act} a result that is {judged.status}: only a rejected, undecided one")
    return judged.status


def _name(value: str, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        raise BadInput(f"{field} must be 1 to {MAX_NAME_CHARS} characters", field=field)
    problem = line_problem(value)
    if problem is not None:
        raise BadInput(f"{field} {problem}", field=field)
    return value


def _attempt(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise BadInput("attempt must be a whole number from 0 to 1000000", field="attempt")
    return value


def _comment(value: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_COMMENT_CHARS:
        raise BadInput(f"a decision needs a comment of 1 to {MAX_COMMENT_CHARS} characters", field="comment")
    problem = line_problem(value)
    if problem is not None:
        raise BadInput(f"the comment {problem}", field="comment")
    return value
