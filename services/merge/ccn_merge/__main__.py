"""python -m ccn_merge: the merge service (datasets: merges, reviews, versions, retractions)."""

from __future__ import annotations

from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_merge.app import start_merge


async def _main(runtime: Runtime) -> None:
    await start_merge(runtime)


def main() -> None:
    run_process(run_service("merge", settings_from_env(), _main, needs_postgres=False))


if __name__ == "__main__":
    main()
