"""python -m ccn_validation: the validation service."""

from __future__ import annotations

from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_validation.app import start_validation


async def _main(runtime: Runtime) -> None:
    await start_validation(runtime)


def main() -> None:
    run_process(run_service("validation", settings_from_env(), _main, needs_postgres=False))


if __name__ == "__main__":
    main()
