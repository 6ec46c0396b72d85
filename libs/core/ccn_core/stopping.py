"""Waiting for something unless the service is told to stop first.

A loop that polls with a timeout to look at its stop flag ends up to one timeout after it is
told to: a second for a KV watcher's `updates(timeout=1.0)`, half a second for a projection
between batches. Stopping is then as slow as the slowest poll (every test that starts a service
pays it at teardown, and so does a rolling restart). Racing the wait against the stop event ends
it at once instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """`stopping` was set before the awaited thing came; it was cancelled."""


async def unless_stopping(awaitable: Awaitable[T], stopping: asyncio.Event) -> T:
    """`awaitable`'s result, or Stopped once `stopping` is set first (the awaitable is then
    cancelled, and its own cleanup has run when this returns). A result that is ready when the
    stop comes is returned, not dropped."""
    work = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the caller was cancelled: so is what it waited for
        work.cancel()
        raise
    finally:
        stop.cancel()
    if not work.done():
        work.cancel()
        await asyncio.wait({work})
        if work.cancelled():
            raise Stopped
    return work.result()
