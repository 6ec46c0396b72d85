"""The forger simulation (tests.support.consensus_sim): 30 nodes, 3 forgers who return the same
wrong value with a valid checksum, honest nodes that err now and then, quorum 2."""

from __future__ import annotations

import pytest

from tests.support.consensus_sim import SimConfig, simulate
from tests.support.sizes import small_and_full


@pytest.mark.parametrize("forgers_share_ip", [True, False], ids=["forgers behind one address", "forgers apart"])
def test_no_forged_value_is_finalised_and_forgers_lose_reputation(forgers_share_ip: bool) -> None:
    outcome = simulate(SimConfig(jobs=2_000, warm_up=800, forgers_share_ip=forgers_share_ip))
    assert outcome.forged_finalised == 0
    assert outcome.finalised + outcome.review_rejected == 2_000
    forgers, honest = outcome.of_kind("forger"), outcome.of_kind("honest")
    for forger in forgers:
        assert outcome.disagreed[forger.node_id] >= 30
        assert outcome.agreed[forger.node_id] == 0
    lowest_honest = min(outcome.reputation_of(node.node_id) for node in honest)
    assert max(outcome.reputation_of(node.node_id) for node in forgers) < lowest_honest


def test_honest_reliable_nodes_settle_below_1_3_results_per_job() -> None:
    outcome = simulate(SimConfig(jobs=2_000, warm_up=800))
    assert outcome.reliable_groups > 800
    assert outcome.reliable_results_per_job < 1.3
    assert outcome.finalised_alone > 1_000  # adaptive replication at work, not quorum everywhere


def test_the_simulation_is_a_function_of_its_config() -> None:
    config = SimConfig(jobs=300, warm_up=100, unreliable_share=0.3, seed=3)
    first, second = simulate(config), simulate(config)
    assert (first.agreed, first.disagreed, first.results_after_warm_up) == (
        second.agreed,
        second.disagreed,
        second.results_after_warm_up,
    )


@pytest.mark.parametrize(
    "seeds", small_and_full(range(1, 2), range(1, 6), "the consensus simulation over five seeds, 6,000 jobs each")
)
@pytest.mark.parametrize("unreliable_share", [0.0, 0.3])
def test_other_seeds_and_unreliable_nodes_finalise_no_forgery(seeds: range, unreliable_share: float) -> None:
    jobs = 1_500 if len(seeds) == 1 else 6_000
    for seed in seeds:
        config = SimConfig(
            jobs=jobs, warm_up=jobs // 3, unreliable_share=unreliable_share, forgers_share_ip=False, seed=seed
        )
        outcome = simulate(config)
        assert outcome.forged_finalised == 0
        assert outcome.reliable_results_per_job < 1.3
