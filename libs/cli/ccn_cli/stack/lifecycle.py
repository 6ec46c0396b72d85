"""Starting and stopping the whole stack, in order, recording each process as it starts.

Start: NATS, Postgres (each only when no external URL is set), migrations, streams, services.
Stop: services (SIGTERM, grace period), then NATS, then Postgres (`pg_ctl stop -m fast`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ccn_cli.stack.backends import declare_streams, migrate
from ccn_cli.stack.blocking import run_blocking
from ccn_cli.stack.nats_server import (
    NatsServerSpec,
    find_nats_process,
    monitor_port_for,
    start_nats_server,
    stop_nats_process,
)
from ccn_cli.stack.ports import require_free_port
from ccn_cli.stack.postgres import PostgresSpec, find_postmaster, start_postgres_server, stop_postgres_server
from ccn_cli.stack.processes import ProcessRecord, is_alive, live_process, record_process, terminate
from ccn_cli.stack.run_state import RunState, clear_state, save_state
from ccn_cli.stack.supervisor import (
    SERVICES,
    ServiceSpec,
    StartedService,
    start_service,
    stop_services,
    wait_services_ready,
    why_not_runnable,
)
from ccn_core.settings import Settings

Report = Callable[[str], None]
NODE_GRACE_S = 15.0


def logs_dir(home: Path) -> Path:
    return home / "logs"


def nats_spec(settings: Settings) -> NatsServerSpec:
    return NatsServerSpec(
        root=settings.home / "nats",
        port=settings.nats_port,
        log=logs_dir(settings.home) / "nats.log",
        monitor_port=monitor_port_for(settings.nats_port),
        sync_interval=settings.nats_sync_interval,
    )


def postgres_spec(settings: Settings) -> PostgresSpec:
    return PostgresSpec(
        root=settings.home / "postgres", port=settings.postgres_port, log=logs_dir(settings.home) / "postgres.log"
    )


@dataclass(frozen=True)
class ServicePlan:
    to_start: list[ServiceSpec]
    skipped: list[tuple[ServiceSpec, str]]


def plan_services() -> ServicePlan:
    to_start: list[ServiceSpec] = []
    skipped: list[tuple[ServiceSpec, str]] = []
    for spec in SERVICES:
        reason = why_not_runnable(spec.module)
        if reason is None:
            to_start.append(spec)
        else:
            skipped.append((spec, reason))
    return ServicePlan(to_start, skipped)


def check_ports(settings: Settings, services: list[ServiceSpec]) -> None:
    """Every port this start would bind, checked before anything starts."""
    if settings.embedded_nats:
        require_free_port(settings.nats_port, "NATS", "CCN_NATS_PORT")
        require_free_port(monitor_port_for(settings.nats_port), "NATS monitoring, CCN_NATS_PORT+4000", "CCN_NATS_PORT")
    if settings.embedded_postgres:
        require_free_port(settings.postgres_port, "PostgreSQL", "CCN_POSTGRES_PORT")
    for spec in services:
        require_free_port(spec.port(settings), spec.name, spec.port_env)


def start_stack(settings: Settings, services: list[ServiceSpec], report: Report, *, ready_timeout_s: float) -> RunState:
    """Start everything; on any failure (Ctrl-C included) stop what was started and re-raise."""
    home = settings.home
    state = RunState(
        home=str(home),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        nats_url=settings.effective_nats_url,
        database_url=settings.effective_database_url,
    )

    def remember(record: ProcessRecord) -> None:
        state.processes.append(record)
        save_state(home, state)

    save_state(home, state)
    try:
        if settings.embedded_nats:
            nats = start_nats_server(nats_spec(settings))
            remember(record_process("nats", "nats", nats.pid, settings.nats_port, nats.url, nats.spec.log))
            report(f"NATS (JetStream) started, pid {nats.pid}, {nats.url}")
        if settings.embedded_postgres:
            postgres = start_postgres_server(postgres_spec(settings))
            remember(
                record_process(
                    "postgres", "postgres", postgres.pid, settings.postgres_port, postgres.dsn(), postgres.spec.log
                )
            )
            report(f"PostgreSQL started, pid {postgres.pid}, port {settings.postgres_port}")
        applied = run_blocking(lambda: migrate(settings.effective_database_url))
        report(f"migrations applied: {', '.join(applied)}" if applied else "migrations: up to date")
        created = run_blocking(lambda: declare_streams(settings.effective_nats_url, settings))
        report(f"streams created: {', '.join(created)}" if created else "streams: up to date")
        started: list[StartedService] = []
        for spec in services:
            service = start_service(spec, settings, logs_dir(home) / f"{spec.name}.log")
            started.append(service)
            remember(service.record)
        wait_services_ready(started, settings, ready_timeout_s)
        for service in started:
            report(f"{service.spec.name} ready, pid {service.record.pid}, {service.spec.base_url(settings)}")
    except BaseException:
        report("start failed; stopping what was started")
        stop_stack(state, report)
        raise
    return state


def stop_stack(state: RunState, report: Report) -> list[str]:
    """Stop every recorded process in reverse order, plus any server of this home still running
    without a record (a `ccn up` that crashed between starting and recording it). Idempotent;
    returns what it stopped."""
    home = Path(state.home)
    stopped: list[str] = []
    # nodes first: they hand back their jobs and say bye to an edge that is still there
    nodes = [record for record in state.processes if record.kind == "node" and is_alive(record)]
    if nodes:
        for record in terminate(nodes, NODE_GRACE_S):
            report(f"{record.name} did not stop within {NODE_GRACE_S:.0f}s; killed")
        stopped += [record.name for record in nodes]
        report(f"nodes stopped: {', '.join(record.name for record in nodes)}")
    demo = [record for record in state.processes if record.kind == "demo" and is_alive(record)]
    if demo:
        for record in terminate(demo, NODE_GRACE_S):
            report(f"{record.name} did not stop within {NODE_GRACE_S:.0f}s; killed")
        stopped += [record.name for record in demo]
        report(f"demo processes stopped: {', '.join(record.name for record in demo)}")
    services = [record for record in reversed(state.processes) if record.kind == "service" and is_alive(record)]
    if services:
        for record in stop_services(services):
            report(f"{record.name} did not stop within the grace period; killed")
        stopped += [record.name for record in services]
        report(f"services stopped: {', '.join(record.name for record in services)}")
    recorded_nats = [live_process(record) for record in state.processes if record.kind == "nats"]
    for proc in {p.pid: p for p in (*recorded_nats, find_nats_process(home / "nats")) if p is not None}.values():
        stop_nats_process(proc)
        stopped.append("nats")
        report(f"NATS stopped (pid {proc.pid})")
    data_dir = home / "postgres" / "data"
    postmaster = find_postmaster(data_dir)
    if postmaster is not None:
        stop_postgres_server(data_dir)
        stopped.append("postgres")
        report(f"PostgreSQL stopped (pid {postmaster.pid})")
    clear_state(home)
    return stopped
