"""Bounds on the work an edge replica has out at once (issue #13, overload): HTTP requests on
the node and job APIs, and node frames that call a service. Past a bound the edge refuses at
once, with `unavailable` and a `retry_after` (HTTP 503 + Retry-After; an error frame), instead
of queueing work whose answer would come after the caller gave up. Nothing is taken and then
dropped: a refused request did nothing, a refused result is kept by its node and sent again.

Each connection reads its frames one at a time, so frames in flight never exceed connections;
the frame bound is what keeps a crowd of connections from queueing more at the services than
they answer within a command's timeout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ccn_core.errors import Unavailable

# long enough for a burst to pass, short enough that a node or client loses little time
RETRY_AFTER_S = 1.0


class InFlight:
    """How many of something the edge is handling now, against a cap."""

    def __init__(self, limit: int, what: str, *, retry_after_s: float = RETRY_AFTER_S) -> None:
        if limit < 1:
            raise ValueError("an in-flight bound must admit at least one")
        self.limit = limit
        self.what = what
        self.retry_after_s = retry_after_s
        self.count = 0
        self.refused = 0

    def refusal(self) -> Unavailable:
        return Unavailable(
            f"this edge has {self.limit} {self.what} in hand; try again after {self.retry_after_s:g} s",
            retry_after=self.retry_after_s,
        )

    def enter(self) -> bool:
        """Take a place; False (and counted as refused) when all are taken."""
        if self.count >= self.limit:
            self.refused += 1
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count = max(0, self.count - 1)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold one place while the block runs; Unavailable (nothing held) when all are taken."""
        if not self.enter():
            raise self.refusal()
        try:
            yield
        finally:
            self.leave()


def bounded_requests(bound: InFlight) -> Any:
    """ASGI middleware for a router: each HTTP request holds a place in `bound` until answered;
    past it, Unavailable (mapped once, to 503 with Retry-After, by the app's error handler)."""

    def middleware(app: Any) -> Any:
        async def bounded(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            with bound.admitted():
                await app(scope, receive, send)

        return bounded

    return middleware
