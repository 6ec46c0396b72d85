"""Bench group `consensus`: results per finalised job (consensus overhead) with 0%, 10% and 30%
unreliable nodes, from the forger simulation (tests.support.consensus_sim): 30 nodes, 3 forgers,
quorum 2, adaptive replication. No servers: the decider, the trust book and the eligibility
rule are pure, run in this one process; the rate is simulated jobs per second on one core."""

from __future__ import annotations

import time

from bench.measure import Figure, figure
from tests.support.consensus_sim import SimConfig, simulate

GROUP = "consensus"
RELIABLE_TARGET = 1.3


def consensus_figures(*, quick: bool) -> list[Figure]:
    jobs, warm_up = (3_000, 1_000) if quick else (20_000, 5_000)
    figures = []
    for share in (0.0, 0.1, 0.3):
        start = time.perf_counter()
        outcome = simulate(SimConfig(jobs=jobs, warm_up=warm_up, unreliable_share=share, forgers_share_ip=False))
        fig = figure(
            f"results per finalised job, {share:.0%} unreliable nodes", GROUP, jobs, time.perf_counter() - start
        )
        fig.notes = (
            f"{outcome.results_per_finalised_job:.3f} results per finalised job after {warm_up} warm-up jobs, "
            f"{outcome.reliable_results_per_job:.3f} where an honest reliable node took the first job; "
            f"{outcome.finalised_alone} finalised alone, {outcome.reviewed} sent to review; "
            f"{outcome.forged_finalised} forged and {outcome.wrong_finalised} wrong values finalised; "
            f"ops/s = simulated jobs per second on one core"
        )
        fig.target = f"< {RELIABLE_TARGET} results per job for honest reliable nodes, no forgery finalised"
        fig.meets_target = outcome.reliable_results_per_job < RELIABLE_TARGET and outcome.forged_finalised == 0
        figures.append(fig)
    return figures
