"""Wires the scheduler: job repository, ready queue, claim ledger, command handlers, the lease
keeper, the job archiver and the reactors; and, when asked, the read-model projection, which a
deployed scheduler leaves to its own process (ccn_scheduler.projector)."""

from __future__ import annotations

import msgspec

from ccn_core.aggregate import AggregateRepository
from ccn_core.commands import CommandServer
from ccn_core.domain.job import JobDecider
from ccn_core.reactor import Reactor
from ccn_core.retry_policy import RetryPolicy
from ccn_core.service import Runtime, serve_health
from ccn_core.topology import JOBS, NODE_RELEASE, READY_BANDS, READY_FEED, ready_consumer
from ccn_proto.jobs import JobEvent
from ccn_proto.nodes import NodeEvent
from ccn_scheduler.claims import Claimer
from ccn_scheduler.cleanup import ArchivePolicy, JobArchiver
from ccn_scheduler.handlers import SchedulerHandlers
from ccn_scheduler.holdings import NodeHoldings
from ccn_scheduler.job_service import JobRepository, JobService
from ccn_scheduler.lease_keeper import LeaseKeeper
from ccn_scheduler.payloads import PayloadTypes, job_type_payloads
from ccn_scheduler.projector import start_job_projection
from ccn_scheduler.reactors import NodeRelease, ReadyFeed
from ccn_scheduler.ready_queue import ReadyQueue


class SchedulerOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Tunables with production defaults; tests shorten them."""

    retry_policy: RetryPolicy = RetryPolicy()
    lease_scan_interval_s: float = 1.0
    archive_interval_s: float = 60.0  # how often the archiver leader moves finished jobs out
    projection_idle_wait_s: float = 0.5


async def start_scheduler(
    runtime: Runtime,
    *,
    health: bool = True,
    payload_types: PayloadTypes | None = None,
    options: SchedulerOptions | None = None,
    project: bool = True,
) -> SchedulerHandlers:
    assert runtime.pool is not None, "the scheduler projects into Postgres and scans it for expired leases"
    settings = runtime.settings
    options = options or SchedulerOptions()
    types = job_type_payloads() if payload_types is None else payload_types
    repository: JobRepository = AggregateRepository(
        runtime.store,
        JobDecider(options.retry_policy),
        JobEvent,
        stream=JOBS.name,
        deadline_s=settings.command_timeout_s,
    )
    jobs = JobService(repository)
    ready = ReadyQueue(runtime.nc, runtime.js, runtime.store, dedupe_window_s=settings.duplicate_window_s)
    await ready.ensure_consumers(types)
    runtime.on_stop(ready.close)
    holdings = NodeHoldings(runtime.js, runtime.store, jobs.state)
    claimer = Claimer(jobs, ready, holdings, replica=runtime.replica, max_reply_bytes=runtime.nc.max_payload)
    handlers = SchedulerHandlers(
        jobs, ready, claimer, types, settings.token_secret, store=runtime.store, replica=runtime.replica
    )

    keeper = LeaseKeeper(runtime.pool, jobs, replica=runtime.replica, interval_s=options.lease_scan_interval_s)
    runtime.spawn(keeper.run(), name="scheduler_lease_keeper")
    archiver = JobArchiver(
        runtime.pool,
        ArchivePolicy(retention_s=settings.job_retention_s),
        replica=runtime.replica,
        interval_s=options.archive_interval_s,
    )
    runtime.spawn(archiver.run(), name="scheduler_job_archiver")
    feed = ReadyFeed(runtime.store, ready, jobs, dedupe_window_s=settings.duplicate_window_s)
    release = NodeRelease(jobs, holdings, runtime.pool, runtime.store, replica=runtime.replica)
    reactors = {
        READY_FEED.durable: Reactor(
            runtime.nc, runtime.js, READY_FEED, JobEvent, feed.handle, handled_already=feed.put_already
        ),
        NODE_RELEASE.durable: Reactor(runtime.nc, runtime.js, NODE_RELEASE, NodeEvent, release.handle),
    }
    for name, reactor in reactors.items():
        runtime.spawn(reactor.run(), name=name)
    # the reactors' lag, and the claimable entries of each ready queue (what claims have yet to take)
    runtime.watch_lag([READY_FEED, NODE_RELEASE, *(ready_consumer(t, b) for t in types for b in READY_BANDS)])
    if project:
        await start_job_projection(runtime, health=False, idle_wait_s=options.projection_idle_wait_s)

    async def stop_background() -> None:
        keeper.stop()
        archiver.stop()
        for reactor in reactors.values():
            reactor.stop()

    runtime.on_stop(stop_background)

    # a claim may wait for work (wait_s): waiting claims hold a slot each, so there are many
    server = CommandServer(runtime.nc, "scheduler", max_concurrency=2048)
    handlers.register_all(server)
    await server.start()
    runtime.on_stop(server.stop)
    await runtime.nc.flush()  # the command subscription is on the server before we say ready
    if health:
        await serve_health(runtime, settings.health_host, settings.scheduler_health_port)
    return handlers
