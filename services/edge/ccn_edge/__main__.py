"""python -m ccn_edge: the public gateway for nodes."""

from __future__ import annotations

from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_edge.app import start_edge


async def _start(runtime: Runtime) -> None:
    start_edge(runtime)


def main() -> None:
    settings = settings_from_env()
    # no PostgreSQL: the edge reads and writes nothing there, so its readiness is NATS alone and
    # its NetworkPolicy lets it reach NATS only
    run_process(run_service("edge", settings, _start, needs_postgres=False))


if __name__ == "__main__":
    main()
