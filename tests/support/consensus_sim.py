"""A simulated volunteer network run through the consensus decider, adaptive replication and the
replica eligibility rule, with no I/O: the unit tests' forger scenario and the bench group
`consensus` (results per finalised job).

Nodes: honest ones err with a small probability (a random wrong value, different every time),
unreliable ones often; forgers always return a forged value with a valid checksum, and the same
forged value as each other (smart forgers collude). Jobs run one group at a time: a random node
takes the first job, the trust book decides whether its result stands alone, and each replica
the decider asks for goes to a random node the eligibility rule allows. A reviewer who knows the
truth settles groups sent to review. Every draw comes from one seeded generator, so a run is
a function of its config.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ccn_core.domain.governance import Record, reputation
from ccn_core.replicas import may_take_replica
from ccn_jobs.consensus_rules import ConsensusSpec
from ccn_proto.canonical import result_checksum
from ccn_proto.consensus import (
    ConsensusFinalised,
    ConsensusStep,
    ConsensusVerified,
    NodeAgreed,
    NodeDisagreed,
    ReplicaRequested,
    ResultRecorded,
)
from ccn_validation.consensus import (
    AcceptInReview,
    ConsensusCommand,
    ConsensusDecider,
    ConsensusState,
    RejectInReview,
    ReplicaIssued,
    ReplicaLost,
    ResultArrived,
    evolve,
)
from ccn_validation.trust import TRUSTED_AFTER, TrustBook

NodeKind = Literal["honest", "unreliable", "forger"]
JOB_TYPE = "sim_job"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
FORGED_OFFSET = 1_000_000


@dataclass(frozen=True, slots=True)
class SimNode:
    node_id: str
    ip_hash: str
    kind: NodeKind
    error_rate: float


@dataclass(frozen=True, slots=True)
class SimConfig:
    nodes: int = 30
    forgers: int = 3
    unreliable_share: float = 0.0  # of the nodes that are not forgers
    honest_error_rate: float = 0.01
    unreliable_error_rate: float = 0.25
    forgers_share_ip: bool = True  # one operator's machines behind one address
    jobs: int = 3_000
    warm_up: int = 1_000  # jobs before the figures start counting
    seed: int = 7
    spec: ConsensusSpec = field(
        default_factory=lambda: ConsensusSpec(replicas=2, quorum=2, max_replicas=5, spot_check_rate=0.1)
    )


@dataclass(slots=True)
class SimOutcome:
    finalised: int = 0
    forged_finalised: int = 0
    wrong_finalised: int = 0  # any value but the true one, forged or an honest error
    reviewed: int = 0
    review_rejected: int = 0
    results_after_warm_up: int = 0
    finalised_after_warm_up: int = 0
    # groups whose first job went to an honest reliable node, after warm-up: results, groups
    reliable_results: int = 0
    reliable_groups: int = 0
    finalised_alone: int = 0
    agreed: Counter[str] = field(default_factory=Counter)
    disagreed: Counter[str] = field(default_factory=Counter)
    nodes: list[SimNode] = field(default_factory=list)

    @property
    def results_per_finalised_job(self) -> float:
        return self.results_after_warm_up / max(1, self.finalised_after_warm_up)

    @property
    def reliable_results_per_job(self) -> float:
        return self.reliable_results / max(1, self.reliable_groups)

    def reputation_of(self, node_id: str) -> float:
        record = Record(agreed=self.agreed[node_id], disagreed=self.disagreed[node_id])
        return reputation(record).score

    def of_kind(self, kind: NodeKind) -> list[SimNode]:
        return [node for node in self.nodes if node.kind == kind]


def make_nodes(config: SimConfig) -> list[SimNode]:
    others = config.nodes - config.forgers
    unreliable = round(others * config.unreliable_share)
    nodes = [
        SimNode(
            node_id=f"node-{index:02d}",
            ip_hash=f"ip-{index:02d}",
            kind="unreliable" if index < unreliable else "honest",
            error_rate=config.unreliable_error_rate if index < unreliable else config.honest_error_rate,
        )
        for index in range(others)
    ]
    for index in range(config.forgers):
        ip_hash = "ip-forgers" if config.forgers_share_ip else f"ip-forger-{index}"
        nodes.append(SimNode(node_id=f"forger-{index}", ip_hash=ip_hash, kind="forger", error_rate=0.0))
    return nodes


def true_value(job_index: int) -> int:
    return job_index * 7 + 3


def node_result(node: SimNode, job_index: int, rng: random.Random) -> dict[str, Any]:
    if node.kind == "forger":
        return {"value": true_value(job_index) + FORGED_OFFSET}
    if rng.random() < node.error_rate:
        return {"value": -rng.randrange(1, 2**40)}  # an error: never the truth, never a forgery
    return {"value": true_value(job_index)}


def simulate(config: SimConfig) -> SimOutcome:
    rng = random.Random(config.seed)
    nodes = make_nodes(config)
    decider = ConsensusDecider(spec_of=lambda _job_type: config.spec)
    trust = TrustBook()
    outcome = SimOutcome(nodes=nodes)
    for job_index in range(config.jobs):
        _run_group(job_index, config, decider, trust, nodes, rng, outcome)
    return outcome


def _run_group(
    job_index: int,
    config: SimConfig,
    decider: ConsensusDecider,
    trust: TrustBook,
    nodes: list[SimNode],
    rng: random.Random,
    outcome: SimOutcome,
) -> None:
    group_id = f"job-{job_index}"
    state = decider.initial_state(group_id)
    first = rng.choice(nodes)
    holders: list[tuple[str, str | None]] = [(first.node_id, first.ip_hash)]
    results = 0

    def apply(command: ConsensusCommand) -> list[ConsensusStep]:
        nonlocal state
        events = decider.decide(command, state, NOW)
        for event in events:
            state = evolve(state, event)
            trust.apply(event)
            _tally(event, outcome)
        return events

    def arrive(job_id: str, node: SimNode, trusted_alone: bool = False) -> list[ConsensusStep]:
        nonlocal results
        results += 1
        result = node_result(node, job_index, rng)
        return apply(
            ResultArrived(
                job_id=job_id,
                job_type=JOB_TYPE,
                node_id=node.node_id,
                ip_hash=node.ip_hash,
                checksum=result_checksum(result),
                result=result,
                trusted=trust.streak(node.node_id, JOB_TYPE) >= TRUSTED_AFTER,
                on_probation=trust.is_on_probation(node.node_id, JOB_TYPE),
                trusted_alone=trusted_alone,
            )
        )

    policy = trust.first_result_policy(first.node_id, JOB_TYPE, config.spec, group_id, b"sim-seed")
    pending = arrive(group_id, first, trusted_alone=policy.alone)
    replica_number = 0
    while pending:
        requested = [event for event in pending if isinstance(event, ReplicaRequested)]
        pending = []
        for request in requested:
            for _ in range(request.count):
                replica_number += 1
                job_id = f"{group_id}-r{replica_number}"
                pending += apply(ReplicaIssued(job_id=job_id))
                eligible = [node for node in nodes if may_take_replica(node.node_id, node.ip_hash, holders)]
                if not eligible:
                    pending += apply(ReplicaLost(job_id=job_id, reason="no eligible node"))
                    continue
                node = rng.choice(eligible)
                holders.append((node.node_id, node.ip_hash))
                pending += arrive(job_id, node)
    if state.status == "in_review":
        _review(state, job_index, apply, outcome)
    after_warm_up = job_index >= config.warm_up
    if state.status == "finalised":
        outcome.finalised += 1
        answer = state.result_of(state.answer) if state.answer else None
        assert answer is not None
        if answer.result["value"] >= FORGED_OFFSET:
            outcome.forged_finalised += 1
        if answer.result["value"] != true_value(job_index):
            outcome.wrong_finalised += 1
        if after_warm_up:
            outcome.finalised_after_warm_up += 1
    if after_warm_up:
        outcome.results_after_warm_up += results
        if first.kind == "honest":
            outcome.reliable_results += results
            outcome.reliable_groups += 1


def _review(state: ConsensusState, job_index: int, apply: Any, outcome: SimOutcome) -> None:
    """The reviewer knows the truth: the class holding it, or none."""
    outcome.reviewed += 1
    truth = next((r for r in state.results if r.result["value"] == true_value(job_index)), None)
    if truth is None:
        outcome.review_rejected += 1
        apply(RejectInReview(reviewer="sim-reviewer", comment="no result is right"))
    else:
        apply(AcceptInReview(checksum=truth.checksum, reviewer="sim-reviewer"))


def _tally(event: ConsensusStep, outcome: SimOutcome) -> None:
    match event:
        case ConsensusVerified(agreeing_nodes=agreeing):
            outcome.agreed.update(agreeing)
        case NodeAgreed(node_id=node):
            outcome.agreed[node] += 1
        case NodeDisagreed(node_id=node):
            outcome.disagreed[node] += 1
        case ConsensusFinalised(how="trusted_alone"):
            outcome.finalised_alone += 1
        case ResultRecorded() | _:
            pass
