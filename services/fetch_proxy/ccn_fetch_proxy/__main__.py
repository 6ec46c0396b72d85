"""python -m ccn_fetch_proxy: the fetch proxy service, with the domain-policy commands and the
allow-list it folds (ccn_fetch_proxy.policy_service), and the politeness every replica shares
(ccn_fetch_proxy.app.serve_fetch_proxy)."""

from __future__ import annotations

from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_fetch_proxy.app import serve_fetch_proxy


async def _main(runtime: Runtime) -> None:
    await serve_fetch_proxy(runtime)


def main() -> None:
    run_process(run_service("fetch-proxy", settings_from_env(), _main, needs_postgres=False))


if __name__ == "__main__":
    main()
