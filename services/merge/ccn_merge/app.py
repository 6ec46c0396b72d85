"""Wires the merge service: every dataset folded into its writer, the reactor that turns final
job results into merge proposals, and the commands (review queue, versions, diffs, explanations,
retraction)."""

from __future__ import annotations

from ccn_core.commands import CommandClient, CommandServer
from ccn_core.reactor import Reactor
from ccn_core.service import Runtime, serve_health
from ccn_core.topology import MERGE_PROPOSALS
from ccn_merge.merge_service import MergeService
from ccn_merge.writer import DatasetWriter
from ccn_proto.jobs import JobCompleted
from ccn_proto.merge import SERVICE


async def start_merge(runtime: Runtime, *, health: bool = True) -> MergeService:
    settings = runtime.settings

    def spawn_writer(writer: DatasetWriter) -> None:
        runtime.spawn(writer.run(runtime.stopping), name=f"dataset-writer-{writer.name}")

    service = MergeService(
        runtime.store,
        runtime.js,
        CommandClient(runtime.nc, timeout=settings.command_timeout_s),
        spawn_writer=spawn_writer,
    )
    await service.start()
    server = CommandServer(runtime.nc, SERVICE)
    service.register_all(server)
    await server.start()
    runtime.on_stop(server.stop)

    reactor = Reactor(runtime.nc, runtime.js, MERGE_PROPOSALS, JobCompleted, service.on_job_completed)
    await reactor.ensure_consumer()
    runtime.spawn(reactor.run(), name=MERGE_PROPOSALS.durable)

    async def stop_reactor() -> None:
        reactor.stop()

    runtime.on_stop(stop_reactor)
    runtime.watch_lag([MERGE_PROPOSALS])
    if health:
        await serve_health(runtime, settings.health_host, settings.merge_health_port)
    return service
