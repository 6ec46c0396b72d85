"""python -m ccn_registry: the node registry service."""

from __future__ import annotations

from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_registry.app import start_registry


async def _main(runtime: Runtime) -> None:
    await start_registry(runtime, observe=bool(runtime.settings.registry_governance_observer))


def main() -> None:
    run_process(run_service("registry", settings_from_env(), _main))


if __name__ == "__main__":
    main()
