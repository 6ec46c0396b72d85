"""Time limits on what a client sends, so a slow one (a slowloris) cannot hold a connection.

Two places, because the request arrives in two parts:
- its line and headers, read by uvicorn before any app code runs: `BoundedH11Protocol` closes a
  connection whose head has not arrived within the headers timeout (uvicorn bounds only an idle
  keep-alive connection, and only between requests);
- its body, read by the app: `bounded_body_reads` gives the whole body one deadline from the
  first read, and past it the read raises RequestTimeout, which the app answers with 408 and the
  project's error body, closing the connection (a part-read body leaves it unusable anyway).

The body deadline is for the whole body rather than between chunks: a client trickling a byte
every few seconds never trips an idle timer.
"""

from __future__ import annotations

import asyncio

import h11
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from ccn_core.errors import RequestTimeout
from ccn_web.refusals import RefusalLog

BODY_TIMED_OUT = "http_body_timeout"
HEADERS_TIMED_OUT = "http_headers_timeout"


def bounded_body_reads(app: ASGIApp, *, timeout_s: float, refusals: RefusalLog) -> ASGIApp:
    """ASGI middleware: the request body must arrive within `timeout_s` of the app's first read."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        deadline: float | None = None
        received = 0
        body_done = False

        async def receive_before_deadline() -> ReceiveMessage:
            nonlocal deadline, received, body_done
            if body_done:  # the app now waits for a disconnect, which may take as long as it likes
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + timeout_s
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                refusals.refused(
                    BODY_TIMED_OUT,
                    scope["path"],
                    "request body timed out",
                    method=scope["method"],
                    path=scope["path"],
                    received_bytes=received,
                    timeout_s=timeout_s,
                )
                raise RequestTimeout(f"the request body did not arrive within {timeout_s:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await app(scope, receive_before_deadline, send)

    return middleware


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's line and headers, from the moment
    the connection is ready for them (opened, or done with the previous response)."""

    headers_timeout_s: float = 10.0
    refusals: RefusalLog = RefusalLog()
    _headers_deadline: asyncio.TimerHandle | None = None

    @classmethod
    def with_limits(cls, headers_timeout_s: float, refusals: RefusalLog) -> type[BoundedH11Protocol]:
        """The class uvicorn instantiates per connection, carrying this server's limits."""

        class Bounded(cls):  # type: ignore[valid-type,misc]
            pass

        Bounded.headers_timeout_s = headers_timeout_s
        Bounded.refusals = refusals
        return Bounded

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_headers_deadline()

    def on_response_complete(self) -> None:
        # armed before uvicorn starts a pipelined request, whose head then cancels it at once
        self._arm_headers_deadline()
        super().on_response_complete()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a request's head has arrived (or the connection ended)
            self._disarm_headers_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_headers_deadline()
        super().connection_lost(exc)

    def _arm_headers_deadline(self) -> None:
        self._disarm_headers_deadline()
        self._headers_deadline = self.loop.call_later(self.headers_timeout_s, self._headers_too_slow)

    def _disarm_headers_deadline(self) -> None:
        if self._headers_deadline is not None:
            self._headers_deadline.cancel()
            self._headers_deadline = None

    def _headers_too_slow(self) -> None:
        self._headers_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        # no ip_hash here (the salt is the edge's): the count and the timeout say enough
        self.refusals.refused(
            HEADERS_TIMED_OUT, "", "request headers timed out: connection closed", timeout_s=self.headers_timeout_s
        )
        self.transport.close()
