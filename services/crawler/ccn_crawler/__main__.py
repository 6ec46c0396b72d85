"""python -m ccn_crawler: the crawl-campaign service."""

from __future__ import annotations

from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_crawler.app import start_crawler


async def _main(runtime: Runtime) -> None:
    await start_crawler(runtime)


def main() -> None:
    run_process(run_service("crawler", settings_from_env(), _main, needs_postgres=False))


if __name__ == "__main__":
    main()
