"""python -m ccn_fetch_proxy: the fetch proxy service, with the domain-policy commands and the
allow-list it folds (ccn_fetch_proxy.policy_service), and the politeness every replica shares."""

from __future__ import annotations

from ccn_core.domain_limiter import DomainLimiter
from ccn_core.service import Runtime, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_core.topology import RATE_LIMIT_STATE
from ccn_fetch_proxy.app import start_fetch_proxy
from ccn_fetch_proxy.domain_gate import SharedGate
from ccn_fetch_proxy.policy_service import start_domain_policy


async def _main(runtime: Runtime) -> None:
    book = await start_domain_policy(runtime)
    limiter = DomainLimiter(await runtime.js.key_value(RATE_LIMIT_STATE.bucket))
    await start_fetch_proxy(runtime, policies=book, gate=SharedGate(limiter))


def main() -> None:
    run_process(run_service("fetch-proxy", settings_from_env(), _main, needs_postgres=False))


if __name__ == "__main__":
    main()
