"""Waiting for something unless the service is told to stop first.

A loop that polls with a timeout to look at its stop flag ends up to one timeout after it is
told to: a second for a KV watcher's `updates(timeout=1.0)`, half a second for a projection
between batches. Stopping is then as slow as the slowest poll (every test that starts a service
pays it at teardown, and so does a rolling restart). Racing the wait against the stop event ends
it at once instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection
from typing import Any, TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """`stopping` was set before the awaited thing came; it was cancelled."""


async def unless_stopping(
    awaitable: Awaitable[T],
    stopping: asyncio.Event,
    timeout: float | None = None,  # noqa: ASYNC109 - a timeout of its own, see below
) -> T:
    """`awaitable`'s result; Stopped once `stopping` is set first, TimeoutError once `timeout`
    passes first (the awaitable then cancelled, and its own cleanup run, when this raises). A
    result that is ready when the stop or the timeout comes is returned, not dropped.

    The timeout is a parameter, not an `asyncio.timeout` around the call: that one cancels this
    coroutine, and a cancellation that lands just as the awaitable completes would lose its
    result (a batch taken from a queue, gone)."""
    work = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({work, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the caller was cancelled: so is what it waited for
        work.cancel()
        raise
    finally:
        stop.cancel()
    if not work.done():
        work.cancel()
        await asyncio.wait({work})
        if work.cancelled():
            if stopping.is_set():
                raise Stopped
            raise TimeoutError
    return work.result()


async def cancel_until_done(tasks: Collection[asyncio.Task[Any]], *, every_s: float = 0.5) -> None:
    """Cancel `tasks` and wait until each has ended, cancelling again every `every_s` those still
    running. One cancellation is not always enough: nats-py's flush (`Client._flush_pending`,
    reached from a publish or an unsubscribe while the server is slow to read) catches
    CancelledError and carries on, so a loop cancelled there goes on looping, and awaiting it
    would hang its caller for good: a claim owner that lost its key and never stepped down.
    What the tasks raised is consumed, as awaiting them under `suppress` did."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: asyncio would otherwise log it when the task is collected
