"""Every service a hostile request can reach, in the test's loop, on a NATS server and a database
of the fuzz test's own: registry, scheduler, scheduler-projector, edge and analytics, each with
its /readyz. What one fuzz run poisons (an event a projection cannot apply) stays in its own
stack, so a failure is that run's and no other test's.

The fuzzers send their requests from a worker thread (schemathesis calls are blocking), while
the services answer in this loop: the thread never blocks the loop that serves it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ccn_analytics.__main__ import start_analytics
from ccn_cli.stack.ports import free_port
from ccn_core.service import open_runtime, serve_health
from ccn_core.settings import Settings
from ccn_core.topology import CONSUMERS
from ccn_edge.app import start_edge
from ccn_registry.app import start_registry
from ccn_scheduler.app import start_scheduler
from ccn_scheduler.projector import start_job_projection
from tests.conftest import make_settings
from tests.integration.test_scheduler import FAST, answering

READY_TIMEOUT_S = 15.0


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
        edge = await stack.enter_async_context(open_runtime("edge", settings))
        start_edge(edge)
        await answering(settings.effective_nats_url)
        running = Stack(settings)
        await wait_until_ready(running)
        yield running


async def readiness(stack: Stack) -> dict[str, int | str]:
    """Each service's /readyz status (or why it did not answer)."""
    statuses: dict[str, int | str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for service, url in stack.readiness_urls.items():
            try:
                async with http.get(url) as response:
                    statuses[service] = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[service] = type(exc).__name__
    return statuses


async def wait_until_ready(stack: Stack) -> None:
    async with asyncio.timeout(READY_TIMEOUT_S):
        while set((await readiness(stack)).values()) != {200}:
            await asyncio.sleep(0.05)


async def settled_readiness(stack: Stack, timeout_s: float = 10.0) -> dict[str, int | str]:
    """Readiness once every projection and reactor has taken in the end of its stream (or
    `timeout_s` has passed, which is what a consumer that died on an event looks like): an event
    that kills a read model does so only when its projection gets to it, after the request that
    wrote it was answered."""
    nc = await nats.connect(stack.settings.effective_nats_url)
    try:
        js = nc.jetstream()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not await _consumers_caught_up(js):
                    await asyncio.sleep(0.1)
    finally:
        await nc.drain()
    return await readiness(stack)


async def _consumers_caught_up(js: JetStreamContext) -> bool:
    for spec in CONSUMERS:
        try:
            info = await js.consumer_info(spec.stream, spec.durable)
        except NotFoundError:
            return False  # being (re)created by its leader at its checkpoint
        if info.num_pending or info.num_ack_pending:
            return False
    return True
