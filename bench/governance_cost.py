"""What node governance costs the job lifecycle: the same lifecycle run against a stack with it
on (the default) and one with all of it off, each on a NATS server of its own, interleaved round
by round (on, off, on, off...) so load from elsewhere on the machine falls on both alike. All of
it: on the claim path the claim owner's node view, eligibility, fair shares, daily quotas,
budgets on offers and the shadow-ban check on results (`CCN_SCHEDULER_GOVERNANCE=0`); the edge's
rate limits (`enabled: false`); the registry's governance observer
(`CCN_REGISTRY_GOVERNANCE_OBSERVER=0`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from bench.lifecycle_bench import BATCHED_CONCURRENCY, Stack, change_rate_limits, lifecycle, running_stack
from bench.measure import Figure, figure
from ccn_cli.stack.ports import free_port
from tests.support.servers import start_nats

GROUP = "job lifecycle"
# the target: governance costs at most this share of lifecycle throughput
MAX_COST = 0.15


async def governance_cost(postgres: Any, workdir: Path, *, quick: bool) -> list[Figure]:
    nodes = 20 if quick else 200
    jobs = 2_000 if quick else 20_000
    rounds = 3 if quick else 4
    runs: dict[str, list[Figure]] = {"on": [], "off": []}
    async with contextlib.AsyncExitStack() as stack:
        stacks: dict[str, Stack] = {}
        for mode in ("on", "off"):
            server = start_nats(workdir / f"nats-governance-{mode}", free_port())
            stack.callback(server.stop)
            database = f"lifecycle_governance_{mode}"
            postgres.create_database(database)
            ports = [free_port() for _ in range(5)]
            flag = "1" if mode == "on" else "0"
            env = {"CCN_SCHEDULER_GOVERNANCE": flag, "CCN_REGISTRY_GOVERNANCE_OBSERVER": flag}
            stacks[mode] = await stack.enter_async_context(
                running_stack(server.url, postgres.dsn(database), workdir / f"stack-governance-{mode}", ports, env)
            )
            if mode == "off":
                # off means all of governance: the edge's rate limits too
                await change_rate_limits(stacks[mode], lambda limits: {**limits, "enabled": False})
        for round_ in range(rounds):
            for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
                runs[mode].append(
                    await lifecycle(
                        stacks[mode],
                        nodes=nodes,
                        jobs=jobs,
                        label=f"governance {mode}, round {round_ + 1}",
                        concurrency=BATCHED_CONCURRENCY,
                        batch=True,
                        target=0,
                    )
                )
    figures = [_combined(mode, runs[mode], nodes) for mode in ("on", "off")]
    on, off = figures
    cost = 1 - on.ops_per_s / off.ops_per_s if off.ops_per_s else 0.0
    verdict = figure(
        "  governance cost (1 - on ÷ off)",
        GROUP,
        on.operations,
        on.seconds,
        notes=f"{on.ops_per_s:,.0f} ÷ {off.ops_per_s:,.0f} jobs/s, {rounds} interleaved rounds each; "
        f"per round on: {', '.join(f'{f.ops_per_s:,.0f}' for f in runs['on'])}, "
        f"off: {', '.join(f'{f.ops_per_s:,.0f}' for f in runs['off'])}",
    )
    verdict.baseline = off.name
    verdict.ratio_to_baseline = round(on.ops_per_s / off.ops_per_s, 3) if off.ops_per_s else None
    verdict.target = f"cost <= {MAX_COST:.0%}"
    verdict.meets_target = cost <= MAX_COST
    verdict.notes = f"cost {cost:.1%}. " + verdict.notes
    return [*figures, verdict]


def _combined(mode: str, runs: list[Figure], nodes: int) -> Figure:
    jobs = sum(run.operations for run in runs)
    seconds = sum(run.seconds for run in runs)
    combined = figure(
        f"lifecycle: governance {mode}, {nodes} nodes x{BATCHED_CONCURRENCY}, batched",
        GROUP,
        jobs,
        seconds,
        notes=f"{len(runs)} runs of {runs[0].operations:,} jobs; p50/p99 of the runs' claim latency: "
        + ", ".join(f"{run.p50_ms}/{run.p99_ms} ms" for run in runs),
    )
    return combined
