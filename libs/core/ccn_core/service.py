"""One lifespan for every service: connect, check the topology is there, serve, and on SIGTERM
stop taking work (/readyz answers 503 from then on), finish what is in hand within the
settings' shutdown grace, drain NATS and exit.

A service's `main` wires its parts to a Runtime and registers how to stop them; readiness is
NATS connected plus Postgres answering, served at /readyz (liveness at /healthz).
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvloop
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from structlog.typing import FilteringBoundLogger

from ccn_core.eventstore import EventStore
from ccn_core.logging import configure_logging, get_logger
from ccn_core.metrics import exposition, sample_consumer_lag
from ccn_core.settings import Settings
from ccn_core.stopping import cancel_until_done
from ccn_core.topology import ConsumerSpec, TopologyMissing, require_topology
from ccn_core.tracing import configure_tracing

StopHook = Callable[[], Awaitable[None]]


class Runtime:
    def __init__(self, name: str, settings: Settings, nc: NATS, pool: asyncpg.Pool | None) -> None:
        self.name = name
        self.settings = settings
        self.replica = settings.replica(name)
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.pool = pool
        self.store = EventStore(nc, timeout=settings.command_timeout_s)
        self.log = get_logger(f"ccn.{name}")
        self.stopping = asyncio.Event()
        self._stop_hooks: list[StopHook] = []
        self._tasks: list[asyncio.Task[None]] = []

    def watch_lag(self, specs: Iterable[ConsumerSpec]) -> None:
        """Sample these durable consumers' lag into ccn_consumer_pending_messages until stopping."""
        self.spawn(sample_consumer_lag(self.js, list(specs), self.stopping), name="consumer-lag")

    def on_stop(self, hook: StopHook) -> None:
        """Hooks run in reverse order of registration: last started, first stopped."""
        self._stop_hooks.append(hook)

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        """A long-running part (a projection, a reactor); its crash stops the service, loudly."""

        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("background task crashed; stopping the service", task=name)
                self.stopping.set()

        self._tasks.append(asyncio.create_task(guarded(), name=name))

    async def ready(self) -> tuple[bool, dict[str, str]]:
        checks: dict[str, str] = {"nats": "ok" if self.nc.is_connected else "disconnected"}
        if self.pool is not None:
            try:
                async with asyncio.timeout(2):
                    await self.pool.fetchval("SELECT 1")
                checks["postgres"] = "ok"
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                checks["postgres"] = f"unavailable: {type(exc).__name__}"
        if self.stopping.is_set():
            checks["service"] = "stopping"
        return all(value == "ok" for value in checks.values()), checks

    async def shutdown(self) -> None:
        for hook in reversed(self._stop_hooks):
            try:
                await hook()
            except Exception:
                self.log.exception("stop hook failed")
        pending = [task for task in self._tasks if not task.done()]
        if pending:
            # parts were told to stop; let each finish its batch before anything is cancelled
            # (the pod's terminationGracePeriodSeconds leaves room for this and the HTTP grace)
            _, still_running = await asyncio.wait(pending, timeout=self.settings.shutdown_grace_s)
            for task in still_running:
                self.log.warning("part did not stop in time; cancelling it", task=task.get_name())
            await cancel_until_done(still_running)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()


async def connect_nats(settings: Settings, name: str) -> NATS:
    log = get_logger("ccn.nats")

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", error=str(exc))

    async def on_disconnected() -> None:
        # nats-py calls this on a deliberate close too (its status already CLOSED): no warning then
        if not client.is_closed:
            log.warning("nats disconnected; reconnecting")

    async def on_reconnected() -> None:
        log.info("nats reconnected")

    client = NATS()
    await client.connect(
        settings.effective_nats_url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # nats-py annotates int; it is a float of seconds
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )
    return client


# Each projection's leader holds a connection for its advisory lock as long as it leads, so a
# service's pool must exceed its projections (analytics runs eleven) with room for their batches
# and its HTTP reads; the pool only grows to this when asked.
async def create_pool(settings: Settings, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.effective_database_url, min_size=min_size, max_size=max_size, command_timeout=30
    )


def health_app(runtime: Runtime) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "service": runtime.name, "replica": runtime.replica})

    async def readyz(_: web.Request) -> web.Response:
        ok, checks = await runtime.ready()
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        body, content_type = exposition()
        # aiohttp wants the charset apart from the type
        media_type, _sep, charset = content_type.partition("; charset=")
        return web.Response(body=body, content_type=media_type, charset=charset or None)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve_health(runtime: Runtime, host: str, port: int) -> None:
    """For services without HTTP of their own: /healthz and /readyz for probes and `ccn status`."""
    runner = web.AppRunner(health_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    runtime.on_stop(runner.cleanup)


@asynccontextmanager
async def open_runtime(name: str, settings: Settings, *, needs_postgres: bool = True) -> AsyncIterator[Runtime]:
    """Connect, check that the streams and buckets exist (TopologyMissing names what is not:
    `ccn topology apply` makes them, never a service), and on exit stop every part in reverse
    order and drain. `run_service` is this plus signals; tests use it to run a service inside
    their own loop."""
    nc = await connect_nats(settings, settings.replica(name))
    pool: asyncpg.Pool | None = None
    try:
        pool = await create_pool(settings) if needs_postgres else None
        runtime = Runtime(name, settings, nc, pool)
        await require_topology(runtime.js)
        await runtime.store.start()
        try:
            yield runtime
        finally:
            runtime.stopping.set()
            await runtime.shutdown()
    finally:
        if not nc.is_closed:
            await nc.drain()
        if pool is not None:
            await pool.close()


def run_process(main: Coroutine[Any, Any, None]) -> None:
    """A service process's main coroutine, run to its end on uvloop: the services spend most
    of their time in the event loop and its socket I/O (small NATS messages, WebSocket
    frames), which libuv does at a fraction of asyncio's pure-Python cost."""
    tune_collector()
    uvloop.run(main)


def tune_collector() -> None:
    """Fewer, larger young-generation collections. A service allocates many short-lived
    messages and structs per second; at Python's default (a collection every 700 allocations)
    the collector took a fifth of the scheduler's time (docs/perf/job-lifecycle.md)."""
    gc.set_threshold(50_000, 50, 100)


async def run_service(
    name: str,
    settings: Settings,
    main: Callable[[Runtime], Awaitable[None]],
    *,
    needs_postgres: bool = True,
) -> None:
    configure_logging(name, level=settings.log_level, fmt=settings.log_format, replica=settings.replica(name))
    tracing = configure_tracing(name, settings.otel_exporter, otlp_endpoint=settings.otel_endpoint)
    log = get_logger(f"ccn.{name}")
    try:
        await _serve(name, settings, main, needs_postgres=needs_postgres, log=log)
    except TopologyMissing as exc:
        # a one-line reason, not a traceback: the fix is a command, not a code change
        log.error("topology missing; not starting", missing=exc.missing, fix="ccn topology apply")
        raise SystemExit(3) from None
    finally:
        # the spans still batched go to the collector before the process ends (bounded by its timeout)
        await asyncio.to_thread(tracing.shutdown)
    log.info("service stopped")


async def _serve(
    name: str,
    settings: Settings,
    main: Callable[[Runtime], Awaitable[None]],
    *,
    needs_postgres: bool,
    log: FilteringBoundLogger,
) -> None:
    async with open_runtime(name, settings, needs_postgres=needs_postgres) as runtime:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runtime.stopping.set)
        await main(runtime)
        # what exists once started (modules, apps, connections) lives as long as the process:
        # out of the collector's sight, so full collections walk only what came since
        gc.freeze()
        log.info("service started", nats=settings.effective_nats_url)
        await runtime.stopping.wait()
        log.info("stopping: no new work; finishing what is in hand")
