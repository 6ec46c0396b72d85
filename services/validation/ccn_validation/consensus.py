"""Consensus of one job group (a job and its replicas), as a pure decider (CC-33).

The validation service records each validated result of the group's jobs here (`ResultArrived`,
with the node's trust facts from ccn_validation.trust), and the decider says what follows, as
events (ccn_proto.consensus):
- the group's first result, from a node adaptive replication trusts for the job type (and no
  spot check drawn): finalised alone; from any other node: `replicas - 1` more replicas asked
  for (of the scheduler, which creates them as jobs with `replica_of`);
- a result that brings an agreement class to its quorum: verified and finalised, every node
  outside the class disagreed (`consensus.node_disagreed`, which the governance score counts);
- otherwise more replicas, as many as the best class still lacks beyond those awaited (counted
  as if they came from trusted nodes, as most do once the network has warmed up; if they do not,
  the next result asks again), up to `max_replicas` jobs in all (results, replicas awaited,
  replicas lost); at that cap, with nothing awaited, the group goes to review, where a reviewer
  accepts one class or none;
- a result after the group was finalised is judged against its answer (node_agreed or
  node_disagreed); one from a node, or an ip_hash, already in the group does not count (the
  claim path should never have offered it: ccn_core.replicas) and is treated as a lost replica.

Votes. A class's quorum is the spec's `quorum` when one of its nodes is trusted for the job
type, and `quorum + untrusted_extra` when none is: two colluding forgers on two addresses are as
likely to be drawn for one group as any two nodes, and agree; with no trusted node among them
they need a third accomplice, drawn too. Forgers are never trusted (their runs of agreed
results end at each disagreement), and once honest nodes are, most quorums hold one. A result
from a node on probation (its latest compared result for the job type disagreed) joins its
class but is no vote: a forger is outvoted by honest nodes in its first group with one, and
from then on its agreement with other forgers counts for nothing; an honest node that erred
once comes off probation with its next agreed result (every member of a verified class agreed).

Agreement classes. Comparators with tolerances are not transitive (a ~ b and b ~ c, yet not
a ~ c), so the classes are built by one deterministic rule: results in arrival order, each
joins the first class (in the order classes were opened) whose *first* result it agrees with,
or opens a class of its own. A class's first result is its representative: its checksum is the
class's, and it is the answer when the class wins. Equal checksums always agree, without the
comparator. Since the events record results in arrival order, a replay builds the same classes.

The spec (quorum, cap, comparator) is the job type's as the decider knows it now
(`spec_of`); the events record every outcome, so `evolve` needs no spec and a replay after a
spec change still gives the state that was decided.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from ccn_core.errors import Conflict
from ccn_jobs.consensus_rules import Comparator, ConsensusSpec, results_agree
from ccn_jobs.registry import JOB_TYPES
from ccn_proto.consensus import (
    MAX_DECISION_STEPS,
    AgreementClass,
    ConsensusDecided,
    ConsensusEvent,
    ConsensusFinalised,
    ConsensusPartial,
    ConsensusReplicaIssued,
    ConsensusReplicaLost,
    ConsensusReviewRejected,
    ConsensusStatus,
    ConsensusStep,
    ConsensusVerified,
    FinalisedHow,
    NodeAgreed,
    NodeDisagreed,
    ReplicaRequested,
    ResultRecorded,
    SentToReview,
)

# -- commands -----------------------------------------------------------------------------------


class ResultArrived(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A validated result of one of the group's jobs. The node's trust facts, from adaptive
    replication (ccn_validation.trust), as the shell found them when the result came: `trusted`,
    its run of agreed results for the job type is long enough; `trusted_alone`, its result may
    stand alone (trusted, and no spot check drawn), which only matters for a group's first;
    `on_probation`, its latest compared result for the job type disagreed."""

    job_id: str
    job_type: str
    node_id: str
    ip_hash: str | None
    checksum: str
    result: dict[str, Any]
    trusted: bool = False
    trusted_alone: bool = False
    on_probation: bool = False


class ReplicaIssued(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """The scheduler created a replica the group asked for."""

    job_id: str


class ReplicaLost(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A replica will give no result (dead, cancelled, its result rejected)."""

    job_id: str
    reason: str


class AcceptInReview(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A reviewer takes the class holding the result with `checksum` as the answer."""

    checksum: str
    reviewer: str
    comment: str = ""


class RejectInReview(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    reviewer: str
    comment: str


ConsensusCommand = ResultArrived | ReplicaIssued | ReplicaLost | AcceptInReview | RejectInReview

# -- state --------------------------------------------------------------------------------------


class ConsensusState(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """`issued`: replica job ids created (the first job is the group id, not listed);
    `requested`: replicas asked for, in total; `answer`: the job whose result was finalised."""

    group_id: str
    job_type: str | None = None
    status: ConsensusStatus = "open"
    results: tuple[ResultRecorded, ...] = ()
    issued: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    requested: int = 0
    answer: str | None = None

    @property
    def awaiting(self) -> int:
        """Replicas asked for whose result is not in: not yet created, or created and out."""
        answered = {result.job_id for result in self.results}
        out = sum(1 for job in self.issued if job not in answered and job not in self.lost)
        return max(0, self.requested - len(self.issued)) + out

    def result_of(self, job_id: str) -> ResultRecorded | None:
        return next((result for result in self.results if result.job_id == job_id), None)


# -- agreement classes --------------------------------------------------------------------------


def agreement_classes(results: Sequence[ResultRecorded], comparator: Comparator) -> list[list[ResultRecorded]]:
    """Results grouped by the rule in the module's docstring (first class whose first member
    agrees, in arrival order)."""
    classes: list[list[ResultRecorded]] = []
    for result in results:
        for members in classes:
            first = members[0]
            if first.checksum == result.checksum or results_agree(comparator, first.result, result.result):
                members.append(result)
                break
        else:
            classes.append([result])
    return classes


def quorum_of(members: Sequence[ResultRecorded], spec: ConsensusSpec) -> int:
    """How many agreeing results verify this class: more when none of its nodes is trusted."""
    return spec.quorum if any(member.trusted for member in members) else spec.quorum + spec.untrusted_extra


def votes(members: Sequence[ResultRecorded]) -> int:
    """The class's results that count towards its quorum: those of nodes not on probation."""
    return sum(1 for member in members if not member.on_probation)


def largest_class(classes: list[list[ResultRecorded]]) -> list[ResultRecorded]:
    """The class with the most votes (then results); of equals, the one opened first."""
    return max(classes, key=lambda members: (votes(members), len(members))) if classes else []


# -- the decider --------------------------------------------------------------------------------


def spec_from_registry(job_type: str) -> ConsensusSpec | None:
    job = JOB_TYPES.get(job_type)
    return job.consensus if job is not None else None


@dataclass(slots=True)
class ConsensusDecider:
    spec_of: Callable[[str], ConsensusSpec | None] = spec_from_registry
    aggregate: str = "consensus"

    def initial_state(self, aggregate_id: str) -> ConsensusState:
        return ConsensusState(group_id=aggregate_id)

    def decide(self, command: ConsensusCommand, state: ConsensusState, now: datetime) -> list[ConsensusStep]:
        match command:
            case ResultArrived():
                return self._result_arrived(command, state)
            case ReplicaIssued(job_id=job_id):
                if job_id in state.issued:
                    return []
                if job_id == state.group_id or state.requested <= len(state.issued):
                    raise Conflict(f"job {job_id} is not a replica group {state.group_id} asked for")
                return [ConsensusReplicaIssued(job_id=job_id)]
            case ReplicaLost(job_id=job_id, reason=reason):
                if job_id not in state.issued or job_id in state.lost or state.result_of(job_id) is not None:
                    return []  # not one of the group's replicas out, or already accounted for
                lost: list[ConsensusStep] = [ConsensusReplicaLost(job_id=job_id, reason=reason[:1000])]
                if state.status != "partial":
                    return lost
                return lost + self._more_or_review(evolve_all(state, lost))
            case AcceptInReview(checksum=checksum, reviewer=reviewer):
                if state.status != "in_review":
                    raise Conflict(f"group {state.group_id} is {state.status}, not in review")
                spec = self._spec(state)
                comparator = spec.comparator if spec else Comparator()
                chosen = next(
                    (members for members in agreement_classes(state.results, comparator) if checksum in _sums(members)),
                    None,
                )
                if chosen is None:
                    raise Conflict(f"no result of group {state.group_id} has checksum {checksum}")
                return [
                    _finalised(state, chosen[0], "review", reviewer=reviewer),
                    *_disagreements([r for r in state.results if r not in chosen], chosen[0]),
                ]
            case RejectInReview(reviewer=reviewer, comment=comment):
                if state.status != "in_review":
                    raise Conflict(f"group {state.group_id} is {state.status}, not in review")
                return [ConsensusReviewRejected(reviewer=reviewer[:128], comment=comment[:1000])]
        raise AssertionError(f"unhandled command {command!r}")  # pragma: no cover

    def evolve(self, state: ConsensusState, event: ConsensusEvent) -> ConsensusState:
        return evolve(state, event)

    def _spec(self, state: ConsensusState) -> ConsensusSpec | None:
        return self.spec_of(state.job_type) if state.job_type else None

    def _result_arrived(self, command: ResultArrived, state: ConsensusState) -> list[ConsensusStep]:
        known = state.result_of(command.job_id)
        if known is not None:
            if known.checksum == command.checksum:
                return []  # the same result again: already counted
            raise Conflict(f"job {command.job_id} already has a result with another checksum")
        if state.job_type is not None and command.job_type != state.job_type:
            raise Conflict(f"job {command.job_id} is a {command.job_type}, group {state.group_id} {state.job_type}")
        first_job = command.job_id == state.group_id
        if not first_job and command.job_id not in state.issued and state.requested <= len(state.issued):
            raise Conflict(f"job {command.job_id} is not a replica group {state.group_id} asked for")
        if command.job_id in state.lost or state.status == "rejected":
            return []  # a result that no longer counts
        recorded = ResultRecorded(
            job_id=command.job_id,
            job_type=command.job_type,
            node_id=command.node_id,
            ip_hash=command.ip_hash,
            checksum=command.checksum,
            result=command.result,
            trusted=command.trusted,
            on_probation=command.on_probation,
        )
        if _already_in_group(state, command):
            lost: list[ConsensusStep] = [
                ConsensusReplicaLost(job_id=command.job_id, reason="its node, or its address, already gave a result")
            ]
            if state.status != "partial" or first_job:
                return lost
            return lost + self._more_or_review(evolve_all(state, lost))
        spec = self.spec_of(command.job_type)
        if state.status in ("finalised", "verified"):
            return [recorded, self._judge_late(state, recorded, spec)]
        events: list[ConsensusStep] = [recorded]
        if not state.results and (spec is None or (spec.adaptive and command.trusted_alone)):
            return [*events, _finalised(state, recorded, "no_consensus" if spec is None else "trusted_alone")]
        if spec is None:  # the job type lost its spec while replicas were out: the first result stands
            return [*events, _finalised(evolve(state, recorded), state.results[0], "no_consensus")]
        after = evolve(state, recorded)
        winner = next(
            (c for c in agreement_classes(after.results, spec.comparator) if votes(c) >= quorum_of(c, spec)), []
        )
        if winner:
            outside = [result for result in after.results if result not in winner]
            return [
                *events,
                ConsensusVerified(
                    job_type=command.job_type,
                    checksum=winner[0].checksum,
                    agreeing_nodes=[result.node_id for result in winner],
                    dissenting_nodes=[result.node_id for result in outside],
                ),
                _finalised(after, winner[0], "quorum"),
                *_disagreements(outside, winner[0]),
            ]
        if state.status == "in_review":
            return events  # recorded for the reviewer; no more replicas past the cap
        return events + self._more_or_review(after)

    def _more_or_review(self, state: ConsensusState) -> list[ConsensusStep]:
        """The group has no quorum: wait for what is awaited, ask for more, or go to review."""
        spec = self._spec(state)
        if spec is None:
            return []
        classes = agreement_classes(state.results, spec.comparator)
        best = largest_class(classes)
        results, awaiting = len(state.results), state.awaiting
        # the fewest more results that could verify some class: counted as if they came from
        # trusted nodes (most do, once the network has warmed up); if they do not, the next
        # result asks again
        shortfall = min((max(1, spec.quorum - votes(c)) for c in classes), default=spec.quorum)
        wanted = shortfall - awaiting
        if state.requested == 0:  # the first round: the job type's replication factor
            wanted = max(wanted, spec.replicas - results - awaiting)
        # a lost replica uses up its place: a group whose replicas keep dying ends in review
        count = min(wanted, spec.max_replicas - results - awaiting - len(state.lost))
        partial = ConsensusPartial(
            results=results,
            classes=len(classes),
            agreeing=votes(best),
            quorum=quorum_of(best, spec),
            awaiting=awaiting + max(0, count),
        )
        if count > 0:
            reason = "first result" if state.requested == 0 else f"{votes(best)} of {quorum_of(best, spec)} agree"
            return [
                partial,
                ReplicaRequested(
                    count=count,
                    exclude_nodes=sorted({result.node_id for result in state.results}),
                    exclude_ip_hashes=sorted({result.ip_hash for result in state.results if result.ip_hash}),
                    reason=reason,
                ),
            ]
        if awaiting > 0:
            return [partial]
        return [
            SentToReview(
                classes=[
                    AgreementClass(checksum=members[0].checksum, nodes=[r.node_id for r in members])
                    for members in classes
                ],
                reason=f"{results} results, at most {votes(best)} agreeing, {quorum_of(best, spec)} needed",
            )
        ]

    def _judge_late(self, state: ConsensusState, late: ResultRecorded, spec: ConsensusSpec | None) -> ConsensusStep:
        answer = state.result_of(state.answer) if state.answer else None
        comparator = spec.comparator if spec else Comparator()
        if answer is not None and (
            answer.checksum == late.checksum or results_agree(comparator, answer.result, late.result)
        ):
            return NodeAgreed(node_id=late.node_id, job_id=late.job_id, job_type=late.job_type)
        return NodeDisagreed(node_id=late.node_id, job_id=late.job_id, job_type=late.job_type, checksum=late.checksum)


def _sums(members: list[ResultRecorded]) -> set[str]:
    return {result.checksum for result in members}


def _already_in_group(state: ConsensusState, command: ResultArrived) -> bool:
    return any(
        result.node_id == command.node_id or (command.ip_hash is not None and result.ip_hash == command.ip_hash)
        for result in state.results
    )


def _finalised(
    state: ConsensusState, chosen: ResultRecorded, how: FinalisedHow, *, reviewer: str | None = None
) -> ConsensusFinalised:
    answered = {result.job_id for result in state.results} | {chosen.job_id}
    out = [job for job in state.issued if job not in answered and job not in state.lost]
    return ConsensusFinalised(
        job_id=chosen.job_id,
        node_id=chosen.node_id,
        checksum=chosen.checksum,
        how=how,
        cancel_jobs=out,
        reviewer=reviewer[:128] if reviewer else None,
    )


def _disagreements(outside: Sequence[ResultRecorded], answer: ResultRecorded) -> list[ConsensusStep]:
    return [
        NodeDisagreed(node_id=result.node_id, job_id=result.job_id, job_type=answer.job_type, checksum=result.checksum)
        for result in outside
    ]


@dataclass(slots=True)
class ConsensusDecisions:
    """The decider as a group's aggregate stores it: each decision one event, its steps in one
    `consensus.decided` when it takes several (ADR 0027: a decision of several events would be
    an atomic batch, which nats-server stages in a file store of its own). The steps are the
    pure decider's (`ConsensusDecider`), which the rules' tests read one by one."""

    steps: ConsensusDecider = field(default_factory=ConsensusDecider)
    aggregate: str = field(init=False)

    def __post_init__(self) -> None:
        self.aggregate = self.steps.aggregate

    def initial_state(self, aggregate_id: str) -> ConsensusState:
        return self.steps.initial_state(aggregate_id)

    def decide(self, command: ConsensusCommand, state: ConsensusState, now: datetime) -> list[ConsensusEvent]:
        return one_event(self.steps.decide(command, state, now))

    def evolve(self, state: ConsensusState, event: ConsensusEvent) -> ConsensusState:
        return evolve(state, event)


def one_event(steps: Sequence[ConsensusStep]) -> list[ConsensusEvent]:
    """A decision's steps as the events to append: none, the one step, or one decision of all."""
    if len(steps) < 2:
        return list(steps)
    if len(steps) > MAX_DECISION_STEPS:
        # never appended: an event over its schema's bound would not decode, and the group's
        # aggregate could no longer be loaded
        raise RuntimeError(f"a consensus decision of {len(steps)} steps; at most {MAX_DECISION_STEPS} are stored")
    return [ConsensusDecided(steps=tuple(steps))]


def evolve(state: ConsensusState, event: ConsensusEvent) -> ConsensusState:
    replace = msgspec.structs.replace
    match event:
        case ConsensusDecided(steps=steps):
            return evolve_all(state, steps)
        case ConsensusReplicaIssued(job_id=job_id):
            return replace(state, issued=(*state.issued, job_id))
        case ResultRecorded(job_id=job_id, job_type=job_type):
            issued = state.issued
            if job_id != state.group_id and job_id not in issued:
                issued = (*issued, job_id)  # its result came before the scheduler's word of it
            return replace(state, results=(*state.results, event), job_type=job_type, issued=issued)
        case ConsensusPartial():
            return replace(state, status="partial")
        case ReplicaRequested(count=count):
            return replace(state, requested=state.requested + count)
        case ConsensusReplicaLost(job_id=job_id):
            issued = state.issued if job_id in state.issued or job_id == state.group_id else (*state.issued, job_id)
            return replace(state, lost=(*state.lost, job_id), issued=issued)
        case ConsensusVerified():
            return replace(state, status="verified")
        case ConsensusFinalised(job_id=job_id):
            return replace(state, status="finalised", answer=job_id)
        case SentToReview():
            return replace(state, status="in_review")
        case ConsensusReviewRejected():
            return replace(state, status="rejected")
        case NodeAgreed() | NodeDisagreed():
            return state
    raise AssertionError(f"unhandled event {event!r}")  # pragma: no cover


def evolve_all(state: ConsensusState, events: Sequence[ConsensusEvent]) -> ConsensusState:
    for event in events:
        state = evolve(state, event)
    return state
