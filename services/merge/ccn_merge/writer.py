"""One dataset's single writer: the folded state in memory, commands decided against it in
groups, each group's events appended at once with optimistic concurrency.

Why not ccn_core.aggregate.AggregateRepository: the dataset is one hot aggregate holding up to
100,000 records, and its state is a mutable fold (ccn_merge.dataset). A proposal's decision
depends on every earlier one (stitching, the proposals seen), so proposals are decided one after
another and evolved in place; the events of a whole group (the reactor hands over a pull of up
to a hundred results at once) are then appended as one atomic batch against the version the
group started from. One append per group instead of one per proposal is what makes the merge
keep up (bench group `merge`, docs/perf/merge.md).

The state is changed before the append is acknowledged, so a failed append leaves it ahead of
the stream: it is then folded again from the stream (a conflict means another writer appended,
which ADR 0025 says should not happen; a lost ack means the group may have landed). Reads take
the same lock as the writer, so they never see a group's events before they are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from ccn_core import ids, subjects
from ccn_core.aggregate import EventMeta, envelope_headers, event_name
from ccn_core.errors import CcnError, Unavailable
from ccn_core.eventstore import EventStore, OutgoingEvent, WrongLastSequence
from ccn_core.logging import get_logger
from ccn_core.stopping import Stopped, unless_stopping
from ccn_merge.dataset import DatasetDecider
from ccn_merge.dataset_state import DatasetState
from ccn_merge.published import record_lines
from ccn_proto.datasets import AGGREGATE, STREAM, DatasetCommand, DatasetEvent, VersionPublished
from ccn_proto.envelope import Envelope

log = get_logger("ccn.merge.writer")

T = TypeVar("T")
# a group is one atomic batch: JetStream caps a batch at 1,000 messages; stay well below it
MAX_GROUP_COMMANDS = 100
MAX_GROUP_EVENTS = 400
MAX_GROUP_BYTES = 4 * 1024 * 1024
# the latest versions' records kept as published, for diffs without a fold of the history
SNAPSHOTS_KEPT = 4

_decode = msgspec.json.Decoder(Envelope[DatasetEvent]).decode


@dataclass(slots=True)
class _Pending:
    command: DatasetCommand
    meta: EventMeta
    done: asyncio.Future[list[Envelope[DatasetEvent]]]


class DatasetWriter:
    def __init__(
        self,
        store: EventStore,
        decider: DatasetDecider,
        name: str,
        *,
        deadline_s: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self.decider = decider
        self.state: DatasetState = decider.initial_state(name)
        self.version = 0  # stream sequence of the last event folded
        self._store = store
        self._scope = subjects.aggregate_filter(AGGREGATE, name)
        self._deadline_s = deadline_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self.appends = 0
        self.commands = 0
        self.conflicts = 0
        self.reloads = 0
        self._stale = False
        self._closed = False
        # version -> record id -> canonical line, the last SNAPSHOTS_KEPT versions (ccn_merge.published)
        self.snapshots: dict[int, dict[str, bytes]] = {}

    # ---- folding ----

    async def load(self) -> None:
        """Fold the dataset's whole history (at start, and after a failed append)."""
        state = self.decider.initial_state(self.name)
        version = 0
        self.snapshots = {}
        async for batch in self._store.scan(STREAM, self._scope):
            for stored in batch:
                self._fold(state, _decode(stored.data).data, self.snapshots)
                version = stored.seq
        self.state, self.version = state, version
        self._stale = False

    async def _catch_up(self) -> None:
        """Fold what others appended since (nothing, while this is the only writer)."""
        if self._stale:
            await self._reload()
            return
        async for batch in self._store.scan(STREAM, self._scope, self.version + 1):
            for stored in batch:
                self._fold(self.state, _decode(stored.data).data, self.snapshots)
                self.version = stored.seq

    def _fold(self, state: DatasetState, event: DatasetEvent, snapshots: dict[int, dict[str, bytes]]) -> None:
        self.decider.evolve(state, event)
        if isinstance(event, VersionPublished):
            snapshots[event.version] = record_lines(self.decider.schema, state)
            for old in sorted(snapshots)[:-SNAPSHOTS_KEPT]:
                del snapshots[old]

    async def read(self, view: Callable[[DatasetState], T]) -> T:
        """`view` of the state as stored, never of a group still being appended."""
        async with self._lock:
            await self._catch_up()
            return view(self.state)

    # ---- writing ----

    async def execute(self, command: DatasetCommand, meta: EventMeta) -> list[Envelope[DatasetEvent]]:
        """Decide the command in the next group and return its events once they are stored
        (none: the command changed nothing, e.g. a proposal already merged)."""
        if self._closed:
            # stopping: the caller's event stays unacknowledged and comes again to the next writer
            raise Unavailable(f"the writer of dataset {self.name} has stopped", retry_after=1.0)
        done: asyncio.Future[list[Envelope[DatasetEvent]]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(command, meta, done))
        self._wake.set()
        return await done

    async def run(self, stopping: asyncio.Event) -> None:
        """Write groups until stopping and nothing is queued; later commands are refused."""
        try:
            await self._run(stopping)
        finally:
            self._closed = True
            for pending in self._queue:
                if not pending.done.done():
                    pending.done.set_exception(Unavailable(f"the writer of dataset {self.name} has stopped"))
            self._queue = []

    async def _run(self, stopping: asyncio.Event) -> None:
        while not (stopping.is_set() and not self._queue):
            if not self._queue:
                self._wake.clear()
                with contextlib.suppress(Stopped):
                    await unless_stopping(self._wake.wait(), stopping)
                continue
            group, self._queue = self._queue[:MAX_GROUP_COMMANDS], self._queue[MAX_GROUP_COMMANDS:]
            async with self._lock:
                try:
                    await self._write(group)
                except Exception as exc:  # the group fails, the writer goes on
                    log.error("dataset group failed", dataset=self.name, error=repr(exc))
                    for pending in group:
                        if not pending.done.done():
                            pending.done.set_exception(exc)
                    await self._reload_quietly()

    async def _write(self, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._deadline_s
        await self._catch_up()
        while group:
            pending_snapshots = dict(self.snapshots)
            decided, outgoing, deferred = self._decide(group, pending_snapshots)
            if not outgoing:
                for pending, envelopes in decided:
                    pending.done.set_result(envelopes)
                group = deferred
                continue
            try:
                ack = await self._store.append_all(outgoing, expected_last_seq=self.version, occ_scope=self._scope)
            except WrongLastSequence:
                self.conflicts += 1
                await self._reload()
                if loop.time() >= give_up_at:
                    raise Unavailable(f"dataset {self.name} is contended; try again", retry_after=1.0) from None
                continue  # decide the whole group again on the state as stored
            except BaseException:
                await self._reload()
                raise
            self.appends += 1
            if ack.duplicate:
                # stored before (a retry after a lost ack): decide again on the stored truth
                await self._reload()
                continue
            self.version = ack.seq
            self.snapshots = pending_snapshots
            for pending, envelopes in decided:
                pending.done.set_result(envelopes)
            group = deferred

    def _decide(
        self, group: list[_Pending], snapshots: dict[int, dict[str, bytes]]
    ) -> tuple[list[tuple[_Pending, list[Envelope[DatasetEvent]]]], list[OutgoingEvent], list[_Pending]]:
        """Decide and fold the group's commands in order, up to the batch's bounds; a refused
        command is answered at once and the rest go on. Returns the decided commands with their
        events, the events to append, and the commands left for the next batch."""
        decided: list[tuple[_Pending, list[Envelope[DatasetEvent]]]] = []
        outgoing: list[OutgoingEvent] = []
        size = 0
        for index, pending in enumerate(group):
            if pending.done.done():  # its caller stopped waiting
                continue
            now = self._clock()
            try:
                events = self.decider.decide(pending.command, self.state, now)
            except CcnError as exc:
                pending.done.set_exception(exc)
                continue
            envelopes = [self._envelope(event, i, now, pending.meta) for i, event in enumerate(events)]
            encoded = [
                OutgoingEvent(
                    subject=subjects.event(AGGREGATE, self.name, event_name(env.data)),
                    data=msgspec.json.encode(env),
                    headers=envelope_headers(env),
                )
                for env in envelopes
            ]
            grown = size + sum(len(e.data) for e in encoded)
            if outgoing and (len(outgoing) + len(encoded) > MAX_GROUP_EVENTS or grown > MAX_GROUP_BYTES):
                return decided, outgoing, group[index:]
            for env in envelopes:
                self._fold(self.state, env.data, snapshots)
            self.commands += 1
            outgoing += encoded
            size = grown
            decided.append((pending, envelopes))
        return decided, outgoing, []

    async def _reload(self) -> None:
        self.reloads += 1
        await self.load()

    async def _reload_quietly(self) -> None:
        """After an unexpected failure the state may hold events never stored: fold it again
        (if even that fails, the next group's append is refused by OCC and reloads)."""
        try:
            await self._reload()
        except Exception as exc:
            log.error("dataset reload failed", dataset=self.name, error=repr(exc))
            self._stale = True  # the next group or read folds it again first

    def _envelope(self, event: DatasetEvent, index: int, now: datetime, meta: EventMeta) -> Envelope[DatasetEvent]:
        event_id = (
            ids.derived_event_id(AGGREGATE, self.name, meta.idempotency_key, str(index))
            if meta.idempotency_key
            else ids.new_event_id()
        )
        return Envelope(
            event_id=event_id,
            type=type(event).__struct_config__.tag,  # type: ignore[arg-type]
            schema_version=1,
            aggregate_id=self.name,
            occurred_at=now,
            correlation_id=meta.correlation_id,
            causation_id=meta.causation_id,
            actor=meta.actor,
            data=event,
        )
