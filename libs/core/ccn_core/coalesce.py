"""Many callers' requests sent as one batch: the items that arrive while a batch is out make
up the next one. An idle sender sends an item at once, alone (no timer, no added latency); a
busy one sends fewer, larger requests, so the cost per item falls as load rises.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ccn_core.logging import get_logger

log = get_logger("ccn.coalesce")

I = TypeVar("I")  # noqa: E741 - item
O = TypeVar("O")  # noqa: E741 - its outcome


class Coalescer(Generic[I, O]):
    """`send` takes a batch of items and returns one outcome per item, in order. A batch holds
    at most `max_batch` items and, when `max_bytes` is set, at most that many bytes by the sizes
    the callers give (an item bigger than that goes alone). `orphaned` is given each outcome whose
    caller stopped waiting (cancelled) before it came back: whatever it took on that caller's
    behalf must be given back there."""

    def __init__(
        self,
        send: Callable[[list[I]], Awaitable[list[O]]],
        *,
        max_batch: int,
        max_in_flight: int = 1,
        max_bytes: int = 0,
        orphaned: Callable[[I, O], Awaitable[None]] | None = None,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._send = send
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._max_bytes = max_bytes
        self._orphaned = orphaned
        self._pending: deque[tuple[I, asyncio.Future[O], int]] = deque()
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_sent = 0
        self.items_sent = 0

    async def submit(self, item: I, *, size: int = 0) -> O:
        """`size`: what the item adds to its batch's bytes, as the caller knows it (e.g. the
        frame it came in), so nothing is encoded twice to measure it."""
        future: asyncio.Future[O] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future, size))
        self._dispatch()
        return await future

    async def drain(self) -> None:
        """Wait for every batch that is out (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _dispatch(self) -> None:
        while self._pending and self._in_flight < self._max_in_flight:
            batch = self._next_batch()
            if not batch:
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._send_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _next_batch(self) -> list[tuple[I, asyncio.Future[O]]]:
        batch: list[tuple[I, asyncio.Future[O]]] = []
        total = 0
        while self._pending and len(batch) < self._max_batch:
            item, future, size = self._pending[0]
            if future.cancelled():  # its caller left before it was sent
                self._pending.popleft()
                continue
            if batch and self._max_bytes and total + size > self._max_bytes:
                break
            self._pending.popleft()
            batch.append((item, future))
            total += size
        return batch

    async def _send_batch(self, batch: list[tuple[I, asyncio.Future[O]]]) -> None:
        try:
            self.batches_sent += 1
            self.items_sent += len(batch)
            try:
                outcomes = await self._send([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            if len(outcomes) != len(batch):
                error = RuntimeError(f"a batch of {len(batch)} items came back with {len(outcomes)} outcomes")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
            for (item, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
                elif self._orphaned is not None:
                    try:
                        await self._orphaned(item, outcome)
                    except Exception:
                        log.exception("an orphaned batch outcome could not be given back")
        finally:
            self._in_flight -= 1
            self._dispatch()
