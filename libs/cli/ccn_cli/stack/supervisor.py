"""The services as processes: `python -m <module>`, Settings passed as CCN_* variables, output to
<home>/logs/<name>.log, each in its own session (Ctrl-C in the terminal does not reach it; `ccn`
stops services first, in order)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ccn_cli.stack.errors import StackError
from ccn_cli.stack.probes import http_ready_problem
from ccn_cli.stack.processes import ProcessRecord, log_tail, open_log, record_process, terminate
from ccn_cli.stack.settings_env import env_var, settings_to_env
from ccn_core.settings import Settings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    # the Settings field holding the port where it serves /healthz and /readyz
    port_field: str
    # the Settings field holding the host it binds; None: loopback only
    host_field: str | None = None
    # pages worth printing after `ccn up`: (label, path)
    links: tuple[tuple[str, str], ...] = ()

    def port(self, settings: Settings) -> int:
        return int(getattr(settings, self.port_field))

    @property
    def port_env(self) -> str:
        return env_var(self.port_field)

    def base_url(self, settings: Settings) -> str:
        host = getattr(settings, self.host_field) if self.host_field else "127.0.0.1"
        # a wildcard bind is reached on loopback
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port(settings)}"

    def readyz_url(self, settings: Settings) -> str:
        return f"{self.base_url(settings)}/readyz"


# Started in this order, stopped in reverse.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(name="registry", module="ccn_registry", port_field="registry_health_port", host_field="health_host"),
    ServiceSpec(name="scheduler", module="ccn_scheduler", port_field="scheduler_health_port", host_field="health_host"),
    ServiceSpec(
        name="scheduler-projector",
        module="ccn_scheduler.projector",
        port_field="scheduler_projector_health_port",
        host_field="health_host",
    ),
    ServiceSpec(
        name="edge", module="ccn_edge", port_field="edge_port", host_field="edge_host", links=(("OpenAPI", "/schema"),)
    ),
    ServiceSpec(
        name="analytics",
        module="ccn_analytics",
        port_field="analytics_port",
        host_field="analytics_host",
        links=(("audit trail", "/admin/audit"),),
    ),
    ServiceSpec(
        name="fetch-proxy", module="ccn_fetch_proxy", port_field="fetch_proxy_health_port", host_field="health_host"
    ),
    ServiceSpec(name="crawler", module="ccn_crawler", port_field="crawler_health_port", host_field="health_host"),
    ServiceSpec(
        name="validation", module="ccn_validation", port_field="validation_health_port", host_field="health_host"
    ),
    ServiceSpec(name="merge", module="ccn_merge", port_field="merge_health_port", host_field="health_host"),
)


def service_spec(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(name)


@dataclass(frozen=True)
class StartedService:
    spec: ServiceSpec
    record: ProcessRecord
    process: subprocess.Popen[bytes]


def why_not_runnable(module: str) -> str | None:
    """None when `python -m module` can run; else why not. Looks, without importing the package,
    for the module and (for a package) its __main__, so a service still being written is skipped."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return f"module {module} is not installed"
    locations = spec.submodule_search_locations
    if locations is not None and not any((Path(folder) / "__main__.py").exists() for folder in locations):
        return f"package {module} has no __main__.py yet"
    return None


def service_env(settings: Settings) -> dict[str, str]:
    # The process environment (PATH, locale, PYTHON*) passes through; every CCN_* value comes
    # from Settings alone, so a service sees exactly the configuration `ccn up` used.
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("CCN_")}
    return {**inherited, **settings_to_env(settings), "PYTHONUNBUFFERED": "1"}


def start_service(spec: ServiceSpec, settings: Settings, log: Path) -> StartedService:
    with open_log(log) as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module],
            env=service_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = record_process(spec.name, "service", process.pid, spec.port(settings), spec.base_url(settings), log)
    return StartedService(spec, record, process)


def wait_services_ready(started: list[StartedService], settings: Settings, timeout_s: float) -> None:
    """Until every service's /readyz answers 200; fails fast when one exits."""
    pending = list(started)
    deadline = time.monotonic() + timeout_s
    problems: dict[str, str] = {}
    while pending:
        for service in list(pending):
            code = service.process.poll()
            if code is not None:
                raise StackError(
                    f"service {service.spec.name} exited with code {code} while starting; "
                    f"its log {service.record.log}:\n" + log_tail(service.record.log)
                )
            problem = http_ready_problem(service.spec.readyz_url(settings), timeout_s=1.0)
            if problem is None:
                pending.remove(service)
            else:
                problems[service.spec.name] = problem
        if pending and time.monotonic() > deadline:
            service = pending[0]
            raise StackError(
                f"service {service.spec.name} not ready after {timeout_s:.0f}s "
                f"({service.spec.readyz_url(settings)}: {problems.get(service.spec.name)}); "
                f"its log {service.record.log}:\n" + log_tail(service.record.log)
            )
        if pending:
            time.sleep(0.1)


def stop_services(records: list[ProcessRecord], grace_s: float = 10.0) -> list[ProcessRecord]:
    """SIGTERM to all at once (each drains NATS and finishes its batch), SIGKILL after grace_s.
    Returns the services that had to be killed."""
    return terminate(records, grace_s, whole_group=True)
