"""Consensus between replicas of one job (CC-33): events of the result aggregate of a job group.

A group is a job and its replicas (sibling jobs whose `replica_of` is the first job's id); its
consensus events are the group's own aggregate's (stream CCN_CONSENSUS, subjects
`ccn.consensus.<first job id>.<event>`), beside each job's verdicts (`ccn.result.<job id>.*`).
The states they record: partial (results in, no quorum
yet), verified (a quorum agreed), finalised (one result chosen and handed on), in review (the
cap on replicas reached without a quorum), rejected (a reviewer accepted none).

`consensus.verified`, `consensus.node_agreed` and `consensus.node_disagreed` name the job type,
so a fold over every group's events (adaptive replication's trust, the governance score) needs
nothing but these events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ccn_proto.constraints import END, SINGLE_LINE_PATTERN, Sha256Hex, ShortText, Text

ConsensusStatus = Literal["open", "partial", "verified", "finalised", "in_review", "rejected"]
# the most results one group gathers (ccn_jobs.consensus_rules.MAX_REPLICAS_CAP)
MAX_GROUP_RESULTS = 16
FinalisedHow = Literal["quorum", "trusted_alone", "review", "no_consensus"]
NodeIds = Annotated[list[ShortText], msgspec.Meta(max_length=MAX_GROUP_RESULTS)]
IpHashes = Annotated[list[ShortText], msgspec.Meta(max_length=MAX_GROUP_RESULTS)]
Checksum = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ConsensusReplicaIssued(msgspec.Struct, gc=False, tag="consensus.replica_issued", frozen=True, kw_only=True):
    """The scheduler created replica `job_id` of the group (after a replica_requested)."""

    job_id: ShortText


class ResultRecorded(msgspec.Struct, gc=False, tag="consensus.result_recorded", frozen=True, kw_only=True):
    """A validated result of one of the group's jobs, as the comparator will see it."""

    job_id: ShortText
    job_type: ShortText
    node_id: ShortText
    ip_hash: ShortText | None = None
    checksum: Checksum
    result: dict[str, Any]
    trusted: bool = False  # adaptive replication trusted the node for the job type then
    on_probation: bool = False  # its latest compared result for the job type had disagreed


class ConsensusPartial(msgspec.Struct, gc=False, tag="consensus.partial", frozen=True, kw_only=True):
    """Results are in but no quorum: `agreeing` votes (results of nodes not on probation) in the
    largest agreement class, of `quorum` it needs; `awaiting` replicas are issued or asked for and not yet in."""

    results: int
    classes: int
    agreeing: int
    quorum: int
    awaiting: int


class ReplicaRequested(msgspec.Struct, gc=False, tag="consensus.replica_requested", frozen=True, kw_only=True):
    """Ask the scheduler for `count` more replicas; none may go to `exclude_nodes` or to a node
    behind one of `exclude_ip_hashes` (ccn_core.replicas)."""

    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_GROUP_RESULTS)]
    exclude_nodes: NodeIds
    exclude_ip_hashes: IpHashes
    reason: Text


class ConsensusReplicaLost(msgspec.Struct, gc=False, tag="consensus.replica_lost", frozen=True, kw_only=True):
    """Replica `job_id` will give no result that counts (it died, was cancelled, or its node was
    already in the group)."""

    job_id: ShortText
    reason: Text


class ConsensusVerified(msgspec.Struct, gc=False, tag="consensus.verified", frozen=True, kw_only=True):
    """A quorum agreed: `checksum` is the representative result's (the agreement class's first),
    `agreeing_nodes` gave results in its class, `dissenting_nodes` results outside it."""

    job_type: ShortText
    checksum: Checksum
    agreeing_nodes: NodeIds
    dissenting_nodes: NodeIds


class ConsensusFinalised(msgspec.Struct, gc=False, tag="consensus.finalised", frozen=True, kw_only=True):
    """The group's answer: the result of `job_id` (checksum `checksum`), by `how`: a quorum, a
    trusted node alone (adaptive replication), a reviewer, or
    alone because the job type asks for no consensus. `cancel_jobs`: replicas still out,
    no longer needed."""

    job_id: ShortText
    node_id: ShortText
    checksum: Checksum
    how: FinalisedHow
    cancel_jobs: Annotated[list[ShortText], msgspec.Meta(max_length=MAX_GROUP_RESULTS)] = []
    reviewer: ShortText | None = None


class AgreementClass(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    checksum: Checksum  # the class's first result's
    nodes: NodeIds


class SentToReview(msgspec.Struct, gc=False, tag="consensus.sent_to_review", frozen=True, kw_only=True):
    """`max_replicas` results without a quorum: a reviewer picks a class, or none."""

    classes: Annotated[list[AgreementClass], msgspec.Meta(max_length=MAX_GROUP_RESULTS)]
    reason: Text


class ConsensusReviewRejected(msgspec.Struct, gc=False, tag="consensus.review_rejected", frozen=True, kw_only=True):
    """A reviewer accepted none of the results: the group ends with no answer."""

    reviewer: ShortText
    comment: Text


class NodeAgreed(msgspec.Struct, gc=False, tag="consensus.node_agreed", frozen=True, kw_only=True):
    """A result that came in after the group was finalised, and agreed with its answer."""

    node_id: ShortText
    job_id: ShortText
    job_type: ShortText


class NodeDisagreed(msgspec.Struct, gc=False, tag="consensus.node_disagreed", frozen=True, kw_only=True):
    """`node_id`'s result for `job_id` disagreed with the group's answer: the governance score's
    `disagreed`, and the end of the node's run of agreed results for `job_type`."""

    node_id: ShortText
    job_id: ShortText
    job_type: ShortText
    checksum: Checksum


# one step of what a group decided (a decision of one step is stored as that event)
ConsensusStep = (
    ConsensusReplicaIssued
    | ResultRecorded
    | ConsensusPartial
    | ReplicaRequested
    | ConsensusReplicaLost
    | ConsensusVerified
    | ConsensusFinalised
    | SentToReview
    | ConsensusReviewRejected
    | NodeAgreed
    | NodeDisagreed
)
# the most steps one decision takes: a result recorded, verified, finalised, and every other
# result of the group disagreeing
MAX_DECISION_STEPS = MAX_GROUP_RESULTS + 4


class ConsensusDecided(msgspec.Struct, gc=False, tag="consensus.decided", frozen=True, kw_only=True):
    """A decision of several steps (a result recorded with the partial count and the replicas it
    asks for; a quorum verified, finalised, and its dissenters), stored as one event in the order
    taken: one message, not an atomic batch, which nats-server stages in a file store of its own
    (ADR 0027). Its steps read as the events they are (`consensus_steps`)."""

    steps: Annotated[tuple[ConsensusStep, ...], msgspec.Meta(min_length=2, max_length=MAX_DECISION_STEPS)]


ConsensusEvent = ConsensusStep | ConsensusDecided


def consensus_steps(event: ConsensusEvent) -> tuple[ConsensusStep, ...]:
    """The steps an event of a group records: its own, or a decision's in order."""
    return event.steps if isinstance(event, ConsensusDecided) else (event,)


# -- the reviewer's commands (the validation service's `accept_consensus`, `reject_consensus`) ---

GroupId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9_-]+{END}")]
Reviewer = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=SINGLE_LINE_PATTERN)]
ReviewComment = Annotated[str, msgspec.Meta(max_length=1000, pattern=SINGLE_LINE_PATTERN)]
RequiredComment = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=SINGLE_LINE_PATTERN)]


class AcceptConsensus(msgspec.Struct, tag="accept_consensus", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A group in review: the reviewer takes the agreement class of the result with `checksum`."""

    group_id: GroupId
    checksum: Sha256Hex
    reviewer: Reviewer
    comment: ReviewComment = ""


class RejectConsensus(msgspec.Struct, tag="reject_consensus", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A group in review: no result is accepted; its jobs are cancelled."""

    group_id: GroupId
    reviewer: Reviewer
    comment: RequiredComment


class GetConsensus(msgspec.Struct, tag="get_consensus", frozen=True, kw_only=True, forbid_unknown_fields=True):
    group_id: GroupId


class ConsensusGroupView(msgspec.Struct, frozen=True, kw_only=True):
    group_id: str
    job_type: str | None
    status: ConsensusStatus
    results: int
    classes: list[AgreementClass]
    replicas: list[str]  # replica job ids issued
    lost: list[str]
    answer: str | None  # the job whose result is the group's answer
