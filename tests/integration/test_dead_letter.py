"""Dead letters against real JetStream and PostgreSQL: a poison event in the middle of a batch is
set aside and the projection goes on; a reactor dead-letters what does not decode, what can
never succeed and what fails past max_deliver; the owner replays each once it is fixed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import msgspec
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig

from ccn_analytics.dead_letter_projection import DeadLetterLogProjection, DeadLetterReadModel
from ccn_core import ids
from ccn_core.commands import CommandClient
from ccn_core.db import Connection
from ccn_core.dead_letter import REPLAY_COMMAND, decode_dead_letter_event
from ccn_core.errors import BadInput, Unavailable
from ccn_core.eventstore import EventStore, StoredEvent
from ccn_core.projection import Projection, ProjectionRunner
from ccn_core.reactor import Reactor
from ccn_core.topology import DEADLETTER, ConsumerSpec
from ccn_proto.deadletter import DeadLettered, ReplayDeadLetter, ReplayDeadLetterReply
from ccn_proto.envelope import HEADER_CORRELATION_ID, HEADER_TYPE, Envelope
from tests.integration.kernel_fixtures import TALLY, TallyEvent


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(fresh_database, min_size=2, max_size=6) as created:
        await created.execute("CREATE TABLE tally_names (seq bigint PRIMARY KEY, name text NOT NULL)")
        yield created


class Named(msgspec.Struct, frozen=True):
    name: str


_decode_named = msgspec.json.Decoder(Named).decode


class NamesProjection:
    """Each event's name into tally_names; a NUL in a name is refused by PostgreSQL until the
    projection is 'fixed' to strip it."""

    spec = ConsumerSpec(
        durable="test_names", stream=TALLY.name, filter_subjects=("ccn.tally.>",), description="dead letter test"
    )
    tables = ("tally_names",)

    def __init__(self) -> None:
        self.strip_nul = False
        self.batches = 0

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        self.batches += 1
        rows = []
        for stored in events:
            name = _decode_named(stored.data).name
            rows.append((stored.seq, name.replace("\x00", "") if self.strip_nul else name))
        await conn.executemany("INSERT INTO tally_names (seq, name) VALUES ($1, $2)", rows)


async def publish(nc: NATS, subject: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    ack = await nc.jetstream().publish(subject, body, headers=headers)
    return int(ack.seq)


async def dead_letter_records(nc: NATS) -> list[tuple[str, DeadLettered]]:
    store = EventStore(nc)
    await store.start()
    try:
        stored = await store.read(DEADLETTER.name, "ccn.deadletter.*.recorded")
    finally:
        await store.close()
    records = []
    for event in stored:
        envelope = decode_dead_letter_event(event.data)
        assert isinstance(envelope.data, DeadLettered)
        records.append((envelope.correlation_id, envelope.data))
    return records


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout}s: {what}") from None


async def run_projection(runner: ProjectionRunner) -> asyncio.Task[None]:
    return asyncio.create_task(runner.run())


async def stop(runner: ProjectionRunner | Reactor, task: asyncio.Task[None]) -> None:
    runner.stop()
    await asyncio.wait_for(task, 15)


async def project_all(pool: asyncpg.Pool, nc: NATS, projection: Projection, position: int) -> None:
    runner = ProjectionRunner(nc.jetstream(), pool, projection, idle_wait_s=0.1)
    task = await run_projection(runner)

    async def caught_up() -> bool:
        if task.done():
            task.result()
        return runner.position >= position

    try:
        await until(caught_up, f"{projection.spec.durable} at {position}")
    finally:
        await stop(runner, task)


async def replay(nc: NATS, consumer: str, dead_letter: str, replay_id: str | None = None) -> ReplayDeadLetterReply:
    request = ReplayDeadLetter(dead_letter_id=dead_letter, replay_id=replay_id or ids.new_event_id())
    return await CommandClient(nc, timeout=10).call(
        consumer, REPLAY_COMMAND, request, ReplayDeadLetterReply, correlation_id="corr-replay"
    )


async def test_a_poison_event_mid_batch_is_dead_lettered_and_replayed_once_fixed(
    own_nc: NATS, pool: asyncpg.Pool
) -> None:
    seqs: dict[str, int] = {}
    for i in range(40):
        if i == 13:
            headers = {HEADER_TYPE: "tally.named", HEADER_CORRELATION_ID: "corr-nul", "Nats-Msg-Id": "poison-nul"}
            seqs["nul"] = await publish(own_nc, "ccn.tally.t-13.named", b'{"name": "agent\\u0000x"}', headers)
        elif i == 27:
            seqs["garbage"] = await publish(own_nc, "ccn.tally.t-27.named", b'{"name": ')
        else:
            await publish(own_nc, f"ccn.tally.t-{i}.named", msgspec.json.encode(Named(name=f"name-{i}")))
    last = max(seqs.values()) + 12

    projection = NamesProjection()
    runner = ProjectionRunner(own_nc.jetstream(), pool, projection, batch_size=1000, idle_wait_s=0.1)
    task = await run_projection(runner)

    async def caught_up() -> bool:
        if task.done():
            task.result()
        return runner.position >= last

    try:
        await until(caught_up, "the projection past both poison events")
        assert not task.done()  # it goes on: the poison did not stop it
        names = {row["seq"]: row["name"] for row in await pool.fetch("SELECT seq, name FROM tally_names")}
        assert sorted(names) == [seq for seq in range(1, last + 1) if seq not in seqs.values()]
        assert (
            await pool.fetchval("SELECT last_seq FROM projection_checkpoints WHERE projection = 'test_names'") == last
        )
        assert runner.dead_lettered == 2

        records = await dead_letter_records(own_nc)
        by_seq = {record.stream_seq: (correlation, record) for correlation, record in records}
        assert sorted(by_seq) == sorted(seqs.values())
        correlation, nul = by_seq[seqs["nul"]]
        assert (nul.consumer, nul.kind, nul.stream, nul.subject) == (
            "test_names",
            "projection",
            TALLY.name,
            "ccn.tally.t-13.named",
        )
        assert (nul.event_type, nul.event_id, correlation) == ("tally.named", "poison-nul", "corr-nul")
        assert nul.error_class == "CharacterNotInRepertoireError" and "SQLSTATE 22021" in nul.error_message
        assert by_seq[seqs["garbage"]][1].error_class == "DecodeError"

        # operators see them: the orchestrator log and the dead_letters read model
        dead_letter_position = (await own_nc.jetstream().stream_info(DEADLETTER.name)).state.last_seq
        await project_all(pool, own_nc, DeadLetterLogProjection(), dead_letter_position)
        await project_all(pool, own_nc, DeadLetterReadModel(), dead_letter_position)
        logged = await pool.fetch(
            "SELECT event, correlation_id, details->>'stream_seq' AS seq, details->>'replay' AS replay"
            " FROM orchestrator_log WHERE stream = 'CCN_DEADLETTER' ORDER BY stream_seq"
        )
        nul_id = f"test_names-{TALLY.name}-{seqs['nul']}"
        garbage_id = f"test_names-{TALLY.name}-{seqs['garbage']}"
        assert [(r["event"], r["correlation_id"], int(r["seq"]), r["replay"]) for r in logged] == [
            ("event_dead_lettered", "corr-nul", seqs["nul"], f"ccn deadletter replay {nul_id}"),
            ("event_dead_lettered", garbage_id, seqs["garbage"], f"ccn deadletter replay {garbage_id}"),
        ]

        # the cause is fixed for one of them: its replay applies it, once; the other fails again
        projection.strip_nul = True
        replayed = await replay(own_nc, "test_names", nul_id, replay_id="r-1")
        assert (replayed.outcome, replayed.error) == ("replayed", None)
        assert await pool.fetchval("SELECT name FROM tally_names WHERE seq = $1", seqs["nul"]) == "agentx"
        again = await replay(own_nc, "test_names", nul_id)
        assert again.outcome == "replayed"  # applied by the first replay; not twice
        failed = await replay(own_nc, "test_names", garbage_id)
        assert failed.outcome == "failed_again" and failed.error == "Input data was truncated"
        with pytest.raises(Exception, match="no dead letter"):
            await replay(own_nc, "test_names", f"test_names-{TALLY.name}-3")
    finally:
        await stop(runner, task)

    dead_letter_position = (await own_nc.jetstream().stream_info(DEADLETTER.name)).state.last_seq
    await project_all(pool, own_nc, DeadLetterReadModel(), dead_letter_position)
    rows = await pool.fetch("SELECT dead_letter_id, status, replays, last_replay_error FROM dead_letters ORDER BY 1")
    assert [(r["dead_letter_id"], r["status"], r["replays"]) for r in rows] == [
        (nul_id, "replayed", 2),
        (garbage_id, "failed_again", 1),
    ]
    assert rows[1]["last_replay_error"].startswith("DecodeError")


async def test_a_database_fault_is_waited_out_not_dead_lettered(own_nc: NATS, pool: asyncpg.Pool) -> None:
    """A missing table is the system's fault: the projection waits for it rather than pushing
    every event into the dead letter."""
    await pool.execute("ALTER TABLE tally_names RENAME TO tally_names_away")
    seq = await publish(own_nc, "ccn.tally.t-1.named", msgspec.json.encode(Named(name="kept")))
    projection = NamesProjection()
    runner = ProjectionRunner(own_nc.jetstream(), pool, projection, idle_wait_s=0.1)
    task = await run_projection(runner)
    try:
        await until(lambda: _at_least(projection, 3), "a few failed attempts")
        assert runner.position == 0 and runner.dead_lettered == 0
        await pool.execute("ALTER TABLE tally_names_away RENAME TO tally_names")

        async def caught_up() -> bool:
            return runner.position >= seq

        await until(caught_up, "the projection once the table is back")
    finally:
        await stop(runner, task)
    assert await pool.fetchval("SELECT name FROM tally_names WHERE seq = $1", seq) == "kept"
    assert await dead_letter_records(own_nc) == []


async def _at_least(projection: NamesProjection, batches: int) -> bool:
    return projection.batches >= batches


def tally_spec(name: str) -> ConsumerSpec:
    return ConsumerSpec(durable=name, stream=TALLY.name, filter_subjects=("ccn.tally.*.added",), description="test")


async def test_a_reactor_dead_letters_what_it_can_never_process_and_replays_it(own_nc: NATS) -> None:
    js = own_nc.jetstream()
    # an older release's consumer, which let the server drop a message after 20 deliveries
    await js.add_consumer(
        TALLY.name,
        ConsumerConfig(
            durable_name="test_reactor",
            filter_subjects=["ccn.tally.*.added"],
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=20,
        ),
    )

    def added(command_id: str) -> bytes:
        return msgspec.json.encode(
            {
                "event_id": ids.new_event_id(),
                "type": "tally.added",
                "schema_version": 1,
                "aggregate_id": command_id,
                "occurred_at": "2026-12-06T12:00:00Z",
                "correlation_id": f"corr-{command_id}",
                "causation_id": None,
                "actor": {"kind": "service", "id": "test"},
                "data": {"type": "tally.added", "command_id": command_id},
            }
        )

    seqs = {
        "ok-1": await publish(own_nc, "ccn.tally.a.added", added("ok-1")),
        "undecodable": await publish(own_nc, "ccn.tally.b.added", b'{"event_id": 1}'),
        "terminate": await publish(own_nc, "ccn.tally.c.added", added("terminate")),
        "retry": await publish(own_nc, "ccn.tally.d.added", added("retry")),
        "ok-2": await publish(own_nc, "ccn.tally.e.added", added("ok-2")),
    }
    fixed = False
    seen: dict[str, int] = {}

    async def handler(envelope: Envelope[Any], stored: StoredEvent) -> None:
        name = envelope.data.command_id
        seen[name] = seen.get(name, 0) + 1
        if fixed:
            return
        if name == "terminate":
            raise BadInput("can never succeed")
        if name == "retry":
            raise Unavailable("downstream never comes back")

    reactor = Reactor(own_nc, js, tally_spec("test_reactor"), TallyEvent, handler, max_deliver=3, retry_delay_s=0.05)
    task = asyncio.create_task(reactor.run())

    async def done() -> bool:
        if task.done():
            task.result()
        return reactor.dead_lettered >= 3 and reactor.handled >= 2

    try:
        await until(done, "three dead letters and two handled events")
        assert (await js.consumer_info(TALLY.name, "test_reactor")).config.max_deliver == -1
        records = {record.stream_seq: record for _, record in await dead_letter_records(own_nc)}
        assert sorted(records) == sorted(seqs[k] for k in ("undecodable", "terminate", "retry"))
        undecodable, terminate, retry = (records[seqs[k]] for k in ("undecodable", "terminate", "retry"))
        assert (undecodable.kind, undecodable.consumer, undecodable.error_class) == (
            "reactor",
            "test_reactor",
            "ValidationError",
        )
        assert (terminate.error_class, terminate.error_message, terminate.deliveries) == (
            "BadInput",
            "can never succeed",
            1,
        )
        assert (retry.error_class, retry.deliveries) == ("Unavailable", 3)
        assert seen == {"ok-1": 1, "ok-2": 1, "terminate": 1, "retry": 3}

        fixed = True
        retry_id = f"test_reactor-{TALLY.name}-{seqs['retry']}"
        assert (await replay(own_nc, "test_reactor", retry_id)).outcome == "replayed"
        assert seen["retry"] == 4
        undecodable_id = f"test_reactor-{TALLY.name}-{seqs['undecodable']}"
        assert (await replay(own_nc, "test_reactor", undecodable_id)).outcome == "failed_again"
    finally:
        await stop(reactor, task)
    # nothing was delivered again after it was dead-lettered
    assert seen == {"ok-1": 1, "ok-2": 1, "terminate": 1, "retry": 4}


async def test_with_two_replicas_only_the_leader_replays_and_applies_once(own_nc: NATS, pool: asyncpg.Pool) -> None:
    good = await publish(own_nc, "ccn.tally.t-1.named", msgspec.json.encode(Named(name="fine")))
    poison = await publish(own_nc, "ccn.tally.t-2.named", b'{"name": "nul\\u0000"}')
    projections = [NamesProjection(), NamesProjection()]
    runners = [ProjectionRunner(own_nc.jetstream(), pool, p, idle_wait_s=0.1) for p in projections]
    tasks = [await run_projection(runner) for runner in runners]
    try:

        async def past_the_poison() -> bool:
            return max(runner.position for runner in runners) >= poison

        await until(past_the_poison, "the leader past the poison event")
        leader = next(index for index, runner in enumerate(runners) if runner.position >= poison)
        assert runners[1 - leader].position == 0  # the standby waits on the advisory lock
        for projection in projections:
            projection.strip_nul = True
        dead_letter = f"test_names-{TALLY.name}-{poison}"
        # asked twice at once (two operators): the leader applies it once, both hear 'replayed'
        replies = await asyncio.gather(*(replay(own_nc, "test_names", dead_letter) for _ in range(2)))
        assert [reply.outcome for reply in replies] == ["replayed", "replayed"]
        assert projections[leader].batches >= 2 and projections[1 - leader].batches == 0
    finally:
        for runner, task in zip(runners, tasks, strict=True):
            await stop(runner, task)
    rows = await pool.fetch("SELECT seq, name FROM tally_names ORDER BY seq")
    assert [(r["seq"], r["name"]) for r in rows] == [(good, "fine"), (poison, "nul")]
    assert await pool.fetchval("SELECT count(*) FROM projection_replays") == 1
