"""`make bench`: one run, side by side, on this machine. Starts its own NATS and PostgreSQL
(fresh data dirs under .ccn/bench) so earlier runs and a running stack do not colour it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import nats
import uvloop

from bench.campaign_bench import campaign_figures
from bench.consensus_bench import consensus_figures
from bench.documents_bench import document_figures
from bench.eventstore_bench import (
    BENCH,
    aggregate_loads,
    fresh_bench_stream,
    history_reads,
    occ_appends,
    raw_async_publish,
    raw_sync_publish,
)
from bench.fetch_bench import fetch_figures
from bench.governance_bench import governance_figures
from bench.governance_cost import governance_cost
from bench.html_bench import html_figures
from bench.lifecycle_bench import (
    BATCHED_CONCURRENCY,
    PAYLOAD,
    claim_latency,
    idle_connections,
    lifecycle,
    running_stack,
    steady_claim_latency,
)
from bench.lifecycle_costs import (
    CostProbe,
    CpuMeter,
    JobCosts,
    bare_figure,
    bare_lifecycle,
    comparison_figures,
    floor_figures,
    floor_lifecycle,
    stack_processes,
    synced_comparison,
)
from bench.lifecycle_footprint import job_footprints
from bench.lifecycle_overload import overload
from bench.linking_bench import linking_figures
from bench.measure import Figure, print_table, write_report
from bench.merge_bench import merge_figures
from bench.merge_service_bench import merge_service_figures
from bench.nlp_bench import nlp_figures
from bench.projection_bench import catch_up, catch_up_with_cpu, fill_job_stream, fill_node_stream
from bench.proxy_bench import proxy_figures
from bench.takeover_bench import takeover_replay
from bench.validation_bench import validation_figures
from ccn_analytics.audit_projection import AuditLogProjection
from ccn_analytics.orchestrator_projection import OrchestratorLogProjection
from ccn_cli.stack.ports import free_port
from ccn_core.migrations import apply_migrations
from ccn_core.projection import Projection
from ccn_core.service import tune_collector
from ccn_core.settings import Settings
from ccn_core.topology import ensure_streams
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_registry.read_model import NodeReadModel
from ccn_scheduler.read_model import JobReadModel
from tests.support.servers import EmbeddedPostgres, start_nats, start_postgres

QUICK = os.environ.get("CCN_BENCH_QUICK") == "1"  # a smoke run for CI: same code, small counts
# `CCN_BENCH_ONLY=lifecycle` (or eventstore, projection, nlp, linking, merge, consensus, validation, documents,
# html, governance, fetch, crawl):
# one group, for working on it
ONLY = {group for group in os.environ.get("CCN_BENCH_ONLY", "").split(",") if group}


async def _fresh_database(postgres: Any, name: str) -> str:
    postgres.create_database(name)
    dsn: str = postgres.dsn(name)
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn)
    await conn.close()
    return dsn


async def _projection_figures(settings: Settings, postgres: Any, events: int, jobs: int) -> list[Figure]:
    nc = await nats.connect(settings.effective_nats_url)
    try:
        await ensure_streams(nc.jetstream(), settings)
        last = await fill_node_stream(nc, events)
        figures = []
        projections: list[tuple[str, Projection]] = [
            ("node read model (insert + update)", NodeReadModel()),
            ("audit_log (insert only)", AuditLogProjection()),
        ]
        for label, projection in projections:
            dsn = await _fresh_database(postgres, f"bench_{len(figures)}")
            figures.append(await catch_up(nc, dsn, projection, last, label))
        # job lives: the scheduler's read model and the orchestrator log, as in the lifecycle
        result = result_to_builtins(run_job("extract_text", PAYLOAD))
        last = await fill_job_stream(nc, jobs, PAYLOAD, result)
        postgres_pid = postgres.running.pid if isinstance(postgres, EmbeddedPostgres) else None
        job_projections: list[tuple[str, Projection]] = [
            ("job read model (3 events a job)", JobReadModel()),
            ("orchestrator_log (3 events a job)", OrchestratorLogProjection()),
        ]
        for label, projection in job_projections:
            dsn = await _fresh_database(postgres, f"bench_{len(figures)}")
            figures.append(await catch_up_with_cpu(nc, dsn, projection, last, label, postgres_pid))
        return figures
    finally:
        await nc.close()


async def _lifecycle_figures(workdir: Path, *, quick: bool) -> list[Figure]:
    """The services as processes, on a NATS server and a PostgreSQL of their own: on the earlier
    benchmarks' servers their projections would first catch up on 100k node events (the event
    streams refuse a purge, by design), and PostgreSQL would still be vacuuming and
    checkpointing the projection benchmarks' rows. Then the same on a NATS server that fsyncs
    every append (`sync_interval: always`, what `CCN_NATS_SYNC_INTERVAL=always` gives `ccn up`)."""
    postgres = start_postgres(workdir / "pg-lifecycle", free_port())
    try:
        postgres.create_database("lifecycle")
        monitor_port = free_port()
        nats_server = start_nats(workdir / "nats-lifecycle", free_port(), monitor_port=monitor_port)
        try:
            figures = await _lifecycle_on(nats_server, postgres, workdir, monitor_port, quick=quick)
        finally:
            nats_server.stop()
        figures += await governance_cost(postgres, workdir, quick=quick)
        postgres.create_database("lifecycle_sync")
        synced_monitor = free_port()
        synced = start_nats(
            workdir / "nats-sync-always", free_port(), sync_interval="always", monitor_port=synced_monitor
        )
        try:
            figures += await _lifecycle_synced(synced, postgres, workdir, synced_monitor, quick=quick)
        finally:
            synced.stop()
        return figures
    finally:
        postgres.stop()


async def _lifecycle_on(
    nats_server: Any, postgres: Any, workdir: Path, monitor_port: int, *, quick: bool
) -> list[Figure]:
    ports = [free_port() for _ in range(5)]
    nats_url = nats_server.url
    monitor_url = f"http://127.0.0.1:{monitor_port}"
    async with running_stack(nats_url, postgres.dsn("lifecycle"), workdir / "stack", ports) as stack:
        nodes = 20 if quick else 200
        jobs = 2_000 if quick else 50_000
        processes = stack_processes(stack.home, nats_server.running.pid, postgres.running.pid)
        probe = CostProbe(CpuMeter(processes, with_children=frozenset({"postgresql"})), monitor_url)
        tally: dict[str, float] = {}
        main = await lifecycle(
            stack,
            nodes=nodes,
            jobs=jobs,
            label=f"{nodes} nodes x{BATCHED_CONCURRENCY}, batched frames",
            concurrency=BATCHED_CONCURRENCY,
            batch=True,
            probe=probe,
            target=5_000,
            tally=tally,
        )
        assert probe.costs is not None
        # the bare event store, on the same server, in the same run
        bare = await _bare_on(nats_server, postgres.dsn("lifecycle"), monitor_url, jobs)
        bare_row = bare_figure(bare)
        figures = [main, bare_row, *comparison_figures(probe.costs, main, bare, bare_row)]
        floor = await _bare_on(nats_server, postgres.dsn("lifecycle"), monitor_url, jobs, floor_lifecycle)
        figures += floor_figures(floor, bare)
        figures.append(
            await lifecycle(
                stack, nodes=nodes, jobs=200 if quick else 10_000, label=f"{nodes} nodes, one job per frame"
            )
        )
        for nodes in (10, 50) if quick else (10, 200, 1_000):
            figures.append(await steady_claim_latency(stack, nodes, seconds=3.0 if quick else 10.0))
        for nodes in (10, 50) if quick else (10, 200, 1_000):
            figures.append(await claim_latency(stack, nodes))
        figures.append(await idle_connections(stack, 500 if quick else 10_000))
        figures += await job_footprints(stack, nats_url)
        # a standby taking over the claims replays all the stream the rows above left
        figures.append(await takeover_replay(nats_url))
        figures += await overload(
            stack,
            main,
            tally["result_frames_per_s"],
            nodes=20 if quick else 200,
            concurrency=BATCHED_CONCURRENCY,
            seconds=5.0 if quick else 30.0,
            burst_jobs=jobs // 5,
            drain_s=60.0 if quick else 300.0,
        )
        return figures


async def _bare_on(
    nats_server: Any, dsn: str, monitor_url: str, jobs: int, path: Callable[..., Awaitable[JobCosts]] = bare_lifecycle
) -> JobCosts:
    """The bare event store's lifecycle (or another services-free `path`, bench/design_floor.py's)
    on the server a full row just ran on."""
    nc = await nats.connect(nats_server.url)
    try:
        settings = Settings(nats_url=nats_server.url, database_url=dsn)
        return await path(nc, settings, nats_server.running.pid, monitor_url, jobs)
    finally:
        await nc.close()


async def _lifecycle_synced(
    nats_server: Any, postgres: Any, workdir: Path, monitor_port: int, *, quick: bool
) -> list[Figure]:
    """The main row's shape on a NATS server that fsyncs every append, then the bare event store
    on the same server: what the disk allows the appends alone."""
    ports = [free_port() for _ in range(5)]
    jobs = 1_000 if quick else 10_000
    dsn = postgres.dsn("lifecycle_sync")
    async with running_stack(nats_server.url, dsn, workdir / "stack-sync", ports) as stack:
        nodes = 20 if quick else 200
        synced = await lifecycle(
            stack,
            nodes=nodes,
            jobs=jobs,
            label=f"{nodes} nodes x{BATCHED_CONCURRENCY}, batched, NATS sync_interval always",
            concurrency=BATCHED_CONCURRENCY,
            batch=True,
            target=900,
        )
        bare = await _bare_on(nats_server, dsn, f"http://127.0.0.1:{monitor_port}", jobs)
    return [synced, *synced_comparison(synced, bare_figure(bare, synced="always"))]


async def _kernel_figures(settings: Settings, postgres: Any, scale: int) -> list[Figure]:
    figures: list[Figure] = []
    if not ONLY or "eventstore" in ONLY:
        nc = await nats.connect(settings.effective_nats_url)
        await fresh_bench_stream(nc, settings)
        sync = await raw_sync_publish(nc, 5_000 // scale)
        async_ = await raw_async_publish(nc, 50_000 // scale)
        figures += [sync, async_]
        figures += await occ_appends(nc, settings, async_, sync, n_seq=5_000 // scale, n_conc=50_000 // scale)
        figures += await aggregate_loads(nc, settings, aggregates=500 // scale)
        figures += await history_reads(nc, settings, aggregates=30_000 // scale)
        await nc.jetstream().delete_stream(BENCH.name)
        await nc.close()
    if not ONLY or "projection" in ONLY:
        figures += await _projection_figures(settings, postgres, 100_000 // scale, 10_000 // scale)
    return figures


def run(workdir: Path) -> list[Figure]:
    figures: list[Figure] = []
    if not ONLY or ONLY & {"eventstore", "projection"}:
        nats_server = start_nats(workdir / "nats", free_port())
        postgres = start_postgres(workdir / "pg", free_port())
        try:
            settings = Settings(nats_url=nats_server.url, database_url=postgres.dsn("postgres"))
            # ccn_core against raw nats-py in one client process, on the stock asyncio loop and
            # collector: the conditions the kernel's targets (issue #3) were set in
            figures += asyncio.run(_kernel_figures(settings, postgres, 10 if QUICK else 1))
        finally:
            nats_server.stop()
            postgres.stop()
    if not ONLY or "nlp" in ONLY:
        # job handlers alone, no servers: before the lifecycle group tunes the collector
        figures += nlp_figures(quick=QUICK)
    if not ONLY or "linking" in ONLY:
        figures += linking_figures(quick=QUICK)  # pure handlers: no servers
    if not ONLY or "merge" in ONLY:
        figures += merge_figures(quick=QUICK)  # the dataset decider alone: no servers
        figures += merge_service_figures(workdir, quick=QUICK)  # the merge service, on a NATS of its own
    if not ONLY or "consensus" in ONLY:
        figures += consensus_figures(quick=QUICK)  # the forger simulation: pure, no servers
    if not ONLY or "validation" in ONLY:
        figures += validation_figures(quick=QUICK)  # the pure validator: no servers
    if not ONLY or "documents" in ONLY:
        figures += document_figures(quick=QUICK)
    if not ONLY or "html" in ONLY:
        figures += html_figures(quick=QUICK)  # extract_text against trafilatura alone: no servers
    if not ONLY or "governance" in ONLY:
        figures += governance_figures(workdir, quick=QUICK)  # the rate limiter, on a NATS of its own
    if not ONLY or "fetch" in ONLY:
        figures += fetch_figures(workdir, quick=QUICK)  # the domain limiter, on a NATS of its own
        figures += proxy_figures(workdir, quick=QUICK)  # the proxy's overhead over a direct fetch
    if not ONLY or "crawl" in ONLY:
        figures += campaign_figures(workdir, quick=QUICK)  # a campaign through the whole stack
    if not ONLY or "lifecycle" in ONLY:
        # the simulated nodes share the machine with the system: their process should cost
        # little, so it runs as the services do (uvloop, tuned collector)
        tune_collector()
        figures += uvloop.run(_lifecycle_figures(workdir, quick=QUICK))
    return figures


def main() -> None:
    workdir = Path(".ccn/bench")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    figures = run(workdir)
    print_table(figures)
    path = write_report(figures, {"cores": os.cpu_count() or 0, "quick": QUICK})
    print(f"\nreport: {path}")
    missed = [f.name for f in figures if f.meets_target is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
