"""Uvicorn under the service runtime: the runtime owns signals and the stop order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from litestar import Litestar

from ccn_core.service import Runtime

GRACE_S = 5


class _Server(uvicorn.Server):
    """The service lifespan owns SIGTERM/SIGINT; uvicorn would otherwise take them over and
    re-raise them after it stops, racing the service's own orderly stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_http(
    runtime: Runtime, app: Litestar, *, host: str, port: int, grace_s: int = GRACE_S, ws_max_bytes: int | None = None
) -> None:
    """Serve `app` until the runtime stops; then stop accepting, give requests in flight
    grace_s to finish, and close. A port that cannot be bound crashes the service loudly."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # ccn_web.http writes one JSON line per request instead
        timeout_graceful_shutdown=grace_s,
        # past this the server drops a WebSocket outright; below it the app answers oversize frames
        ws_max_size=ws_max_bytes or runtime.settings.max_body_bytes,
    )
    server = _Server(config)
    served = asyncio.Event()

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit as exc:
            # uvicorn exits the process when it cannot bind; make it a crash the runtime reports
            raise RuntimeError(f"cannot serve HTTP on {host}:{port}: is the port in use?") from exc
        finally:
            served.set()

    runtime.spawn(serve(), name=f"{runtime.name}-http")

    async def stop() -> None:
        server.should_exit = True
        async with asyncio.timeout(grace_s + 1):
            await served.wait()

    runtime.on_stop(stop)
