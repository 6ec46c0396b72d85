"""The result aggregate's verdicts and quarantine (ccn_validation.quarantine): a table of
(given events, command, expected events or typed error), and idempotency of judging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ccn_core.decider import fold
from ccn_core.errors import BadInput, CcnError, Conflict, NotFound
from ccn_jobs.result_validation import CHECKSUM_MISMATCH, Verdict
from ccn_proto.canonical import result_checksum
from ccn_proto.envelope import Envelope
from ccn_proto.results import (
    MAX_COMMENT_CHARS,
    Reason,
    ResultDiscarded,
    ResultRejected,
    ResultReleased,
    ResultValidated,
    VerdictEvent,
)
from ccn_validation.quarantine import (
    MAX_RESULTS_PER_JOB,
    Discard,
    Judge,
    QuarantineDecider,
    Release,
    VerdictState,
)
from tests.support.result_samples import changed, good_results

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
JOB = "01JOBQUARANTINE"
decider = QuarantineDecider()

GOOD = good_results("classify_document")[0]
GOOD_SUM = result_checksum(GOOD)
BAD = changed(GOOD, "version", "9")
BAD_SUM = result_checksum(BAD)
ROOT_VERSIONS: dict[str, Any] = {"job_type": "classify_document", "job_type_version": "2", "rules_version": "1"}


def validated(node: str = "n1", attempt: int = 1, checksum: str = GOOD_SUM) -> ResultValidated:
    return ResultValidated(node_id=node, attempt=attempt, checksum=checksum, **ROOT_VERSIONS)


def rejected(node: str = "n1", attempt: int = 1, checksum: str = BAD_SUM) -> ResultRejected:
    return ResultRejected(
        node_id=node,
        attempt=attempt,
        checksum=checksum,
        **ROOT_VERSIONS,
        reasons=(
            Reason(
                code="forbidden",
                field="version",
                message="'9' is not one of '2'; results of another classifier are not comparable",
            ),
        ),
    )


def judge(result: Any = GOOD, checksum: str = GOOD_SUM, node: str = "n1", attempt: int = 1) -> Judge:
    return Judge(node_id=node, attempt=attempt, job_type="classify_document", result=result, checksum=checksum)


def release(node: str = "n1", attempt: int = 1, checksum: str = BAD_SUM, comment: str = "checked by hand") -> Release:
    return Release(node_id=node, attempt=attempt, checksum=checksum, by="admin-ana", comment=comment)


def discard(node: str = "n1", attempt: int = 1, checksum: str = BAD_SUM) -> Discard:
    return Discard(node_id=node, attempt=attempt, checksum=checksum, by="admin-ana", comment="a forgery")


RELEASED = ResultReleased(node_id="n1", attempt=1, checksum=BAD_SUM, by="a", comment="c")
DISCARDED = ResultDiscarded(node_id="n1", attempt=1, checksum=BAD_SUM, by="a", comment="c")


def state_after(events: list[VerdictEvent]) -> VerdictState:
    return fold(decider, JOB, events)


CASES: list[tuple[str, list[VerdictEvent], Any, list[VerdictEvent] | type[CcnError]]] = [
    ("a good result is validated", [], judge(), [validated()]),
    ("a bad result is rejected with its reasons", [], judge(BAD, BAD_SUM), [rejected()]),
    (
        "a wrong checksum is rejected, naming the asserted one",
        [],
        judge(GOOD, "0" * 64),
        [
            ResultRejected(
                node_id="n1",
                attempt=1,
                checksum="0" * 64,
                **ROOT_VERSIONS,
                reasons=(Reason(code="checksum", message=CHECKSUM_MISMATCH),),
            )
        ],
    ),
    ("judging the same result again records nothing", [validated()], judge(), []),
    ("judging the same rejected result again records nothing", [rejected()], judge(BAD, BAD_SUM), []),
    ("another result for an attempt already judged conflicts", [validated()], judge(BAD, BAD_SUM), Conflict),
    ("the next attempt is judged on its own", [rejected()], judge(attempt=2), [validated(attempt=2)]),
    ("another node's result is judged on its own", [validated()], judge(node="n2"), [validated(node="n2")]),
    (
        "a rejected result is released",
        [rejected()],
        release(),
        [ResultReleased(node_id="n1", attempt=1, checksum=BAD_SUM, by="admin-ana", comment="checked by hand")],
    ),
    (
        "a rejected result is discarded",
        [rejected()],
        discard(),
        [ResultDiscarded(node_id="n1", attempt=1, checksum=BAD_SUM, by="admin-ana", comment="a forgery")],
    ),
    ("a validated result cannot be released", [validated()], release(checksum=GOOD_SUM), Conflict),
    ("a validated result cannot be discarded", [validated()], discard(checksum=GOOD_SUM), Conflict),
    ("releasing a released result again records nothing", [rejected(), RELEASED], release(), []),
    ("discarding a discarded result again records nothing", [rejected(), DISCARDED], discard(), []),
    ("a released result cannot be discarded", [rejected(), RELEASED], discard(), Conflict),
    (
        "a discarded result cannot be released",
        [rejected(), ResultDiscarded(node_id="n1", attempt=1, checksum=BAD_SUM, by="a", comment="c")],
        release(),
        Conflict,
    ),
    ("an unknown result cannot be released", [], release(), NotFound),
    ("another checksum is another result", [rejected()], release(checksum="f" * 64), NotFound),
    ("another attempt is another result", [rejected()], discard(attempt=2), NotFound),
    ("a release needs a comment", [rejected()], release(comment="  "), BadInput),
    ("a release's comment is bounded", [rejected()], release(comment="x" * (MAX_COMMENT_CHARS + 1)), BadInput),
    ("a comment is one line of text", [rejected()], release(comment="ok\x1b[2J"), BadInput),
    ("a node id is one line", [], judge(node="n1\nforged"), BadInput),
    ("a node id is bounded", [], judge(node="n" * 200), BadInput),
    ("an attempt is a count", [], judge(attempt=-1), BadInput),
    ("a checksum is one bounded line", [], judge(checksum="c" * 500), BadInput),
]


@pytest.mark.parametrize(("what", "given", "command", "expected"), CASES, ids=[case[0] for case in CASES])
def test_verdict_transitions(what: str, given: list[VerdictEvent], command: Any, expected: Any) -> None:
    state = state_after(given)
    if isinstance(expected, list):
        assert decider.decide(command, state, NOW) == expected
    else:
        with pytest.raises(expected):
            decider.decide(command, state, NOW)


def test_an_unknown_job_type_is_rejected_not_raised() -> None:
    command = Judge(
        node_id="n1", attempt=1, job_type="mine_bitcoin", result={"a": 1}, checksum=result_checksum({"a": 1})
    )
    (event,) = decider.decide(command, state_after([]), NOW)
    assert isinstance(event, ResultRejected)
    assert [(r.code, r.field) for r in event.reasons] == [("unknown_job_type", None)]
    assert (event.job_type_version, event.rules_version) == ("", "")


def test_a_hostile_result_is_rejected_as_bytes_or_object() -> None:
    for result in (b"[" * 5000 + b"]" * 5000, {"text": "\x00"}, b"\xff\xfe"):
        (event,) = decider.decide(judge(result, "c" * 64), state_after([]), NOW)
        assert isinstance(event, ResultRejected) and event.reasons


def test_judging_is_idempotent_across_a_fold() -> None:
    events: list[VerdictEvent] = []
    for command in (judge(), judge(BAD, BAD_SUM, node="n2"), judge(), judge(BAD, BAD_SUM, node="n2")):
        events += decider.decide(command, state_after(events), NOW)
    assert events == [validated(), rejected(node="n2")]
    state = state_after(events)
    assert [(r.key.node_id, r.status, r.reasons) for r in state.results] == [
        ("n1", "validated", 0),
        ("n2", "rejected", 1),
    ]
    assert [r.key.node_id for r in state.quarantined] == ["n2"]
    events += decider.decide(release(node="n2"), state, NOW)
    assert state_after(events).quarantined == ()
    assert state_after(events).results[1].status == "released"


def test_an_event_applied_twice_changes_nothing() -> None:
    once = state_after([rejected()])
    assert decider.evolve(once, rejected()) == once


def test_the_results_one_job_remembers_are_bounded() -> None:
    events: list[VerdictEvent] = [validated(node=f"n{n}") for n in range(MAX_RESULTS_PER_JOB)]
    with pytest.raises(Conflict):
        decider.decide(judge(node="late"), state_after(events), NOW)


def test_the_validator_is_passed_in() -> None:
    seen: list[tuple[str, Any, str]] = []

    def validator(job_type: str, result: Any, checksum: str) -> Any:
        seen.append((job_type, result, checksum))
        return Verdict(job_type=job_type, accepted=True, checksum=checksum, job_type_version="7", rules_version="3")

    (event,) = QuarantineDecider(validator).decide(judge(), state_after([]), NOW)
    assert seen == [("classify_document", GOOD, GOOD_SUM)]
    assert isinstance(event, ResultValidated) and (event.job_type_version, event.rules_version) == ("7", "3")


def test_every_verdict_event_round_trips_in_its_envelope() -> None:
    events: list[VerdictEvent] = [
        validated(),
        rejected(),
        ResultReleased(node_id="n1", attempt=1, checksum=BAD_SUM, by="a", comment="c"),
        ResultDiscarded(node_id="n1", attempt=1, checksum=BAD_SUM, by="a", comment="c"),
    ]
    decode = msgspec.json.Decoder(Envelope[VerdictEvent]).decode
    for event in events:
        envelope = Envelope(
            event_id="e1",
            type=str(type(event).__struct_config__.tag),
            schema_version=1,
            aggregate_id=JOB,
            occurred_at=NOW,
            correlation_id="c1",
            causation_id=None,
            actor={"kind": "service", "id": "validation"},  # type: ignore[arg-type]
            data=event,
        )
        assert decode(msgspec.json.encode(envelope)).data == event
    assert [type(e).__struct_config__.tag for e in events] == [
        "result.validated",
        "result.rejected",
        "result.released",
        "result.discarded",
    ]
