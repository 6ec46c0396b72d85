"""Uvicorn under the service runtime: the runtime owns signals and the stop order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from litestar import Litestar

from ccn_core.service import Runtime
from ccn_web.refusals import RefusalLog
from ccn_web.slow_clients import BoundedH11Protocol

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
        # a slow client's request head: bounded in time here, in size by h11, and an idle
        # keep-alive connection closed; bodies are bounded by the app (create_http_app).
        # limit_concurrency stays unset: it counts the nodes' WebSockets too, and past it uvicorn
        # answers every request, /readyz included, with an untyped plain-text 503
        http=BoundedH11Protocol.with_limits(runtime.settings.http_headers_timeout_s, RefusalLog()),
        h11_max_incomplete_event_size=runtime.settings.http_max_header_bytes,
        timeout_keep_alive=runtime.settings.http_keep_alive_s,
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS) by default
        proxy_headers=bool(runtime.settings.forwarded_allow_ips),
        forwarded_allow_ips=runtime.settings.forwarded_allow_ips or None,
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
