"""Appends and reads on JetStream, with many requests in flight on one reply subscription.

Why not `js.publish`: one coroutine awaiting each publish tops out near 3k appends/s on two
cores, and nats-py's `publish_async` never resolves when the server rejects an append (nats.py
issue 985), so it cannot carry optimistic-concurrency appends. Here every append and read
shares one wildcard inbox; replies are matched by token and acks decoded with msgspec.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from ccn_core import nats_headers
from ccn_core.errors import CcnError, Unavailable
from ccn_core.subjects import subject_matches

# every process that reads events reads their headers: importing this module puts the faster
# parser in nats-py (see ccn_core.nats_headers)
FAST_HEADERS = nats_headers.INSTALLED

WRONG_LAST_SEQUENCE = 10071
# an atomic batch with a message id seen within the duplicate window: batches land whole or not
# at all, so the decision it carries landed before (a retried command), as a single append's
# `duplicate` ack says
BATCH_DUPLICATE_MESSAGE_ID = 10201
HDR_MSG_ID = "Nats-Msg-Id"
HDR_EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
HDR_BATCH_ID = "Nats-Batch-Id"
HDR_BATCH_SEQ = "Nats-Batch-Sequence"
HDR_BATCH_COMMIT = "Nats-Batch-Commit"
_READ_BATCH = 512
# Every event of a stream, as a scan's filter: the server reads the stream in order. A filter
# naming the same events (`ccn.job.>` on CCN_JOBS, whose only subjects they are) makes it look up
# its subject index for the first match of every batch it reads, a cost that grows with the
# stream: a replay of 100,000 events took 10.3 s that way and 3.4 s this way
EVERY_EVENT = ">"
# appends and reads awaiting their answer: past this a new one is refused at once, so a stalled
# server costs callers a fast Unavailable, not memory growing with every request
MAX_IN_FLIGHT = 50_000
# hidden events (earlier ones on a subject that has a later one) fetched one by one; with more,
# a scan is cheaper
_MAX_HIDDEN_EVENTS = 16


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class PubAck(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    count: int = 1
    error: _ApiError | None = None


_decode_ack = msgspec.json.Decoder(PubAck).decode


class WrongLastSequence(CcnError):
    """Another writer appended to the aggregate since it was loaded: reload and decide again."""

    code = "conflict"
    http_status = 409


class AppendRejected(CcnError):
    """The server refused an append for a reason a retry will not fix."""


class StoredEvent(msgspec.Struct, frozen=True):
    seq: int
    subject: str
    data: bytes
    headers: Mapping[str, str]


class OutgoingEvent(msgspec.Struct, frozen=True):
    subject: str
    data: bytes
    headers: dict[str, str]


class _Read:
    __slots__ = ("done", "events", "pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[StoredEvent] = []
        self.done: asyncio.Future[None] = loop.create_future()
        self.pending = 0


class EventStore:
    def __init__(self, nc: NATS, *, timeout: float = 5.0) -> None:
        self._nc = nc
        self._timeout = timeout
        self._tokens = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[Msg] | _Read] = {}
        # tokens by deadline, in issue order: one sweeper expires them, instead of a timer each
        self._deadlines: deque[tuple[float, str]] = deque()
        self._prefix = ""
        self._sub: Any = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        # answers only to what was asked, and asks are bounded by MAX_IN_FLIGHT: so is this buffer
        self._sub = await self._nc.subscribe(
            self._prefix + "*", cb=self._on_reply, pending_msgs_limit=2 * MAX_IN_FLIGHT, pending_bytes_limit=-1
        )
        self._sweeper = asyncio.create_task(self._sweep(), name="eventstore-timeouts")

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(0.25, self._timeout / 4))
            now = loop.time()
            while self._deadlines and self._deadlines[0][0] <= now:
                self._expire(self._deadlines.popleft()[1])

    def _track(self, token: str, waiter: asyncio.Future[Msg] | _Read) -> None:
        if len(self._waiting) >= MAX_IN_FLIGHT:
            raise Unavailable(f"{MAX_IN_FLIGHT} event-store requests are already waiting; try again", retry_after=1.0)
        self._waiting[token] = waiter
        self._deadlines.append((asyncio.get_running_loop().time() + self._timeout, token))

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        for waiter in self._waiting.values():
            future = waiter.done if isinstance(waiter, _Read) else waiter
            if not future.done():
                future.set_exception(Unavailable("event store closed"))
        self._waiting.clear()

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self._prefix) :]
        waiter = self._waiting.get(token)
        if waiter is None:
            return  # timed out already
        if isinstance(waiter, _Read):
            self._on_read_reply(token, waiter, msg)
        else:
            del self._waiting[token]
            if not waiter.done():
                waiter.set_result(msg)

    def _on_read_reply(self, token: str, read: _Read, msg: Msg) -> None:
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is None:
            read.events.append(_stored(msg, headers))
            return
        del self._waiting[token]
        if status == "204":  # end of batch: more may match past it
            read.pending = int(headers.get("Nats-Num-Pending", "0"))
        elif status != "404":
            read.done.set_exception(Unavailable(f"direct get failed: {status} {headers.get('Description')}"))
            return
        if not read.done.done():
            read.done.set_result(None)

    def _expire(self, token: str) -> None:
        waiter = self._waiting.pop(token, None)
        if waiter is None:
            return
        future = waiter.done if isinstance(waiter, _Read) else waiter
        if not future.done():
            future.set_exception(Unavailable("the event store did not answer in time", retry_after=1.0))

    async def _request(self, subject: str, data: bytes, headers: dict[str, str] | None) -> Msg:
        token = str(next(self._tokens))
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._track(token, future)
        try:
            await self._nc.publish(subject, data, reply=self._prefix + token, headers=headers)
        except (nats.errors.ConnectionClosedError, nats.errors.OutboundBufferLimitError) as exc:
            self._waiting.pop(token, None)
            raise Unavailable(f"NATS unavailable: {exc}", retry_after=1.0) from exc
        return await future

    async def append(
        self,
        event: OutgoingEvent,
        *,
        expected_last_seq: int | None = None,
        occ_scope: str | None = None,
    ) -> PubAck:
        """Append one event; with `expected_last_seq`, only if `occ_scope`'s last event is that one."""
        headers = event.headers
        if expected_last_seq is not None:
            headers = {**headers, HDR_EXPECTED_LAST_SUBJECT_SEQ: str(expected_last_seq)}
            if occ_scope is not None:
                headers[HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT] = occ_scope
        return _checked_ack(await self._request(event.subject, event.data, headers))

    async def append_all(
        self,
        events: Sequence[OutgoingEvent],
        *,
        expected_last_seq: int | None = None,
        occ_scope: str | None = None,
    ) -> PubAck:
        """Append several events atomically (a JetStream atomic batch): all are stored or none."""
        if len(events) == 1:
            return await self.append(events[0], expected_last_seq=expected_last_seq, occ_scope=occ_scope)
        batch_id = events[0].headers.get(HDR_MSG_ID) or self._nc.new_inbox()[7:]
        last = len(events)
        for index, event in enumerate(events, start=1):
            headers = {**event.headers, HDR_BATCH_ID: batch_id, HDR_BATCH_SEQ: str(index)}
            if index == 1 and expected_last_seq is not None:
                headers[HDR_EXPECTED_LAST_SUBJECT_SEQ] = str(expected_last_seq)
                if occ_scope is not None:
                    headers[HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT] = occ_scope
            if index < last:
                await self._nc.publish(event.subject, event.data, headers=headers)
            else:
                headers[HDR_BATCH_COMMIT] = "1"
                return _checked_ack(await self._request(event.subject, event.data, headers))
        raise AssertionError("unreachable")

    async def read(self, stream: str, filter_subject: str, from_seq: int = 1) -> list[StoredEvent]:
        """Every stored event on `filter_subject` from `from_seq` on, in order.

        An aggregate's history (a wildcard scope its appends were checked against) is read by
        following its appends' OCC chain back from its subjects' last events: a few indexed
        lookups. Anything the chain cannot prove falls back to a scan by subject filter, which
        the server resolves block by block, so that costs time in proportion to the stream."""
        if is_aggregate_scope(filter_subject):
            history = await self._read_chain(stream, filter_subject, from_seq)
            if history is not None:
                return history
        return await self._scan(stream, filter_subject, from_seq)

    async def _read_chain(self, stream: str, scope: str, from_seq: int) -> list[StoredEvent] | None:
        """The scope's events from `from_seq` on, or None when the stored headers do not prove
        them complete. Each subject's last event comes from the server's per-subject index in
        one request; an event hidden behind a later one on the same subject (a second claim, a
        lease renewal) is fetched by its sequence, named by its successor's OCC header."""
        lasts = await self._batch_get(stream, {"multi_last": [scope], "batch": _READ_BATCH})
        if lasts.pending:
            return None  # more subjects than one batch holds
        if not lasts.events:
            return []
        known = {event.seq: event for event in lasts.events}
        event = max(lasts.events, key=lambda stored: stored.seq)
        chain: list[StoredEvent] = []
        counted = False
        while event.seq >= from_seq:
            chain.append(event)
            previous_seq = occ_predecessor(event, scope)
            if previous_seq is None:
                return None
            if previous_seq < from_seq:
                break
            previous = known.get(previous_seq)
            if previous is None:
                if not counted and await self._count(stream, scope) - len(lasts.events) > _MAX_HIDDEN_EVENTS:
                    return None  # long runs on one subject: one scan beats a round trip per event
                counted = True
                previous = await self.get_seq(stream, previous_seq)
                if previous is None:
                    return None  # removed by a limit, or a replica behind: the scan decides
            if not precedes(previous, event, scope):
                return None
            event = previous
        chain.reverse()
        return chain

    async def _scan(self, stream: str, filter_subject: str, from_seq: int) -> list[StoredEvent]:
        return [event async for batch in self.scan(stream, filter_subject, from_seq) for event in batch]

    async def scan(
        self, stream: str, filter_subject: str, from_seq: int = 1, *, up_to_seq: int | None = None
    ) -> AsyncIterator[list[StoredEvent]]:
        """The stored events on `filter_subject` from `from_seq` on (up to `up_to_seq` when
        given), in order, a batch at a time: a replay of a whole stream holds one batch."""
        seq = from_seq
        while True:
            read = await self._batch_get(stream, {"seq": seq, "next_by_subj": filter_subject, "batch": _READ_BATCH})
            events = read.events if up_to_seq is None else [e for e in read.events if e.seq <= up_to_seq]
            if events:
                yield events
            if not read.events or read.pending == 0 or len(events) < len(read.events):
                return
            seq = read.events[-1].seq + 1

    async def _batch_get(self, stream: str, request: dict[str, Any]) -> _Read:
        token = str(next(self._tokens))
        read = _Read(asyncio.get_running_loop())
        self._track(token, read)
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{stream}", msgspec.json.encode(request), reply=self._prefix + token
            )
        except nats.errors.ConnectionClosedError as exc:
            self._waiting.pop(token, None)
            raise Unavailable(f"NATS unavailable: {exc}", retry_after=1.0) from exc
        await read.done
        return read

    async def _count(self, stream: str, scope: str) -> int:
        """How many events `scope` holds (the server counts them from its per-subject index)."""
        first = await self._batch_get(stream, {"seq": 1, "next_by_subj": scope, "batch": 1})
        return len(first.events) + first.pending

    async def get_seq(self, stream: str, seq: int) -> StoredEvent | None:
        """The event stored at `seq`, or None when there is none (never written, or removed)."""
        msg = await self._request(f"$JS.API.DIRECT.GET.{stream}", msgspec.json.encode({"seq": seq}), None)
        headers = msg.headers or {}
        status = headers.get("Status")
        if status == "404":
            return None
        if status is not None:
            raise Unavailable(f"direct get failed: {status} {headers.get('Description')}")
        return _stored(msg, headers)


def _stored(msg: Msg, headers: Mapping[str, str]) -> StoredEvent:
    """A direct get's answer: the message's stream position rides in its headers."""
    return StoredEvent(
        seq=int(headers["Nats-Sequence"]), subject=headers["Nats-Subject"], data=msg.data, headers=headers
    )


def is_aggregate_scope(filter_subject: str) -> bool:
    """One aggregate's events (`ccn.job.<id>.*`), the scope its appends are checked against;
    a filter over many aggregates has no single OCC chain to follow."""
    head, _, last = filter_subject.rpartition(".")
    return last == "*" and bool(head) and "*" not in head and ">" not in head


def occ_predecessor(event: StoredEvent, scope: str) -> int | None:
    """The sequence of the event before `event` in `scope` (0: none), as the append's OCC check
    proved it; None when the append proved nothing about `scope`. A later member of an atomic
    batch follows the member before it, one sequence down (checked by `precedes`)."""
    headers = event.headers
    batch_seq = headers.get(HDR_BATCH_SEQ)
    if batch_seq is not None and batch_seq != "1":
        return event.seq - 1
    expected = headers.get(HDR_EXPECTED_LAST_SUBJECT_SEQ)
    if expected is None or headers.get(HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT) != scope:
        return None
    return int(expected)


def precedes(previous: StoredEvent, event: StoredEvent, scope: str) -> bool:
    """`previous` is a stored event of `scope` that can be `event`'s predecessor."""
    if not subject_matches(previous.subject, scope):
        return False
    batch_seq = event.headers.get(HDR_BATCH_SEQ)
    if batch_seq is None or batch_seq == "1":
        return True
    return previous.headers.get(HDR_BATCH_ID) == event.headers.get(HDR_BATCH_ID) and previous.headers.get(
        HDR_BATCH_SEQ
    ) == str(int(batch_seq) - 1)


def _checked_ack(msg: Msg) -> PubAck:
    headers = msg.headers
    if headers and headers.get("Status") == "503":
        raise Unavailable("no stream answers this subject (is the topology created?)", retry_after=1.0)
    ack = _decode_ack(msg.data)
    if ack.error is None:
        return ack
    if ack.error.err_code == WRONG_LAST_SEQUENCE:
        raise WrongLastSequence(ack.error.description)
    if ack.error.err_code == BATCH_DUPLICATE_MESSAGE_ID:
        return PubAck(stream=ack.stream, duplicate=True)
    if ack.error.code == 503:
        raise Unavailable(f"JetStream unavailable: {ack.error.description}", retry_after=1.0)
    raise AppendRejected(f"append rejected ({ack.error.err_code}): {ack.error.description}")
