"""The fetch proxy's overhead (issue #16): one page of the local fixture web fetched directly with
aiohttp, and the same page fetched through the proxy as a node's fetch reaches it (a
`fetch_page` command over NATS), one at a time, p50 and p99 of each and their difference.

Through the proxy a fetch is every check the service makes (the job's scope, the scheme, the
allow-list, robots.txt from its cache, the domain's shared limits and breaker in NATS KV, the
egress policy on the resolved address), the pinned connection, the body stored by its sha256 in
the object store with a grant for the job, and the fetch record appended to CCN_FETCH. The job
itself is a stand-in: the scheduler is not running here, so a JobAccess answers that a node
holds a crawl job for the page (a fresh job per fetch, so no job runs out of fetches). The
domain is allowed at 600 requests a minute (the most a policy may give); fetches are spaced so
the limit is never what is measured, and a refusal for it (retried) is not counted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import msgspec
import nats

from bench.measure import Figure, figure
from ccn_cli.fixture_web import serve_fixture_web
from ccn_cli.stack.ports import free_port
from ccn_core.commands import CommandClient
from ccn_core.domain.domain_policy import DomainPolicyState, PolicyLimits
from ccn_core.domain_limiter import DomainLimiter
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import RATE_LIMIT_STATE, ensure_streams
from ccn_fetch_proxy.app import start_fetch_proxy
from ccn_fetch_proxy.domain_gate import SharedGate
from ccn_proto.fetch import FetchedPage, FetchOutcome, FetchPage, FetchRefused
from ccn_proto.scheduler import JobView
from tests.support.servers import start_nats

GROUP = "fetch"
SITE = "foundation.localhost"  # robots.txt 404: every path allowed, no crawl-delay
NODE = "bench-node"
# 600 a minute is one each 100 ms: a little more between fetches keeps the limit out of the figure
SPACING_S = 0.11


class _Allowed:
    def policy_for(self, host: str) -> DomainPolicyState | None:
        if host != SITE:
            return None
        limits = PolicyLimits(requests_per_minute=600, requests_per_hour=36_000, max_concurrent=8)
        return DomainPolicyState(policy_id="foundation_localhost", domain=SITE, status="allowed", limits=limits)


class _HeldJobs:
    """Every job is a crawl_domain_page of the bench page, claimed by the bench node."""

    def __init__(self, url: str) -> None:
        self._url = url

    async def view(self, job_id: str, correlation_id: str, *, fresh: bool = False) -> JobView | None:
        return JobView(
            job_id=job_id,
            job_type="crawl_domain_page",
            status="claimed",
            payload={"url": self._url},
            priority=0,
            max_retries=3,
            lease_s=60.0,
            attempt=1,
            holder=NODE,
            lease_until=datetime.now(UTC),
            retry_at=None,
            batch_id=None,
            dataset_source=None,
            dataset_version=None,
            result=None,
            result_checksum=None,
            history=[],
            server_time=datetime.now(UTC),
        )

    async def cancel(self, job_id: str, reason: str, correlation_id: str) -> None:
        raise AssertionError(f"the bench page is never refused by robots.txt: {reason}")


async def _direct(url: str, count: int) -> list[float]:
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            started = time.perf_counter()
            async with http.get(url, headers={"Host": f"{SITE}"}) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(SPACING_S)
    return latencies


async def _through_proxy(client: CommandClient, url: str, count: int) -> list[float]:
    latencies: list[float] = []
    decode_as: type[FetchedPage] = FetchOutcome  # type: ignore[assignment]  # the reply is one of the union
    run = uuid.uuid4().hex[:8]
    for index in range(count):
        request = FetchPage(job_id=f"bench-{run}-{index}", node_id=NODE, url=url)
        while True:
            started = time.perf_counter()
            outcome: FetchOutcome = await client.call("fetch", "fetch_page", request, decode_as, correlation_id="bench")
            elapsed = time.perf_counter() - started
            if isinstance(outcome, FetchRefused) and outcome.retry_after is not None:
                await asyncio.sleep(outcome.retry_after)
                continue
            if not isinstance(outcome, FetchedPage) or outcome.status != 200:
                raise AssertionError(f"the bench page was not fetched: {outcome}")
            latencies.append(elapsed)
            break
        await asyncio.sleep(SPACING_S)
    return latencies


async def _figures(nats_url: str, *, quick: bool) -> list[Figure]:
    count = 60 if quick else 300
    port = free_port()
    url = f"http://{SITE}:{port}/programmes"
    settings = msgspec.structs.replace(
        Settings(),
        nats_url=nats_url,
        fetch_dev_loopback=f"{SITE}:{port}",
        fetch_proxy_health_port=free_port(),
        log_level="warning",
    )
    connection = await nats.connect(nats_url)
    try:
        await ensure_streams(connection.jetstream(), settings)
    finally:
        await connection.close()
    web = await serve_fixture_web(port=port)
    try:
        async with open_runtime("fetch-proxy", settings, needs_postgres=False) as runtime:
            limiter = DomainLimiter(await runtime.js.key_value(RATE_LIMIT_STATE.bucket))
            await start_fetch_proxy(
                runtime, policies=_Allowed(), gate=SharedGate(limiter), jobs=_HeldJobs(url), health=False
            )
            client = CommandClient(runtime.nc, timeout=30.0)
            await _through_proxy(client, url, 5)  # warm: robots.txt cached, connections made
            direct = await _direct(f"http://127.0.0.1:{port}/programmes", count)
            started = time.perf_counter()
            proxied = await _through_proxy(client, url, count)
            seconds = time.perf_counter() - started
    finally:
        await web.cleanup()
    direct_figure = figure("direct local fetch (aiohttp), one at a time", GROUP, count, sum(direct), direct)
    proxy_figure = figure(
        "the same page through the fetch proxy (fetch_page over NATS)", GROUP, count, seconds, proxied
    )
    assert direct_figure.p50_ms is not None
    assert proxy_figure.p50_ms is not None
    assert direct_figure.p99_ms is not None
    assert proxy_figure.p99_ms is not None
    overhead_p50 = proxy_figure.p50_ms - direct_figure.p50_ms
    overhead_p99 = proxy_figure.p99_ms - direct_figure.p99_ms
    verdict = "MET" if overhead_p50 < 5.0 else "NOT MET"
    overhead = figure(
        "fetch proxy overhead (proxy minus direct)",
        GROUP,
        count,
        seconds,
        notes=f"p50 {overhead_p50:.2f} ms, p99 {overhead_p99:.2f} ms (target < 5 ms at p50: {verdict})",
    )
    return [direct_figure, proxy_figure, overhead]


def proxy_figures(workdir: Path, *, quick: bool) -> list[Figure]:
    server = start_nats(workdir / "nats-proxy", free_port())
    try:
        return asyncio.run(_figures(server.url, quick=quick))
    finally:
        server.stop()
