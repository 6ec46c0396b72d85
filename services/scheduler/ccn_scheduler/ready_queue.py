"""The ready queue (stream CCN_READY): entries for jobs that may be claimed, one durable
consumer per job type shared by every scheduler replica.

An entry is a hint, not a fact: the job aggregate decides whether a claim holds. An entry for a
job that was claimed, finished or cancelled meanwhile is acked and skipped. Each job has at most
one entry (max_msgs_per_subject = 1 on ccn.ready.<type>.<job>), and each entry carries the job's
payload so a claim needs no read besides the append. Retries are JetStream message schedules:
the server turns ccn.ready_at.<job>.retry into the job's entry at the retry time, durably, with
no timer in any scheduler process.

See docs/adr/0006-claims-through-a-ready-queue.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats.errors
from cachetools import TTLCache
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ccn_core.errors import Unavailable
from ccn_core.eventstore import HDR_MSG_ID, EventStore, OutgoingEvent
from ccn_core.logging import get_logger
from ccn_core.pull import BatchPuller, ConsumerGone
from ccn_core.topology import READY, READY_BANDS, ready_band, ready_consumer, ready_schedule_subject, ready_subject
from ccn_proto.envelope import HEADER_CORRELATION_ID

log = get_logger("ccn.scheduler.ready")
HDR_SCHEDULE = "Nats-Schedule"
HDR_SCHEDULE_TARGET = "Nats-Schedule-Target"
# a claim that crashed between fetch and ack returns its entry to the queue after this
CLAIM_ACK_WAIT_S = 15.0
# a no-wait pull is answered at once; this bounds a server that does not answer
_FETCH_TIMEOUT_S = 2.0
# How long one look at a consumer's backlog stands for every claimer in this replica: idle
# long-polling claimers then cost one consumer-info request per type per period, not a fetch each.
BACKLOG_TTL_S = 0.05
# the most entries one fetch asks for, whatever the claimers waiting on it want together
MAX_FETCH_BATCH = 256


class ReadyEntry(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    job_type: str
    payload: dict[str, Any]
    correlation_id: str
    priority: int = 0

    @property
    def band(self) -> str:
        return ready_band(self.priority)


class Taken(msgspec.Struct, frozen=True):
    entry: ReadyEntry
    msg: Msg


_decode_entry = msgspec.json.Decoder(ReadyEntry).decode
Queue = tuple[str, str]  # (job type, band)


async def settle(disposition: Coroutine[Any, Any, None]) -> None:
    """Ack, nak or term an entry; if that cannot reach the server, the entry simply comes back
    after the consumer's ack wait, and the aggregate decides again: nothing to fail over."""
    try:
        await disposition
    except nats.errors.Error as exc:
        log.warning("ready entry not settled; it will be redelivered", error=repr(exc))


def schedule_time(at: datetime) -> str:
    """RFC 3339 in UTC, as `Nats-Schedule: @at <time>` takes it (sub-second precision works)."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


# entry ids this process put and remembers, so as not to send them again (see ReadyQueue.put)
RECENT_PUTS_MAX = 200_000


class ReadyQueue:
    def __init__(self, nc: NATS, js: JetStreamContext, store: EventStore, *, dedupe_window_s: float = 120.0) -> None:
        self._nc = nc
        self._js = js
        self._store = store
        # entry ids this process put within the stream's duplicate window
        self._recent_puts: TTLCache[str, bool] = TTLCache(
            maxsize=RECENT_PUTS_MAX, ttl=dedupe_window_s, timer=time.monotonic
        )
        self._pullers: dict[Queue, BatchPuller] = {}
        # one fetch at a time per queue in a replica (concurrent fetches on one pull subscription
        # would take each other's messages and status replies), made for every claimer waiting
        # on that queue at once: claimers add what they want here, one fetcher task serves them
        self._wanted: dict[Queue, list[tuple[int, asyncio.Future[list[Taken]]]]] = {}
        self._fetchers: dict[Queue, asyncio.Task[None]] = {}
        # (job type, band) → (when looked, whether entries may be waiting)
        self._backlog: dict[Queue, tuple[float, bool]] = {}
        self._backlog_locks: dict[Queue, asyncio.Lock] = {}

    async def ensure_consumers(self, job_types: Iterable[str]) -> None:
        for job_type, band in ((t, b) for t in job_types for b in READY_BANDS):
            spec = ready_consumer(job_type, band)
            try:
                await self._js.consumer_info(spec.stream, spec.durable)
            except NotFoundError:
                await self._js.add_consumer(
                    spec.stream,
                    ConsumerConfig(
                        durable_name=spec.durable,
                        description=spec.description,
                        filter_subjects=list(spec.filter_subjects),
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        ack_wait=CLAIM_ACK_WAIT_S,
                        max_deliver=-1,
                        max_ack_pending=-1,
                    ),
                )

    async def put(self, entry: ReadyEntry, *, entry_id: str, at: datetime | None = None) -> None:
        """Make the job claimable now, or at `at`. `entry_id` dedupes a repeated put (e.g. the
        event that caused it, delivered twice) inside the stream's duplicate window.

        A put this process made already within that window is not sent again: the server would
        drop it as a duplicate, and the ready feed repeats every put the create handler makes
        (for the crash between append and put), which was a round trip per job for nothing."""
        if entry_id in self._recent_puts:
            return
        target = ready_subject(entry.job_type, entry.band, entry.job_id)
        headers = {HDR_MSG_ID: entry_id, HEADER_CORRELATION_ID: entry.correlation_id}
        subject = target
        if at is not None and at > datetime.now(UTC):
            subject = ready_schedule_subject(entry.job_id)
            headers[HDR_SCHEDULE] = f"@at {schedule_time(at)}"
            headers[HDR_SCHEDULE_TARGET] = target
        await self._store.append(OutgoingEvent(subject=subject, data=msgspec.json.encode(entry), headers=headers))
        self._recent_puts[entry_id] = True
        if subject == target:
            self._backlog.pop((entry.job_type, entry.band), None)  # this replica knows it is not empty now

    def put_already(self, entry_id: str) -> bool:
        """Whether this process put the entry within the duplicate window (a put of it now would
        send nothing)."""
        return entry_id in self._recent_puts

    def _puller(self, queue: Queue) -> BatchPuller:
        puller = self._pullers.get(queue)
        if puller is None:
            puller = self._pullers[queue] = BatchPuller(self._nc, READY.name, ready_consumer(*queue).durable)
        return puller

    async def _may_have_entries(self, queue: Queue) -> bool:
        """Whether the queue's consumer had entries to deliver (new, or due for redelivery) when
        last looked at, at most BACKLOG_TTL_S ago."""
        loop = asyncio.get_running_loop()
        seen = self._backlog.get(queue)
        if seen is not None and loop.time() - seen[0] < BACKLOG_TTL_S:
            return seen[1]
        async with self._backlog_locks.setdefault(queue, asyncio.Lock()):
            seen = self._backlog.get(queue)
            if seen is not None and loop.time() - seen[0] < BACKLOG_TTL_S:
                return seen[1]
            spec = ready_consumer(*queue)
            try:
                info = await self._js.consumer_info(spec.stream, spec.durable)
            except nats.errors.Error as exc:
                raise Unavailable(f"the ready queue {spec.durable} is unavailable: {exc!r}", retry_after=1.0) from exc
            # ack-pending entries are in other claimers' hands or nak'ed for a redelivery
            waiting = bool(info.num_pending or info.num_ack_pending)
            self._backlog[queue] = (loop.time(), waiting)
            return waiting

    async def take(self, job_type: str, band: str, limit: int) -> list[Taken]:
        """Up to `limit` entries of the type and band that are waiting now; an empty list at once
        when none are. Claimers asking at the same time share one fetch."""
        queue = (job_type, band)
        if limit <= 0 or not await self._may_have_entries(queue):
            return []
        wanted: asyncio.Future[list[Taken]] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(queue, []).append((limit, wanted))
        if queue not in self._fetchers:
            self._fetchers[queue] = asyncio.create_task(self._serve(queue), name=f"ready-fetch-{job_type}-{band}")
        return await wanted

    async def _serve(self, queue: Queue) -> None:
        """Fetch for everyone waiting on the queue, one fetch at a time, until no one is."""
        waiting: list[tuple[int, asyncio.Future[list[Taken]]]] = []
        try:
            while waiting := self._wanted.pop(queue, []):
                try:
                    taken = await self._fetch(queue, min(MAX_FETCH_BATCH, sum(limit for limit, _ in waiting)))
                except Unavailable as exc:
                    for _, wanted in waiting:
                        if not wanted.done():
                            wanted.set_exception(exc)
                    continue
                for limit, wanted in waiting:
                    share, taken = taken[:limit], taken[limit:]
                    if wanted.done():  # its claim was cancelled: the entries go back at once
                        taken = share + taken
                        continue
                    wanted.set_result(share)
                for item in taken:  # nobody left to take them
                    await settle(item.msg.nak())
        finally:
            self._fetchers.pop(queue, None)
            for _, wanted in waiting + self._wanted.pop(queue, []):  # stopped while they waited
                if not wanted.done():
                    wanted.set_exception(Unavailable("the ready queue fetcher stopped", retry_after=1.0))

    async def _fetch(self, queue: Queue, limit: int) -> list[Taken]:
        """What the queue has now, up to `limit`: a claim does not wait on the server (a
        long-polling claimer looks again after its poll interval)."""
        try:
            msgs = await self._puller(queue).fetch(limit, timeout=_FETCH_TIMEOUT_S, no_wait=True)
        except (ConsumerGone, nats.errors.Error) as exc:
            raise Unavailable(f"the ready queue {queue} is unavailable: {exc!r}", retry_after=1.0) from exc
        if len(msgs) < limit:
            # it gave what it had: nothing more waits now (until a put or the next look)
            self._backlog[queue] = (asyncio.get_running_loop().time(), False)
        taken: list[Taken] = []
        for msg in msgs:
            try:
                taken.append(Taken(_decode_entry(msg.data), msg))
            except msgspec.DecodeError:
                await settle(msg.term())  # not ours to understand; never offer it again
        return taken

    async def close(self) -> None:
        for fetcher in list(self._fetchers.values()):
            fetcher.cancel()
        self._pullers.clear()
