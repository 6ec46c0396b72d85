"""python -m ccn_scheduler: the scheduler service."""

from __future__ import annotations

import asyncio

from ccn_core.service import Runtime, run_service
from ccn_core.settings import settings_from_env
from ccn_scheduler.app import start_scheduler


async def _main(runtime: Runtime) -> None:
    await start_scheduler(runtime)


def main() -> None:
    asyncio.run(run_service("scheduler", settings_from_env(), _main))


if __name__ == "__main__":
    main()
