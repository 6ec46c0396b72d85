"""python -m ccn_scheduler: the scheduler service."""

from __future__ import annotations

from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_scheduler.app import start_scheduler


async def _main(runtime: Runtime) -> None:
    # the job read model has a process of its own: python -m ccn_scheduler.projector
    await start_scheduler(runtime, project=False)


def main() -> None:
    run_process(run_service("scheduler", settings_from_env(), _main))


if __name__ == "__main__":
    main()
