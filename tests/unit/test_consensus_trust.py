"""Adaptive replication (ccn_validation.trust) and replica eligibility (ccn_core.replicas)."""

from __future__ import annotations

import pytest

from ccn_core.replicas import may_take_replica
from ccn_jobs.consensus_rules import ConsensusSpec
from ccn_proto.consensus import ConsensusDecided, ConsensusFinalised, ConsensusVerified, NodeAgreed, NodeDisagreed
from ccn_validation.trust import TRUSTED_AFTER, TrustBook, first_result_policy, is_spot_check

SPEC = ConsensusSpec(spot_check_rate=0.1)
SEED = b"service seed"


def verified(agreeing: list[str], dissenting: list[str] = [], job_type: str = "t") -> ConsensusVerified:  # noqa: B006
    return ConsensusVerified(job_type=job_type, checksum="c", agreeing_nodes=agreeing, dissenting_nodes=dissenting)


def test_a_run_of_agreed_results_makes_a_node_trusted_for_that_job_type_only() -> None:
    book = TrustBook()
    for _ in range(TRUSTED_AFTER - 1):
        book.apply(verified(["n1", "n2"]))
    book.apply(NodeAgreed(node_id="n1", job_id="j", job_type="t"))
    assert book.streak("n1", "t") == TRUSTED_AFTER
    assert book.streak("n2", "t") == TRUSTED_AFTER - 1
    assert book.streak("n1", "other") == 0


def test_one_disagreement_resets_the_run_and_puts_the_node_on_probation_until_it_agrees() -> None:
    book = TrustBook()
    for _ in range(TRUSTED_AFTER):
        book.apply(verified(["n1", "n2"]))
    book.apply(NodeDisagreed(node_id="n1", job_id="j", job_type="t", checksum="x"))
    assert book.streak("n1", "t") == 0
    assert book.is_on_probation("n1", "t")
    book.apply(verified(["n2"], dissenting=["n3"]))
    assert book.is_on_probation("n3", "t")
    book.apply(verified(["n1", "n3"]))
    assert (book.streak("n1", "t"), book.is_on_probation("n1", "t")) == (1, False)
    assert not book.is_on_probation("n2", "t")


def test_a_result_finalised_alone_is_no_evidence() -> None:
    book = TrustBook()
    book.apply(ConsensusFinalised(job_id="j", node_id="n1", checksum="c", how="trusted_alone"))
    assert book.streak("n1", "t") == 0


def test_replaying_the_same_events_gives_the_same_book() -> None:
    events = [verified(["n1", "n2"]), NodeDisagreed(node_id="n2", job_id="j", job_type="t", checksum="x")] * 5
    first, second = TrustBook(), TrustBook()
    for event in events:
        first.apply(event)
    for event in events:
        second.apply(event)
    assert first == second


@pytest.mark.parametrize(
    ("streak", "spec", "alone", "reason"),
    [
        (0, None, True, "the job type asks for no consensus"),
        (50, ConsensusSpec(adaptive=False), False, "the job type always replicates"),
        (TRUSTED_AFTER - 1, SPEC, False, f"{TRUSTED_AFTER - 1} of {TRUSTED_AFTER} agreed in a row"),
        (TRUSTED_AFTER, ConsensusSpec(spot_check_rate=0.0), True, f"trusted: {TRUSTED_AFTER} agreed in a row"),
        (TRUSTED_AFTER, ConsensusSpec(spot_check_rate=1.0), False, "spot check"),
    ],
)
def test_first_result_policy(streak: int, spec: ConsensusSpec | None, alone: bool, reason: str) -> None:
    policy = first_result_policy(streak, spec, "job-1", SEED)
    assert (policy.alone, policy.reason) == (alone, reason)


def test_spot_checks_are_drawn_at_their_rate_and_the_same_on_every_replay() -> None:
    jobs = [f"job-{index}" for index in range(20_000)]
    drawn = [job for job in jobs if is_spot_check(job, SEED, 0.1)]
    assert 0.09 < len(drawn) / len(jobs) < 0.11
    assert drawn == [job for job in jobs if is_spot_check(job, SEED, 0.1)]
    # another seed draws other jobs: a node that knows the job ids cannot tell without the seed
    other = {job for job in jobs if is_spot_check(job, b"another seed", 0.1)}
    assert len(other & set(drawn)) < len(drawn) * 0.2


def test_a_spot_check_rate_of_zero_or_one_is_never_or_always() -> None:
    assert not any(is_spot_check(f"j{index}", SEED, 0.0) for index in range(1000))
    assert all(is_spot_check(f"j{index}", SEED, 1.0) for index in range(1000))


HOLDERS = [("n1", "ip-a"), ("n2", None)]


@pytest.mark.parametrize(
    ("node", "ip_hash", "eligible"),
    [
        ("n3", "ip-b", True),
        ("n1", "ip-b", False),  # held one already, from another address
        ("n3", "ip-a", False),  # behind the address of one that held one
        ("n2", "ip-c", False),
        ("n3", None, True),  # an unknown address matches no other
        ("n1", None, False),
    ],
)
def test_replica_eligibility(node: str, ip_hash: str | None, eligible: bool) -> None:
    assert may_take_replica(node, ip_hash, HOLDERS) is eligible


def test_anyone_may_take_a_replica_of_a_group_nobody_held() -> None:
    assert may_take_replica("n1", "ip-a", [])


def test_the_steps_of_a_decision_count_as_events_of_their_own() -> None:
    """A group's decision of several steps is one `consensus.decided` (ADR 0027): the book
    reads its steps."""
    steps = (
        NodeAgreed(node_id="n1", job_id="g", job_type="t"),
        NodeDisagreed(node_id="n2", job_id="g", job_type="t", checksum="c"),
    )
    apart, together = TrustBook(), TrustBook()
    for step in steps:
        apart.apply(step)
    together.apply(ConsensusDecided(steps=steps))
    assert together == apart and together.streak("n1", "t") == 1 and together.is_on_probation("n2", "t")
