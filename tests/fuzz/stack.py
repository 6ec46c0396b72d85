"""Every service a hostile request can reach, in the test's loop, on a NATS server and a database
of the fuzz test's own: registry, scheduler, scheduler-projector, edge, analytics (each with its
/readyz) and the fetch proxy's domain-policy commands. What one fuzz run poisons (an event a
projection cannot apply) stays in its own stack, so a failure is that run's and no other test's.

The fuzzers send their requests from a worker thread (schemathesis calls are blocking), while
the services answer in this loop: the thread never blocks the loop that serves it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import msgspec
import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ccn_analytics.__main__ import start_analytics
from ccn_cli.stack.ports import free_port
from ccn_core.service import open_runtime, serve_health
from ccn_core.settings import Settings
from ccn_core.topology import CONSUMERS, ConsumerSpec
from ccn_crawler.app import start_crawler
from ccn_edge.app import start_edge
from ccn_fetch_proxy.app import serve_fetch_proxy
from ccn_merge.app import start_merge
from ccn_registry.app import start_registry
from ccn_scheduler.app import start_scheduler
from ccn_scheduler.projector import start_job_projection
from tests.conftest import make_settings
from tests.integration.test_scheduler import FAST, answering
from tests.support.validation import validation_service

READY_TIMEOUT_S = 15.0
POISON_SCAN = 500  # events past a stuck checkpoint searched for the one it died on


@dataclass(frozen=True)
class Stack:
    settings: Settings

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.edge_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.settings.edge_port}/ws"

    @property
    def analytics_url(self) -> str:
        return f"http://{self.settings.analytics_host}:{self.settings.analytics_port}"

    @property
    def readiness_urls(self) -> dict[str, str]:
        """Each service's /readyz, as `ccn status` polls them."""
        return {
            "edge": f"{self.edge_url}/readyz",
            "analytics": f"{self.analytics_url}/readyz",
            "registry": f"http://127.0.0.1:{self.settings.registry_health_port}/readyz",
            "scheduler": f"http://127.0.0.1:{self.settings.scheduler_health_port}/readyz",
            "scheduler-projector": f"http://127.0.0.1:{self.settings.scheduler_projector_health_port}/readyz",
        }

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}


@contextlib.asynccontextmanager
async def running_stack(nats_url: str, database_url: str, home: Path) -> AsyncIterator[Stack]:
    settings = msgspec.structs.replace(
        make_settings(nats_url, database_url, home),
        scheduler_health_port=free_port(),
        scheduler_projector_health_port=free_port(),
        fetch_proxy_health_port=free_port(),
    )
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_runtime("registry", settings))
        await start_registry(registry, health=True)
        scheduler = await stack.enter_async_context(open_runtime("scheduler", settings))
        await start_scheduler(scheduler, health=True, options=FAST, project=False)
        projector = await stack.enter_async_context(open_runtime("scheduler-projector", settings))
        await start_job_projection(projector, health=False, idle_wait_s=FAST.projection_idle_wait_s)
        await serve_health(projector, "127.0.0.1", settings.scheduler_projector_health_port)
        analytics = await stack.enter_async_context(open_runtime("analytics", settings))
        await start_analytics(analytics)
        # the fetch proxy: the allow-list commands of /admin/domains and the fetches of
        # POST /compute/jobs/{id}/fetch (every one of a fuzz run refused: its nodes hold no job)
        fetch_proxy = await stack.enter_async_context(open_runtime("fetch-proxy", settings, needs_postgres=False))
        await serve_fetch_proxy(fetch_proxy)
        crawler = await stack.enter_async_context(open_runtime("crawler", settings, needs_postgres=False))
        await start_crawler(crawler, health=False)
        await stack.enter_async_context(validation_service(settings))
        merge = await stack.enter_async_context(open_runtime("merge", settings, needs_postgres=False))
        await start_merge(merge, health=False)
        edge = await stack.enter_async_context(open_runtime("edge", settings))
        start_edge(edge)
        await answering(settings.effective_nats_url)
        running = Stack(settings)
        await wait_until_ready(running)
        yield running


async def readiness(stack: Stack) -> dict[str, int | str]:
    """Each service's /readyz status (or why it did not answer)."""
    return {service: status for service, (status, _) in (await readiness_reports(stack)).items()}


async def readiness_reports(stack: Stack) -> dict[str, tuple[int | str, str]]:
    """Each service's /readyz status and body."""
    reports: dict[str, tuple[int | str, str]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for service, url in stack.readiness_urls.items():
            try:
                async with http.get(url) as response:
                    reports[service] = (response.status, await response.text())
            except (aiohttp.ClientError, TimeoutError) as exc:
                reports[service] = (type(exc).__name__, "")
    return reports


async def wait_until_ready(stack: Stack) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while set((await readiness(stack)).values()) != {200}:
            await asyncio.sleep(0.05)


async def settled_readiness(stack: Stack, timeout_s: float = 6.0) -> dict[str, str]:
    """The services that are not ready, each with its /readyz body and the event each stuck
    consumer could not get past, once every projection and reactor has taken in the end of its
    stream (or `timeout_s` has passed, which is what a consumer that died on an event looks
    like): an event that kills a read model does so only when its projection gets to it, after
    the request that wrote it was answered. Empty when all is well."""
    nc = await nats.connect(stack.settings.effective_nats_url)
    try:
        js = nc.jetstream()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while await _stuck_consumers(js):
                    await asyncio.sleep(0.1)
        stuck = await _stuck_consumers(js)
        poison = [await _first_unapplied(js, stack, spec) for spec in stuck]
    finally:
        await nc.drain()
    unready = {
        service: f"/readyz {status} {body[:160]}"
        for service, (status, body) in (await readiness_reports(stack)).items()
        if status != 200
    }
    if unready and poison:
        unready["(stuck consumers)"] = "; ".join(poison)
    return unready


async def _stuck_consumers(js: JetStreamContext) -> list[ConsumerSpec]:
    stuck = []
    for spec in CONSUMERS:
        try:
            info = await js.consumer_info(spec.stream, spec.durable)
        except NotFoundError:
            stuck.append(spec)  # being (re)created by its leader at its checkpoint
            continue
        if info.num_pending or info.num_ack_pending:
            stuck.append(spec)
    return stuck


async def _first_unapplied(js: JetStreamContext, stack: Stack, spec: ConsumerSpec) -> str:
    """Where a stuck projection stopped: the first event past its checkpoint that carries text
    PostgreSQL cannot hold (NUL, a lone surrogate), or else the first past it."""
    conn = await asyncpg.connect(stack.settings.effective_database_url)
    try:
        done = await conn.fetchval("SELECT last_seq FROM projection_checkpoints WHERE projection = $1", spec.durable)
    finally:
        await conn.close()
    if done is None:
        return f"{spec.durable}: no checkpoint"
    first = None
    for seq in range(done + 1, done + 1 + POISON_SCAN):
        try:
            message = await js.get_msg(spec.stream, seq)
        except NotFoundError:
            break
        data: bytes = message.data or b""
        first = first or f"{message.subject}: {data[-200:]!r}"
        at = max(data.find(b"\\u0000"), data.lower().find(b"\\ud8"), data.lower().find(b"\\udc"))
        if at >= 0:
            excerpt = data[max(0, at - 120) : at + 40]
            return f"{spec.durable} stuck past {spec.stream} #{done}: #{seq} {message.subject}: …{excerpt!r}…"
    return f"{spec.durable} stuck past {spec.stream} #{done}: next {first}"
