"""How long a standby scheduler takes to become the claim owner: it replays CCN_JOBS into its
board (ADR 0016). Measured on the stream the lifecycle run left, with the live jobs it holds."""

from __future__ import annotations

import nats

from bench.measure import Figure, figure
from ccn_core.aggregate import AggregateRepository
from ccn_core.domain.job import JobDecider
from ccn_core.eventstore import EventStore
from ccn_core.settings import Settings
from ccn_core.topology import JOBS
from ccn_proto.jobs import JobEvent
from ccn_scheduler.board import ClaimBoard
from ccn_scheduler.job_service import JobRepository
from ccn_scheduler.owner import replay_jobs


async def takeover_replay(nats_url: str) -> Figure:
    nc = await nats.connect(nats_url)
    store = EventStore(nc, timeout=30.0)
    await store.start()
    try:
        decider = JobDecider()
        repository: JobRepository = AggregateRepository(store, decider, JobEvent, stream=JOBS.name)
        board = ClaimBoard(max_live=Settings().scheduler_max_live_jobs)
        stats = await replay_jobs(store, nc.jetstream(), decider, repository, board)
    finally:
        await store.close()
        await nc.close()
    return figure(
        "claim owner takeover: replay of CCN_JOBS",
        "job lifecycle",
        stats.events,
        stats.seconds,
        notes=f"{stats.events:,} events read and folded in {stats.seconds:.2f} s, {stats.live_jobs:,} live jobs "
        f"on the board; ops/s = events replayed per second (a standby's time to own the claims, plus the "
        f"owner key's TTL after a crash)",
    )
