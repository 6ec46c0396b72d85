"""Receipts that come after the answer: a result the edge acknowledged as `validating` is judged
later, and its receipt is issued then (ADR 0024). The node remembers such results and asks the
edge for each one's receipt (GET /compute/jobs/{job_id}/receipt) in the background, with
backoff, until it has it or ~10 minutes have passed; what it gets is stored like a receipt
that came with an ack (ccn_cli.node.receipts_store).

`PendingReceipts` is the pure part: which jobs wait, when each is due, when to give up; bounded
(the oldest is dropped, with a log line, past MAX_PENDING). `ReceiptFetcher` is the loop around
it that asks the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ccn_cli.node.edge_http import EdgeError, EdgeRefused, EdgeUnavailable
from ccn_cli.node.receipts_store import store_receipt
from ccn_core.logging import get_logger
from ccn_proto.receipts import Receipt

log = get_logger("ccn.node.receipts")

MAX_PENDING: Final = 10_000
GIVE_UP_S: Final = 600.0
FIRST_DELAY_S: Final = 1.0
MAX_DELAY_S: Final = 60.0
# asked at once at most: a node back from a long disconnection does not flood the edge
MAX_ASKS_PER_TICK: Final = 32


@dataclass
class _Waiting:
    attempt: int | None
    since: float
    due: float
    delay: float


class PendingReceipts:
    """The results whose receipts the node still waits for, oldest first."""

    def __init__(
        self,
        *,
        max_pending: int = MAX_PENDING,
        give_up_s: float = GIVE_UP_S,
        first_delay_s: float = FIRST_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        self._waiting: OrderedDict[str, _Waiting] = OrderedDict()
        self._max = max_pending
        self._give_up_s = give_up_s
        self._first_delay_s = first_delay_s
        self._max_delay_s = max_delay_s

    def __len__(self) -> int:
        return len(self._waiting)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._waiting

    def remember(self, job_id: str, attempt: int | None, now: float) -> list[str]:
        """Wait for `job_id`'s receipt, first asking after FIRST_DELAY_S; the jobs dropped to
        make room (the oldest), which the caller logs."""
        self._waiting[job_id] = _Waiting(attempt, now, now + self._first_delay_s, self._first_delay_s)
        self._waiting.move_to_end(job_id)
        dropped = []
        while len(self._waiting) > self._max:
            dropped.append(self._waiting.popitem(last=False)[0])
        return dropped

    def due(self, now: float, limit: int = MAX_ASKS_PER_TICK) -> list[tuple[str, int | None]]:
        """(job, attempt) of the receipts to ask for now, at most `limit`."""
        return [(job_id, w.attempt) for job_id, w in self._waiting.items() if w.due <= now][:limit]

    def next_due(self) -> float | None:
        return min((w.due for w in self._waiting.values()), default=None)

    def got(self, job_id: str) -> None:
        self._waiting.pop(job_id, None)

    def later(self, job_id: str, now: float, jitter: float, retry_after: float | None = None) -> bool:
        """Ask again after a doubled delay (jittered: 0.5x to 1x, never before `retry_after`);
        False, and forgotten, when the wait is over GIVE_UP_S."""
        waiting = self._waiting.get(job_id)
        if waiting is None:
            return False
        if now - waiting.since >= self._give_up_s:
            del self._waiting[job_id]
            return False
        waiting.delay = min(self._max_delay_s, waiting.delay * 2)
        wait = max(waiting.delay * (0.5 + jitter / 2), retry_after or 0.0)
        waiting.due = now + wait
        return True


AskReceipt = Callable[[str], Awaitable[Receipt | None]]


class ReceiptFetcher:
    """`ask(job_id)`: the edge's answer (None: not issued yet; EdgeError otherwise)."""

    def __init__(
        self,
        ask: AskReceipt,
        directory: Path,
        node_id: Callable[[], str | None],
        *,
        pending: PendingReceipts | None = None,
        clock: Callable[[], float] | None = None,
        jitter: Callable[[], float] = random.random,
        idle_s: float = 1.0,
    ) -> None:
        self._ask = ask
        self._directory = directory
        self._node_id = node_id
        self.pending = pending if pending is not None else PendingReceipts()
        self._clock = clock or asyncio.get_running_loop().time
        self._jitter = jitter
        self._idle_s = idle_s
        self._wake = asyncio.Event()
        self.stored = 0

    def remember(self, job_id: str, attempt: int | None) -> None:
        for dropped in self.pending.remember(job_id, attempt, self._clock()):
            log.warning("too many receipts awaited: the oldest is no longer fetched", job_id=dropped)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for job_id, attempt in self.pending.due(self._clock()):
                await self._fetch(job_id, attempt)
            next_due = self.pending.next_due()
            wait = self._idle_s if next_due is None else max(0.0, min(self._idle_s, next_due - self._clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await _first(stop, self._wake)

    async def _fetch(self, job_id: str, attempt: int | None) -> None:
        retry_after: float | None = None
        try:
            receipt = await self._ask(job_id)
        except EdgeRefused as exc:
            if exc.status == 403:
                self.pending.got(job_id)
                log.warning("receipt refused: it names another node", job_id=job_id, detail=exc.message)
                return
            receipt = None  # 401: the session lapsed; the client starts another, and this asks again
        except EdgeUnavailable as exc:
            receipt, retry_after = None, exc.retry_after
        except EdgeError as exc:
            self.pending.got(job_id)
            log.warning("receipt not fetched", job_id=job_id, detail=exc.message)
            return
        if receipt is None:
            if not self.pending.later(job_id, self._clock(), self._jitter(), retry_after):
                log.warning("no receipt issued in time; no longer asking", job_id=job_id, waited_s=GIVE_UP_S)
            return
        self.pending.got(job_id)
        if receipt.job_id != job_id or receipt.node_id != self._node_id():
            log.warning("receipt for another job or node ignored", job_id=job_id, receipt_node=receipt.node_id)
            return
        if attempt is not None and receipt.attempt != attempt:
            log.info("receipt is for another attempt", job_id=job_id, attempt=attempt, receipt_attempt=receipt.attempt)
        try:
            path = store_receipt(self._directory, receipt)
        except OSError as exc:
            log.warning("receipt not stored", job_id=job_id, error=str(exc))
            return
        self.stored += 1
        log.info("receipt stored", job_id=job_id, path=str(path), verdict=receipt.verdict, key_id=receipt.key_id)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
