"""Wires the registry: node repository, command handlers and its projections."""

from __future__ import annotations

from ccn_core.aggregate import AggregateRepository
from ccn_core.commands import CommandServer
from ccn_core.consent import consent_catalogue
from ccn_core.domain.node import NodeDecider
from ccn_core.projection import Projection, ProjectionRunner
from ccn_core.service import Runtime, serve_health
from ccn_core.topology import NODES
from ccn_proto.nodes import NodeEvent
from ccn_registry.governance_handlers import GovernanceHandlers
from ccn_registry.handlers import RegistryHandlers
from ccn_registry.observer import ObserverOptions, start_observer
from ccn_registry.read_model import NodeReadModel, SessionLastSeen
from ccn_registry.telemetry_projection import NodeTelemetry


async def start_registry(
    runtime: Runtime, *, health: bool = True, observe: bool = True, observer: ObserverOptions | None = None
) -> RegistryHandlers:
    """`observe`: run for the governance observer (one replica at a time is it); tests that
    share servers across many tests leave it out, so no test's nodes are judged by another's."""
    assert runtime.pool is not None, "the registry projects into Postgres"
    settings = runtime.settings
    repository = AggregateRepository(
        runtime.store,
        NodeDecider(consent_catalogue()),
        NodeEvent,
        stream=NODES.name,
        deadline_s=settings.command_timeout_s,
    )
    handlers = RegistryHandlers(repository, runtime.store, settings.token_secret)
    # a burst of nodes saying hello waits its turn, up to a bound; past it, they are told to retry
    server = CommandServer(runtime.nc, "registry", max_waiting=4096)
    handlers.register_all(server)
    GovernanceHandlers(repository).register_all(server)
    await server.start()
    runtime.on_stop(server.stop)
    projections: tuple[Projection, ...] = (
        NodeReadModel(),
        SessionLastSeen(),
        NodeTelemetry(settings.telemetry_max_age_s),
    )
    for projection in projections:
        runner = ProjectionRunner(runtime.js, runtime.pool, projection)
        runtime.spawn(runner.run(), name=projection.spec.durable)

        async def stop_runner(runner: ProjectionRunner = runner) -> None:
            runner.stop()

        runtime.on_stop(stop_runner)
    runtime.watch_lag(projection.spec for projection in projections)
    if observe:
        await start_observer(runtime, observer)
    if health:
        await serve_health(runtime, settings.health_host, settings.registry_health_port)
    return handlers
