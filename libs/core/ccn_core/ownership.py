"""One owner at a time of a named role, held as a key in a NATS KV bucket with a TTL.

The owner creates the key (the server grants `create` to one caller only) and rewrites it at
its revision every third of the TTL. If it dies, the bucket's TTL removes the key and a standby's
next `create` wins. An owner that cannot rewrite its key in time steps down on its own, before
the server could let anyone else in: its deadline counts from the moment it *sent* its last
successful rewrite, which is no later than when the server stored it, so the old owner stops
before the key can expire, whatever the network did to the reply. Only local monotonic time is
compared, never two machines' clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from ccn_core.logging import get_logger

log = get_logger("ccn.ownership")


class Ownership:
    """`on_gain` runs when this process becomes the owner (it may take a while: the refresh goes
    on meanwhile); `on_loss(lost)` when it stops being one: `lost` when the key could not be kept
    (stop deciding at once: another may own it soon), not when it is stopping or gave up (the key
    is still kept fresh while on_loss finishes what is in hand, then deleted). Both run in this
    task, one at a time, never overlapping."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        bucket: str,
        key: str,
        owner_id: str,
        ttl_s: float,
        on_gain: Callable[[], Coroutine[Any, Any, None]],
        on_loss: Callable[[bool], Coroutine[Any, Any, None]],
        poll_s: float | None = None,
    ) -> None:
        self._js = js
        self._bucket_name = bucket
        self._key = key
        self._owner_id = owner_id.encode()
        self._ttl_s = ttl_s
        self._refresh_s = ttl_s / 3
        # stop owning this long before the key could expire: covers a slow clock tick and the
        # time on_loss takes to stop taking commands
        self._margin_s = ttl_s / 4
        self._poll_s = poll_s if poll_s is not None else ttl_s / 6
        self._on_gain = on_gain
        self._on_loss = on_loss
        self._stopping = asyncio.Event()
        self._revision: int | None = None
        self._stopping_term = False  # this term ends because taking over failed
        self.owner = False
        self.terms = 0  # how many times this process became the owner

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        bucket: KeyValue | None = None
        while not self._stopping.is_set():
            try:
                bucket = bucket or await self._js.key_value(self._bucket_name)
                sent = time.monotonic()
                self._revision = await bucket.create(self._key, self._owner_id)
            except KeyWrongLastSequenceError:
                await self._pause(self._poll_s)  # someone else owns it
                continue
            except (nats.errors.Error, OSError) as exc:
                log.warning("ownership not reachable; trying again", role=self._key, error=repr(exc))
                await self._pause(self._poll_s)
                continue
            await self._own(bucket, sent)

    async def _own(self, bucket: KeyValue, since: float) -> None:
        self.owner = True
        self.terms += 1
        log.info("became the owner", role=self._key, term=self.terms)
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep(bucket, since, lost), name=f"ownership-{self._key}")
        try:
            gaining = asyncio.create_task(self._on_gain(), name=f"ownership-{self._key}-gain")
            ending = asyncio.create_task(self._first(lost, self._stopping), name=f"ownership-{self._key}-end")
            await asyncio.wait({gaining, ending}, return_when=asyncio.FIRST_COMPLETED)
            if not gaining.done():
                gaining.cancel()  # lost (or stopping) while taking over
            try:
                await gaining
            except asyncio.CancelledError:
                pass
            except Exception:
                # let go, and let another replica (or this one, after a pause) try again
                log.exception("taking over failed; stepping down", role=self._key)
                self._stopping_term = True
            if not self._stopping_term:
                await ending
            ending.cancel()
        finally:
            self.owner = False
            stepping_down = time.monotonic()
            try:
                await self._on_loss(lost.is_set())  # while the keeper, unless lost, keeps the key
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            if (self._stopping.is_set() or self._stopping_term) and self._revision is not None and not lost.is_set():
                # let a standby in at once instead of after the TTL
                with contextlib.suppress(nats.errors.Error, KeyWrongLastSequenceError, OSError):
                    await bucket.delete(self._key, last=self._revision)
            # how long no one decided: commands in hand finished, the key let go
            log.warning(
                "no longer the owner",
                role=self._key,
                stopping=self._stopping.is_set(),
                stepped_down_s=round(time.monotonic() - stepping_down, 3),
            )
            if self._stopping_term:
                self._stopping_term = False
                await self._pause(self._ttl_s)  # give the others a turn first

    async def _keep(self, bucket: KeyValue, since: float, lost: asyncio.Event) -> None:
        deadline = since + self._ttl_s - self._margin_s
        while True:
            await asyncio.sleep(max(0.0, min(self._refresh_s, deadline - time.monotonic())))
            if time.monotonic() >= deadline:
                log.error("ownership not renewed in time; stepping down", role=self._key)
                lost.set()
                return
            sent = time.monotonic()
            try:
                assert self._revision is not None
                self._revision = await bucket.update(self._key, self._owner_id, last=self._revision)
            except KeyWrongLastSequenceError:
                log.error("ownership taken by another process; stepping down", role=self._key)
                lost.set()
                return
            except (nats.errors.Error, OSError) as exc:
                log.warning("ownership renewal failed; retrying", role=self._key, error=repr(exc))
                continue
            deadline = sent + self._ttl_s - self._margin_s

    @staticmethod
    async def _first(*events: asyncio.Event) -> None:
        waits = [asyncio.create_task(event.wait()) for event in events]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
