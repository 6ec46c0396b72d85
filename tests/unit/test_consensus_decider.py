"""The consensus decider of one job group (ccn_validation.consensus): each transition as given
events, a command, and the events it decides; idempotency; the clustering rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ccn_core.decider import fold
from ccn_core.errors import Conflict
from ccn_jobs.consensus_rules import Comparator, ConsensusSpec, FuzzyText, NumericTolerance
from ccn_proto.canonical import result_checksum
from ccn_proto.consensus import (
    MAX_DECISION_STEPS,
    MAX_GROUP_RESULTS,
    AgreementClass,
    ConsensusDecided,
    ConsensusEvent,
    ConsensusFinalised,
    ConsensusPartial,
    ConsensusReplicaIssued,
    ConsensusReplicaLost,
    ConsensusReviewRejected,
    ConsensusStep,
    ConsensusVerified,
    NodeAgreed,
    NodeDisagreed,
    ReplicaRequested,
    ResultRecorded,
    SentToReview,
    consensus_steps,
)
from ccn_validation.consensus import (
    AcceptInReview,
    ConsensusCommand,
    ConsensusDecider,
    ConsensusDecisions,
    ConsensusState,
    RejectInReview,
    ReplicaIssued,
    ReplicaLost,
    ResultArrived,
    agreement_classes,
    one_event,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GROUP = "job-1"
SPEC = ConsensusSpec(replicas=2, quorum=2, max_replicas=4, untrusted_extra=0)
DECIDER = ConsensusDecider(spec_of=lambda job_type: SPEC if job_type == "t" else None)


def arrived(
    job: str,
    node: str,
    value: Any,
    *,
    ip: str | None = None,
    trusted: bool = False,
    alone: bool = False,
    on_probation: bool = False,
) -> ResultArrived:
    result = {"value": value}
    return ResultArrived(
        job_id=job,
        job_type="t",
        node_id=node,
        ip_hash=ip if ip is not None else f"ip-{node}",
        checksum=result_checksum(result),
        result=result,
        trusted=trusted,
        trusted_alone=alone,
        on_probation=on_probation,
    )


def recorded(command: ResultArrived) -> ResultRecorded:
    return ResultRecorded(
        job_id=command.job_id,
        job_type=command.job_type,
        node_id=command.node_id,
        ip_hash=command.ip_hash,
        checksum=command.checksum,
        result=command.result,
        trusted=command.trusted,
        on_probation=command.on_probation,
    )


def run(
    commands: list[ConsensusCommand], decider: ConsensusDecider = DECIDER
) -> tuple[ConsensusState, list[ConsensusStep]]:
    """Decide each command on the state the previous ones left; the history and its fold."""
    history: list[ConsensusStep] = []
    for command in commands:
        history += decider.decide(command, fold(decider, GROUP, history), NOW)
    return fold(decider, GROUP, history), history


def decide_after(
    commands: list[ConsensusCommand], command: ConsensusCommand, decider: ConsensusDecider = DECIDER
) -> list[ConsensusStep]:
    state, _ = run(commands, decider)
    return decider.decide(command, state, NOW)


FIRST = arrived(GROUP, "n1", 42)
AGREES = arrived("job-1-r1", "n2", 42)
DISAGREES = arrived("job-1-r1", "n2", 41)
ISSUE_R1 = ReplicaIssued(job_id="job-1-r1")


def test_a_first_result_from_an_untrusted_node_asks_for_the_replicas() -> None:
    assert DECIDER.decide(FIRST, ConsensusState(group_id=GROUP), NOW) == [
        recorded(FIRST),
        ConsensusPartial(results=1, classes=1, agreeing=1, quorum=2, awaiting=1),
        ReplicaRequested(count=1, exclude_nodes=["n1"], exclude_ip_hashes=["ip-n1"], reason="first result"),
    ]


def test_a_first_result_from_a_trusted_node_is_finalised_alone() -> None:
    first = arrived(GROUP, "n1", 42, trusted=True, alone=True)
    assert DECIDER.decide(first, ConsensusState(group_id=GROUP), NOW) == [
        recorded(first),
        ConsensusFinalised(job_id=GROUP, node_id="n1", checksum=first.checksum, how="trusted_alone"),
    ]


def test_a_job_type_without_adaptive_replication_replicates_a_trusted_nodes_result() -> None:
    fixed = ConsensusDecider(spec_of=lambda _: ConsensusSpec(adaptive=False, untrusted_extra=0))
    events = fixed.decide(arrived(GROUP, "n1", 42, trusted=True, alone=True), ConsensusState(group_id=GROUP), NOW)
    assert isinstance(events[-1], ReplicaRequested)


def test_a_job_type_without_consensus_finalises_its_one_result() -> None:
    command = ResultArrived(job_id=GROUP, job_type="other", node_id="n1", ip_hash=None, checksum="c", result={})
    events = DECIDER.decide(command, ConsensusState(group_id=GROUP), NOW)
    assert events[-1] == ConsensusFinalised(job_id=GROUP, node_id="n1", checksum="c", how="no_consensus")


def test_a_second_agreeing_result_verifies_and_finalises() -> None:
    state, history = run([FIRST, ISSUE_R1, AGREES])
    assert history[-2:] == [
        ConsensusVerified(job_type="t", checksum=FIRST.checksum, agreeing_nodes=["n1", "n2"], dissenting_nodes=[]),
        ConsensusFinalised(job_id=GROUP, node_id="n1", checksum=FIRST.checksum, how="quorum"),
    ]
    assert state.status == "finalised"
    assert state.answer == GROUP


def test_disagreement_asks_for_more_and_the_outvoted_node_disagreed() -> None:
    after_two = [FIRST, ISSUE_R1, DISAGREES]
    assert decide_after([FIRST, ISSUE_R1], DISAGREES)[1:] == [
        ConsensusPartial(results=2, classes=2, agreeing=1, quorum=2, awaiting=1),
        ReplicaRequested(
            count=1, exclude_nodes=["n1", "n2"], exclude_ip_hashes=["ip-n1", "ip-n2"], reason="1 of 2 agree"
        ),
    ]
    third = arrived("job-1-r2", "n3", 41)  # sides with n2: n2's result is the answer
    _, history = run([*after_two, ReplicaIssued(job_id="job-1-r2"), third])
    assert history[-3:] == [
        ConsensusVerified(
            job_type="t", checksum=DISAGREES.checksum, agreeing_nodes=["n2", "n3"], dissenting_nodes=["n1"]
        ),
        ConsensusFinalised(job_id="job-1-r1", node_id="n2", checksum=DISAGREES.checksum, how="quorum"),
        NodeDisagreed(node_id="n1", job_id=GROUP, job_type="t", checksum=FIRST.checksum),
    ]


def _to_the_cap() -> list[ConsensusCommand]:
    commands: list[ConsensusCommand] = [FIRST]
    for index in range(1, 4):
        commands += [ReplicaIssued(job_id=f"job-1-r{index}"), arrived(f"job-1-r{index}", f"n{index + 1}", index)]
    return commands


def test_no_quorum_at_the_cap_sends_the_group_to_review() -> None:
    state, history = run(_to_the_cap())
    assert state.status == "in_review"
    assert history[-1] == SentToReview(
        classes=[
            AgreementClass(checksum=result_checksum({"value": value}), nodes=[node])
            for value, node in ((42, "n1"), (1, "n2"), (2, "n3"), (3, "n4"))
        ],
        reason="4 results, at most 1 agreeing, 2 needed",
    )


def test_a_reviewer_accepts_one_class_and_the_others_disagreed() -> None:
    chosen = result_checksum({"value": 2})
    events = decide_after(_to_the_cap(), AcceptInReview(checksum=chosen, reviewer="ada"))
    assert events[0] == ConsensusFinalised(
        job_id="job-1-r2", node_id="n3", checksum=chosen, how="review", reviewer="ada"
    )
    assert sorted(e.node_id for e in events[1:] if isinstance(e, NodeDisagreed)) == ["n1", "n2", "n4"]


def test_a_reviewer_rejects_every_result() -> None:
    state, history = run([*_to_the_cap(), RejectInReview(reviewer="ada", comment="all wrong")])
    assert history[-1] == ConsensusReviewRejected(reviewer="ada", comment="all wrong")
    assert state.status == "rejected"
    last = _to_the_cap()[-1]
    assert decide_after([*_to_the_cap(), RejectInReview(reviewer="ada", comment="x")], last) == []


@pytest.mark.parametrize(
    "command",
    [AcceptInReview(checksum="nope", reviewer="ada"), RejectInReview(reviewer="ada", comment="x")],
)
def test_review_decisions_outside_review_conflict(command: ConsensusCommand) -> None:
    with pytest.raises(Conflict):
        decide_after([FIRST], command)


def test_accepting_a_checksum_no_result_has_conflicts() -> None:
    with pytest.raises(Conflict, match="no result"):
        decide_after(_to_the_cap(), AcceptInReview(checksum="0" * 64, reviewer="ada"))


def test_the_same_result_twice_is_counted_once() -> None:
    assert decide_after([FIRST], FIRST) == []
    assert decide_after([FIRST, ISSUE_R1, AGREES], AGREES) == []


def test_another_result_for_a_job_that_has_one_conflicts() -> None:
    with pytest.raises(Conflict, match="another checksum"):
        decide_after([FIRST], arrived(GROUP, "n1", 7))


def test_a_result_for_a_job_the_group_never_asked_for_conflicts() -> None:
    with pytest.raises(Conflict, match="not a replica"):
        decide_after([FIRST, ISSUE_R1, AGREES], arrived("job-9", "n9", 42))


def test_a_result_before_the_scheduler_said_the_replica_exists_counts() -> None:
    state, _ = run([FIRST, AGREES])  # asked for one; its result came before ReplicaIssued
    assert state.status == "finalised"
    assert DECIDER.decide(ISSUE_R1, state, NOW) == []


def test_replica_issued_is_idempotent_and_only_for_what_was_asked() -> None:
    assert decide_after([FIRST], ISSUE_R1) == [ConsensusReplicaIssued(job_id="job-1-r1")]
    assert decide_after([FIRST, ISSUE_R1], ISSUE_R1) == []
    with pytest.raises(Conflict):
        decide_after([FIRST, ISSUE_R1], ReplicaIssued(job_id="job-1-r2"))


@pytest.mark.parametrize(
    "duplicate",
    [arrived("job-1-r1", "n1", 42, ip="elsewhere"), arrived("job-1-r1", "n7", 42, ip="ip-n1")],
    ids=["same node", "same ip_hash"],
)
def test_a_result_from_a_node_or_address_already_in_the_group_is_a_lost_replica(duplicate: ResultArrived) -> None:
    events = decide_after([FIRST, ISSUE_R1], duplicate)
    assert events[0] == ConsensusReplicaLost(
        job_id="job-1-r1", reason="its node, or its address, already gave a result"
    )
    assert isinstance(events[-1], ReplicaRequested)
    assert events[-1].count == 1


def test_a_lost_replica_is_replaced_and_losing_it_twice_changes_nothing() -> None:
    lost = ReplicaLost(job_id="job-1-r1", reason="dead")
    events = decide_after([FIRST, ISSUE_R1], lost)
    assert events[0] == ConsensusReplicaLost(job_id="job-1-r1", reason="dead")
    assert isinstance(events[-1], ReplicaRequested)
    assert decide_after([FIRST, ISSUE_R1, lost], lost) == []
    assert decide_after([FIRST], ReplicaLost(job_id="unknown", reason="dead")) == []


def test_losing_the_last_awaited_replica_at_the_cap_sends_to_review() -> None:
    commands = _to_the_cap()[:-1]  # the fourth replica issued, its result never comes
    events = decide_after(commands, ReplicaLost(job_id="job-1-r3", reason="dead"))
    assert isinstance(events[-1], SentToReview)


def test_a_result_while_others_are_awaited_asks_for_no_more() -> None:
    wide = ConsensusDecider(spec_of=lambda _: ConsensusSpec(replicas=3, quorum=2, max_replicas=5, untrusted_extra=0))
    commands: list[ConsensusCommand] = [FIRST, ISSUE_R1, ReplicaIssued(job_id="job-1-r2")]
    events = decide_after(commands, DISAGREES, wide)
    assert events[1:] == [ConsensusPartial(results=2, classes=2, agreeing=1, quorum=2, awaiting=1)]


def test_finalising_cancels_the_replicas_still_out() -> None:
    wide = ConsensusDecider(spec_of=lambda _: ConsensusSpec(replicas=3, quorum=2, max_replicas=5, untrusted_extra=0))
    _, history = run([FIRST, ISSUE_R1, ReplicaIssued(job_id="job-1-r2"), AGREES], wide)
    finalised = history[-1]
    assert isinstance(finalised, ConsensusFinalised)
    assert finalised.cancel_jobs == ["job-1-r2"]


def test_late_results_are_judged_against_the_answer() -> None:
    wide = ConsensusDecider(spec_of=lambda _: ConsensusSpec(replicas=3, quorum=2, max_replicas=5, untrusted_extra=0))
    done: list[ConsensusCommand] = [FIRST, ISSUE_R1, ReplicaIssued(job_id="job-1-r2"), AGREES]
    agreeing = arrived("job-1-r2", "n3", 42)
    disagreeing = arrived("job-1-r2", "n3", 40)
    assert decide_after(done, agreeing, wide) == [
        recorded(agreeing),
        NodeAgreed(node_id="n3", job_id="job-1-r2", job_type="t"),
    ]
    assert decide_after(done, disagreeing, wide)[-1] == NodeDisagreed(
        node_id="n3", job_id="job-1-r2", job_type="t", checksum=disagreeing.checksum
    )


def test_untrusted_nodes_need_one_more_agreeing_result() -> None:
    strict = ConsensusDecider(spec_of=lambda _: ConsensusSpec(replicas=2, quorum=2, max_replicas=5, untrusted_extra=1))
    first_events = strict.decide(FIRST, ConsensusState(group_id=GROUP), NOW)
    assert isinstance(first_events[-1], ReplicaRequested)
    assert first_events[-1].count == 1  # as if the replica's node were trusted: most are
    events = decide_after([FIRST, ISSUE_R1], AGREES, strict)
    assert events[1:] == [
        ConsensusPartial(results=2, classes=1, agreeing=2, quorum=3, awaiting=1),
        ReplicaRequested(
            count=1, exclude_nodes=["n1", "n2"], exclude_ip_hashes=["ip-n1", "ip-n2"], reason="2 of 3 agree"
        ),
    ]
    trusted_agrees = arrived("job-1-r1", "n2", 42, trusted=True)
    assert isinstance(decide_after([FIRST, ISSUE_R1], trusted_agrees, strict)[1], ConsensusVerified)


TOLERANT = ConsensusDecider(
    spec_of=lambda _: ConsensusSpec(
        replicas=2,
        quorum=2,
        max_replicas=5,
        untrusted_extra=0,
        comparator=Comparator(rules=(NumericTolerance(path="value", abs_tol=1.0),)),
    )
)


def _results(values: list[Any]) -> list[ResultRecorded]:
    return [recorded(arrived(f"job-{index}", f"n{index}", value)) for index, value in enumerate(values)]


def test_classes_join_the_first_class_whose_first_result_agrees() -> None:
    """0 ~ 0.8 and 0.8 ~ 1.6, but not 0 ~ 1.6: in this arrival order 1.6 opens a class of its own,
    in another order all three are one class. Each order gives its classes every time."""
    comparator = Comparator(rules=(NumericTolerance(path="value", abs_tol=1.0),))
    values_of = lambda classes: [[r.result["value"] for r in members] for members in classes]  # noqa: E731
    assert values_of(agreement_classes(_results([0.0, 0.8, 1.6]), comparator)) == [[0.0, 0.8], [1.6]]
    assert values_of(agreement_classes(_results([0.8, 0.0, 1.6]), comparator)) == [[0.8, 0.0, 1.6]]
    assert values_of(agreement_classes(_results([1.6, 0.0, 0.8]), comparator)) == [[1.6, 0.8], [0.0]]
    for _ in range(3):
        assert values_of(agreement_classes(_results([0.0, 0.8, 1.6]), comparator)) == [[0.0, 0.8], [1.6]]


def test_a_tolerant_quorum_finalises_its_first_result_and_a_replay_decides_alike() -> None:
    commands: list[ConsensusCommand] = [arrived(GROUP, "n1", 10.0), ISSUE_R1, arrived("job-1-r1", "n2", 10.5)]
    state, history = run(commands, TOLERANT)
    finalised = history[-1]
    assert isinstance(finalised, ConsensusFinalised)
    assert (finalised.job_id, finalised.how) == (GROUP, "quorum")
    replayed, again = run(commands, TOLERANT)
    assert again == history
    assert replayed == state


def test_a_job_type_that_loses_its_spec_mid_group_finalises_its_first_result() -> None:
    specs: dict[str, ConsensusSpec] = {"t": SPEC}
    changing = ConsensusDecider(spec_of=specs.get)
    state, _ = run([FIRST, ISSUE_R1], changing)
    specs.clear()
    events = changing.decide(DISAGREES, state, NOW)
    assert events[-1] == ConsensusFinalised(job_id=GROUP, node_id="n1", checksum=FIRST.checksum, how="no_consensus")


def test_results_on_probation_join_their_class_but_do_not_count_towards_its_quorum() -> None:
    suspect = arrived("job-1-r1", "n2", 42, on_probation=True)
    events = decide_after([FIRST, ISSUE_R1], suspect)
    assert events[1:] == [
        ConsensusPartial(results=2, classes=1, agreeing=1, quorum=2, awaiting=1),
        ReplicaRequested(
            count=1, exclude_nodes=["n1", "n2"], exclude_ip_hashes=["ip-n1", "ip-n2"], reason="1 of 2 agree"
        ),
    ]
    _, history = run([FIRST, ISSUE_R1, suspect, ReplicaIssued(job_id="job-1-r2"), arrived("job-1-r2", "n3", 42)])
    verified = history[-2]
    assert isinstance(verified, ConsensusVerified)
    assert verified.agreeing_nodes == ["n1", "n2", "n3"]  # all three agreed: n2 comes off probation


def test_fuzzy_text_classes_follow_arrival_order_alone() -> None:
    """'abcdefghij' ~ 'abcdefghiX' ~ 'abcdefghYX' at ratio 0.9, yet the first and the last are
    0.8 apart: the last joins the first class only when it arrives before the first result."""
    comparator = Comparator(rules=(FuzzyText(path="value", threshold=0.9),))
    a, b, c = "abcdefghij", "abcdefghiX", "abcdefghYX"
    texts_of = lambda classes: [[r.result["value"] for r in members] for members in classes]  # noqa: E731
    assert texts_of(agreement_classes(_results([a, b, c]), comparator)) == [[a, b], [c]]
    assert texts_of(agreement_classes(_results([b, a, c]), comparator)) == [[b, a, c]]
    assert texts_of(agreement_classes(_results([c, a, b]), comparator)) == [[c, b], [a]]


def test_a_decision_of_several_steps_is_one_event_that_folds_as_its_steps() -> None:
    """One message per decision (ADR 0027): the group's aggregate stores the steps of a decision
    as one `consensus.decided`, which folds as the steps would, and the trust fold and the
    governance observer read its steps."""
    decisions = ConsensusDecisions(DECIDER)
    initial = ConsensusState(group_id=GROUP)
    steps = DECIDER.decide(FIRST, initial, NOW)
    assert len(steps) == 3  # recorded, partial, replicas asked for
    [decided] = decisions.decide(FIRST, initial, NOW)
    assert isinstance(decided, ConsensusDecided) and decided.steps == tuple(steps)
    assert consensus_steps(decided) == tuple(steps)
    assert fold(decisions, GROUP, [decided]) == fold(DECIDER, GROUP, steps)
    # one step stays the event it is; none stays none
    issued = fold(decisions, GROUP, [decided])
    assert decisions.decide(ISSUE_R1, issued, NOW) == [ConsensusReplicaIssued(job_id="job-1-r1")]
    assert decisions.decide(FIRST, issued, NOW) == []
    # the whole history through the packing decider folds as through the steps
    commands = [FIRST, ISSUE_R1, DISAGREES, ReplicaIssued(job_id="job-1-r2"), arrived("job-1-r2", "n3", 42)]
    history = []
    for command in commands:
        history += decisions.decide(command, fold(decisions, GROUP, history), NOW)
    state, steps = run(commands)
    assert state.status == "finalised" and fold(decisions, GROUP, history) == state
    assert [s for event in history for s in consensus_steps(event)] == steps
    assert len(history) == len(commands)  # one event per decision
    assert any(isinstance(s, NodeDisagreed) for s in consensus_steps(history[-1]))


def test_a_decision_over_the_stored_bound_is_refused_not_appended() -> None:
    """An event over its schema's bound would not decode, and its group could no longer be loaded."""
    steps = [ConsensusReplicaIssued(job_id=f"job-1-r{index}") for index in range(MAX_DECISION_STEPS + 1)]
    with pytest.raises(RuntimeError, match="at most"):
        one_event(steps)
    [decided] = one_event(steps[:MAX_DECISION_STEPS])
    encoded = msgspec.json.encode(decided)
    assert msgspec.json.decode(encoded, type=ConsensusEvent) == decided  # the bound is the schema's


def test_the_largest_decision_the_rules_take_is_within_the_bound() -> None:
    """A quorum reached by the last result of a full group: recorded, verified, finalised, and a
    disagreement for every other result."""
    assert 3 + (MAX_GROUP_RESULTS - 1) <= MAX_DECISION_STEPS
