"""Projections: events → Postgres tables, each batch in one transaction with its checkpoint.

The checkpoint (last applied stream sequence) lives in Postgres beside the rows it vouches for,
so a crash anywhere applies no event twice and skips none. One replica projects at a time (it
holds a Postgres advisory lock; the others wait as hot standbys), because a read model must see
events in stream order. The leader (re)creates its named consumer at checkpoint + 1: the
server's idea of the position never overrides the database's.

An event that cannot be applied (it does not decode, or Postgres refuses its values: a NUL in a
text column) never stops the projection: a batch that fails for the event's fault is split
until the event is alone, and that event goes to the dead letter (ccn_core.dead_letter) while
the checkpoint moves past it. A normal batch pays nothing for this. The leader also serves
replays of its dead letters (`ccn deadletter replay`): it applies the event again, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import asyncpg
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ccn_core.commands import CommandContext, CommandServer
from ccn_core.db import Connection
from ccn_core.dead_letter import REPLAY_COMMAND, DeadLetterOffice, error_text, is_poison
from ccn_core.errors import NotFound, Unavailable
from ccn_core.eventstore import StoredEvent
from ccn_core.logging import get_logger
from ccn_core.pull import BatchPuller, ConsumerGone, delivered_event
from ccn_core.stopping import Stopped, unless_stopping
from ccn_core.topology import ConsumerSpec
from ccn_proto.deadletter import ReplayDeadLetter, ReplayDeadLetterReply

log = get_logger("ccn.projection")
_TRANSIENT = (
    asyncpg.TransactionRollbackError,  # deadlock detected, serialization failure
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    OSError,
)
_MAX_RETRY_DELAY_S = 5.0
T = TypeVar("T")
E = TypeVar("E")


class Projection(Protocol):
    @property
    def spec(self) -> ConsumerSpec: ...

    @property
    def tables(self) -> tuple[str, ...]:
        """What a rebuild empties."""
        ...

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        """Apply a batch, in stream order, inside the caller's transaction."""


class LostLeadership(RuntimeError):
    pass


def _lock_key(name: str) -> int:
    return 0x50524F4A_00000000 | zlib.crc32(name.encode())


async def checkpoint(conn: Connection, projection: Projection) -> int:
    await conn.execute(
        "INSERT INTO projection_checkpoints (projection, stream) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        projection.spec.durable,
        projection.spec.stream,
    )
    value = await conn.fetchval(
        "SELECT last_seq FROM projection_checkpoints WHERE projection = $1", projection.spec.durable
    )
    return int(value)


async def apply_batch(pool: asyncpg.Pool, projection: Projection, events: Sequence[StoredEvent], after: int) -> int:
    """Apply the events past `after` and move the checkpoint, atomically. Returns the new checkpoint.

    The checkpoint row is the fence: if it is not where this leader left it, another leader has
    moved it and this batch is abandoned whole."""
    fresh = [event for event in events if event.seq > after]
    if not fresh:
        return after
    last = fresh[-1].seq
    async with pool.acquire() as conn, conn.transaction():
        await _move_checkpoint(conn, projection, after, last)
        await projection.apply(conn, fresh)
    return last


async def pass_over(pool: asyncpg.Pool, projection: Projection, event: StoredEvent, after: int) -> int:
    """Move the checkpoint past an event set aside (dead-lettered), every event before it being
    applied; fenced like a batch. Returns the new checkpoint."""
    if event.seq <= after:
        return after
    async with pool.acquire() as conn:
        await _move_checkpoint(conn, projection, after, event.seq)
    return event.seq


async def _move_checkpoint(conn: Connection, projection: Projection, after: int, last: int) -> None:
    moved = await conn.execute(
        "UPDATE projection_checkpoints SET last_seq = $2, updated_at = now() WHERE projection = $1 AND last_seq = $3",
        projection.spec.durable,
        last,
        after,
    )
    if moved != "UPDATE 1":
        raise LostLeadership(f"{projection.spec.durable}: checkpoint moved by someone else")


async def apply_replayed(pool: asyncpg.Pool, projection: Projection, event: StoredEvent) -> bool:
    """Apply a dead-lettered event again, late, at most once: the replay's row in
    projection_replays commits with the rows it applies. False when an earlier replay did."""
    async with pool.acquire() as conn, conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO projection_replays (projection, stream, stream_seq) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            projection.spec.durable,
            projection.spec.stream,
            event.seq,
        )
        if not first:
            return False
        await projection.apply(conn, [event])
    return True


async def isolate_poison(
    events: Sequence[E],
    apply: Callable[[Sequence[E]], Awaitable[None]],
    set_aside: Callable[[E, Exception], Awaitable[None]],
    at_fault: Callable[[Exception], bool],
) -> None:
    """Apply `events` in order through `apply`. When a run fails for an event's fault
    (`at_fault`), split it in halves and go on with each, first to last: every event that can be
    applied is, and each one that cannot is handed alone to `set_aside`. A batch that succeeds
    costs one call; each poison event about 2·log2(batch) more."""
    try:
        await apply(events)
        return
    except Exception as exc:
        if not at_fault(exc):
            raise
        if len(events) == 1:
            await set_aside(events[0], exc)
            return
    middle = len(events) // 2
    await isolate_poison(events[:middle], apply, set_aside, at_fault)
    await isolate_poison(events[middle:], apply, set_aside, at_fault)


def _event_at_fault(error: Exception) -> bool:
    return not isinstance(error, LostLeadership) and is_poison(error)


async def consumer_from_checkpoint(
    js: JetStreamContext, spec: ConsumerSpec, done_seq: int, *, ack_wait_s: float
) -> BatchPuller:
    """`spec`'s durable consumer made afresh to deliver what follows `done_seq`, acknowledged all at
    once: for a reader whose position of record is a checkpoint of its own (a projection's in
    PostgreSQL, ADR 0002; the governance observer's in `ccn_checkpoints`). Its state lives in the
    server's memory: the reader makes it again at every start and every loss, so the server need
    not rewrite it on disk ten times a second (and fsync it each time under sync_interval: always);
    a server restart forgets it, and the reader's next pull, unanswered, makes it again."""
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(spec.stream, spec.durable)
    config = ConsumerConfig(
        durable_name=spec.durable,
        description=spec.description,
        filter_subjects=list(spec.filter_subjects),
        ack_policy=AckPolicy.ALL,
        ack_wait=ack_wait_s,
        max_ack_pending=-1,
        mem_storage=True,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=done_seq + 1,
    )
    await js.add_consumer(spec.stream, config)
    # the context's connection: nats-py keeps no public handle on it
    return BatchPuller(js._nc, spec.stream, spec.durable)


class ProjectionRunner:
    def __init__(
        self,
        js: JetStreamContext,
        pool: asyncpg.Pool,
        projection: Projection,
        *,
        batch_size: int = 1000,
        idle_wait_s: float = 0.5,
    ) -> None:
        self._js = js
        self._pool = pool
        self._projection = projection
        self._batch_size = batch_size
        self._idle_wait_s = idle_wait_s
        self._stop = asyncio.Event()
        self._dead_letters = DeadLetterOffice(js, projection.spec, "projection")
        # a replay writes between batches, never during one
        self._writing = asyncio.Lock()
        self.position = 0
        self.applied = 0
        self.dead_lettered = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        name = self._projection.spec.durable
        async with self._pool.acquire() as lock_conn:
            while not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(name)):
                if self._stop.is_set():
                    return
                await asyncio.sleep(1.0)
            log.info("projection leader", projection=name)
            # only the leader replays dead letters: it alone writes the projection's tables
            replays = CommandServer(self._js._nc, name, max_concurrency=1, max_waiting=16)
            replays.register(REPLAY_COMMAND, ReplayDeadLetter, self._replay)
            try:
                await replays.start()
                await self._project()
            finally:
                await replays.stop()
                await lock_conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(name))

    async def _subscribe(self) -> BatchPuller:
        """A fresh durable consumer starting just past the committed checkpoint."""
        async with self._pool.acquire() as conn:
            committed = await checkpoint(conn, self._projection)
        return await consumer_from_checkpoint(self._js, self._projection.spec, committed, ack_wait_s=60)

    async def _project(self) -> None:
        async with self._pool.acquire() as conn:
            self.position = await checkpoint(conn, self._projection)
        # The next batch is fetched while this one is written: NATS and Postgres round trips
        # overlap. Two batches in hand at most, so memory stays bounded.
        batches: asyncio.Queue[list[Msg]] = asyncio.Queue(maxsize=2)
        fetcher = asyncio.create_task(self._fetch_into(batches), name=f"{self._projection.spec.durable}-fetch")
        try:
            while True:
                try:
                    msgs = await unless_stopping(batches.get(), self._stop, timeout=self._idle_wait_s)
                except Stopped:
                    return
                except TimeoutError:
                    if fetcher.done():
                        fetcher.result()  # a crashed fetcher stops the projection, loudly
                    continue
                async with self._writing:
                    await isolate_poison(
                        [delivered_event(m) for m in msgs], self._apply_run, self._set_aside, _event_at_fault
                    )
                self.applied += len(msgs)
                await msgs[-1].ack()  # AckPolicy.ALL: acknowledges the whole batch
        finally:
            # Cancelled mid-pull: what the server sends to the dropped inbox meanwhile is never
            # acknowledged, and the next leader's consumer starts again at the checkpoint
            fetcher.cancel()
            await asyncio.wait({fetcher}, timeout=2)

    async def _fetch_into(self, batches: asyncio.Queue[list[Msg]]) -> None:
        """Until cancelled (the projection's end)."""
        puller = await self._subscribe()
        while True:
            try:
                msgs = await puller.fetch(self._batch_size, timeout=self._idle_wait_s)
            except (ConsumerGone, NotFoundError, nats.js.errors.ServiceUnavailableError) as exc:
                # what it had delivered and we had not committed comes again; apply_batch
                # skips what the checkpoint already holds
                log.warning("projection consumer lost; recreating at checkpoint", reason=str(exc))
                puller = await self._subscribe()
                continue
            if msgs:
                await batches.put(msgs)

    async def _apply_run(self, events: Sequence[StoredEvent]) -> None:
        self.position = await self._until_done(
            lambda: apply_batch(self._pool, self._projection, events, self.position), gives_up=_event_at_fault
        )

    async def _set_aside(self, event: StoredEvent, error: Exception) -> None:
        """Dead-letter the event, then move past it. Recorded first: a crash in between meets
        the event again and records it again under the same id, which the stream drops."""
        await self._until_done(lambda: self._dead_letters.record(event, error), gives_up=_never)
        self.position = await self._until_done(
            lambda: pass_over(self._pool, self._projection, event, self.position), gives_up=_never
        )
        self.dead_lettered += 1

    async def _until_done(self, call: Callable[[], Awaitable[T]], *, gives_up: Callable[[Exception], bool]) -> T:
        """Retry what is not the event's fault: what Postgres says is transient (a deadlock with
        another projection updating the same rows, a serialization failure, a dropped
        connection), and what is the system's (a missing table, NATS away), which an operator
        must fix, so it is logged as an error. Safe because a batch and its checkpoint commit
        together or not at all; a projection that cannot apply its next event waits, never
        skips it, unless the event itself is at fault."""
        for attempt in itertools.count(1):
            try:
                return await call()
            except LostLeadership:
                raise
            except Exception as exc:
                if gives_up(exc):
                    raise
                delay = min(_MAX_RETRY_DELAY_S, 0.05 * 2**attempt) * (0.5 + random.random())  # noqa: S311
                report = log.warning if isinstance(exc, _TRANSIENT) else log.error
                report(
                    "projection write failed; retrying",
                    projection=self._projection.spec.durable,
                    error_class=type(exc).__name__,
                    error=error_text(exc),
                    attempt=attempt,
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)
                if self._stop.is_set():
                    raise
        raise AssertionError("unreachable")

    async def _replay(self, request: ReplayDeadLetter, _: CommandContext) -> ReplayDeadLetterReply:
        """Apply a dead-lettered event again (its cause fixed, one hopes), and record how it went."""
        durable = self._projection.spec.durable
        dead_letter = await self._dead_letters.find(request.dead_letter_id)
        if dead_letter is None:
            raise NotFound(f"{durable} has no dead letter {request.dead_letter_id!r}")
        try:
            event = await self._dead_letters.original(dead_letter.record)
        except NotFoundError:
            raise NotFound(
                f"event {dead_letter.record.stream_seq} is no longer in {dead_letter.record.stream}"
            ) from None
        failure: Exception | None = None
        async with self._writing:
            try:
                await apply_replayed(self._pool, self._projection, event)
            except Exception as exc:
                if not _event_at_fault(exc):
                    raise Unavailable(f"{durable} cannot write now: {error_text(exc)}", retry_after=2.0) from exc
                failure = exc
        await self._dead_letters.record_replay(dead_letter, request.replay_id, failure)
        if failure is None:
            return ReplayDeadLetterReply(dead_letter_id=dead_letter.id, outcome="replayed")
        return ReplayDeadLetterReply(dead_letter_id=dead_letter.id, outcome="failed_again", error=error_text(failure))


def _never(_: Exception) -> bool:
    return False


async def rebuild(pool: asyncpg.Pool, *projections: Projection) -> None:
    """Empty the projections' tables and checkpoints; each runner replays from sequence 1 when it
    next takes the lead. Run with the projections' services stopped, or they must restart.

    Projections that write one table (one per stream, e.g. the orchestrator log's) are rebuilt
    together: the table is emptied whole, and only all of them replaying fill it again."""
    if not projections:
        raise ValueError("rebuild needs at least one projection")
    tables = dict.fromkeys(table for projection in projections for table in projection.tables)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(tables)}")
        names = [projection.spec.durable for projection in projections]
        await conn.execute(
            "UPDATE projection_checkpoints SET last_seq = 0, updated_at = now() WHERE projection = ANY($1::text[])",
            names,
        )
        # a replay applied an event late; the rebuild meets it in order, like any other
        await conn.execute("DELETE FROM projection_replays WHERE projection = ANY($1::text[])", names)


@dataclass(frozen=True)
class ColumnarSql:
    """SQL that takes each of its parameters as an array, one value per row: `INSERT ... SELECT
    ... FROM unnest($1::uuid[], $2::text[], ...)` or `UPDATE t ... FROM unnest(...) AS u(...)
    WHERE t.id = u.id`. A group of rows then costs PostgreSQL one statement execution, not one
    per row as an executemany does. An UPDATE joined this way changes a row once however many
    array entries name it, so a group must name each row at most once: execute_per_key's layers
    do (one statement per key per layer)."""

    text: str


Statement = tuple[str | ColumnarSql, tuple[object, ...]]


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def execute_in_order(conn: Connection, statements: Sequence[Statement]) -> None:
    """Run statements in order, sending each run of the same SQL as one statement (ColumnarSql:
    the run's rows as arrays) or one pipelined executemany (plain SQL): order is kept (a row is
    inserted before it is updated) at a fraction of the round trips."""
    start = 0
    while start < len(statements):
        sql = statements[start][0]
        end = start
        while end < len(statements) and statements[end][0] == sql:
            end += 1
        if isinstance(sql, ColumnarSql):
            await conn.execute(sql.text, *_columns([args for _, args in statements[start:end]]))
        elif end - start == 1:
            await conn.execute(sql, *statements[start][1])
        else:
            await conn.executemany(sql, [args for _, args in statements[start:end]])
        start = end


def layer_by_key(keyed: Sequence[tuple[str, Statement]]) -> list[list[Statement]]:
    """Reorder statements that only need ordering per key (typically the aggregate id: rows of
    different aggregates are disjoint): the k-th statement of every key goes to layer k, and
    each layer is grouped by SQL, so a batch of thousands of aggregates costs one execution
    (ColumnarSql) or executemany per (layer, SQL) instead of one per run of identical SQL. Each
    key's order is kept, and a layer holds at most one statement per key."""
    depth: dict[str, int] = {}
    layers: list[dict[str | ColumnarSql, list[Statement]]] = []
    for key, statement in keyed:
        level = depth.get(key, 0)
        depth[key] = level + 1
        if level == len(layers):
            layers.append({})
        layers[level].setdefault(statement[0], []).append(statement)
    return [[statement for group in layer.values() for statement in group] for layer in layers]


async def execute_per_key(conn: Connection, keyed: Sequence[tuple[str, Statement]]) -> None:
    """Run statements ordered per key only (see layer_by_key), batched by SQL."""
    for layer in layer_by_key(keyed):
        await execute_in_order(conn, layer)
