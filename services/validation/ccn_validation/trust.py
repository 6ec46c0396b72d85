"""Adaptive replication (BOINC's), as a pure policy over consensus events.

Per (node, job type), the run of consecutive agreed results: each result in a verified quorum's
agreement class, or a late result that agreed with a finalised answer, adds one; one
disagreement sets it back to zero and puts the node on probation for the job type until its
next agreed result (the consensus decider does not count a result on probation towards a
quorum). A result finalised alone adds nothing: only a comparison with another node's result
is evidence. Since the run is folded from consensus events
(`TrustBook.apply`), it rebuilds on replay and every replica of the service that folds the
same events agrees.

A node whose run has reached TRUSTED_AFTER has the first result of a group finalised alone,
except spot checks: a share `spot_check_rate` of its jobs, drawn from the job id and the
service's seed, is replicated anyway. The draw is deterministic, so a replay (or a second
replica of the service) draws the same jobs; the seed is a service secret and never leaves the
service, or a trusted node could compute which of its jobs are checked and forge the others.
A forger must therefore agree TRUSTED_AFTER times in a row before it is trusted, and each forged
result it then gives is caught with probability `spot_check_rate`, which ends its run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from ccn_jobs.consensus_rules import ConsensusSpec
from ccn_proto.consensus import ConsensusEvent, ConsensusVerified, NodeAgreed, NodeDisagreed, consensus_steps

# BOINC's adaptive replication trusts a host after about ten consecutive valid results: long
# enough that a node that errs one time in twenty is rarely trusted by chance (0.95^10 = 0.6 of
# runs reach it, and a forger must be honest that long first), short enough that a new honest
# node stops costing double within an hour of work.
TRUSTED_AFTER: Final = 10


def is_spot_check(job_id: str, seed: bytes, rate: float) -> bool:
    """Whether this job is one of the `rate` share replicated although its node is trusted:
    the first 8 bytes of sha256(seed, job id) read as a fraction of 2^64."""
    digest = hashlib.sha256(len(seed).to_bytes(4, "big") + seed + job_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2**64


@dataclass(frozen=True, slots=True)
class FirstResultPolicy:
    alone: bool
    reason: str


def first_result_policy(
    streak: int, spec: ConsensusSpec | None, job_id: str, seed: bytes, trusted_after: int = TRUSTED_AFTER
) -> FirstResultPolicy:
    """Whether the first result of a group, from a node with `streak` agreed in a row for the
    job type, is finalised alone or replicated up to the quorum."""
    if spec is None:
        return FirstResultPolicy(alone=True, reason="the job type asks for no consensus")
    if not spec.adaptive:
        return FirstResultPolicy(alone=False, reason="the job type always replicates")
    if streak < trusted_after:
        return FirstResultPolicy(alone=False, reason=f"{streak} of {trusted_after} agreed in a row")
    if is_spot_check(job_id, seed, spec.spot_check_rate):
        return FirstResultPolicy(alone=False, reason="spot check")
    return FirstResultPolicy(alone=True, reason=f"trusted: {streak} agreed in a row")


@dataclass(slots=True)
class TrustBook:
    """Runs of agreed results by (node id, job type), folded from consensus events (of every
    group, in stream order). A mutable fold: one dict entry changes per event."""

    streaks: dict[tuple[str, str], int] = field(default_factory=dict)
    on_probation: set[tuple[str, str]] = field(default_factory=set)

    def streak(self, node_id: str, job_type: str) -> int:
        return self.streaks.get((node_id, job_type), 0)

    def is_on_probation(self, node_id: str, job_type: str) -> bool:
        return (node_id, job_type) in self.on_probation

    def apply(self, event: ConsensusEvent) -> None:
        for step in consensus_steps(event):
            self._apply(step)

    def _apply(self, event: ConsensusEvent) -> None:
        match event:
            case ConsensusVerified(job_type=job_type, agreeing_nodes=agreeing, dissenting_nodes=dissenting):
                for node in agreeing:
                    self._agreed(node, job_type)
                for node in dissenting:
                    self._disagreed(node, job_type)
            case NodeAgreed(node_id=node, job_type=job_type):
                self._agreed(node, job_type)
            case NodeDisagreed(node_id=node, job_type=job_type):
                self._disagreed(node, job_type)
            case _:
                pass

    def _agreed(self, node_id: str, job_type: str) -> None:
        key = (node_id, job_type)
        self.streaks[key] = self.streaks.get(key, 0) + 1
        self.on_probation.discard(key)

    def _disagreed(self, node_id: str, job_type: str) -> None:
        key = (node_id, job_type)
        self.streaks.pop(key, None)
        self.on_probation.add(key)

    def first_result_policy(
        self, node_id: str, job_type: str, spec: ConsensusSpec | None, job_id: str, seed: bytes
    ) -> FirstResultPolicy:
        return first_result_policy(self.streak(node_id, job_type), spec, job_id, seed)
