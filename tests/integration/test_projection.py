"""Projections against real JetStream and Postgres: a crash mid-batch applies nothing twice and
skips nothing; dropping the read model and replaying from sequence 1 rebuilds it row for row."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_core import ids
from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.domain.node import (
    AdminAction,
    NodeDecider,
    OptOut,
    RecordConsent,
    RecordRateLimited,
    RecordWork,
    Register,
    SetBudgets,
)
from ccn_core.eventstore import EventStore, StoredEvent
from ccn_core.projection import ProjectionRunner, rebuild
from ccn_core.topology import NODES
from ccn_proto.envelope import Actor
from ccn_proto.nodes import NodeBudgetsSet, NodeEvent, NodeRateLimited, NodeRegistered, NodeWorkRecorded
from ccn_registry.read_model import NodeReadModel
from tests.conftest import free_port, with_topology
from tests.support.servers import EmbeddedNats, start_nats

NODE_COUNT = 120


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(fresh_database, min_size=2, max_size=4) as created:
        yield created


NodeRepository = AggregateRepository[Any, Any, Any]


async def governed(repo: NodeRepository, node: str, i: int) -> int:
    """Every fourth node is governed: work records, refusals, budgets, a ban or a shadow-ban and
    an unban; the events its commands wrote."""
    now = datetime.now(UTC)
    admin = EventMeta(correlation_id=f"admin-{i}", actor=Actor(kind="admin", id="ops"))
    observer = EventMeta(correlation_id=f"obs-{i}", actor=Actor(kind="service", id="registry"))
    work = NodeWorkRecorded(window_start=now, window_end=now, completed=i % 7, failed=3 + i % 2, total_job_ms=900)
    refused = NodeRateLimited(window_start=now, window_end=now, refused={"claims": 10 + i})
    commands: list[tuple[object, EventMeta]] = [
        (RecordWork(work=work), observer),
        (RecordRateLimited(refused=refused), observer),
        (SetBudgets(budgets=NodeBudgetsSet(max_memory_mb=256 + i, by="ops")), admin),
        (AdminAction(action="ban" if i % 8 == 0 else "shadow_ban", reason=f"case {i}", by="ops"), admin),
    ]
    if i % 16 == 0:
        commands.append((AdminAction(action="unban", reason="appeal", by="ops"), admin))
    written = 0
    for command, meta in commands:
        written += len((await repo.execute(node, command, meta)).events)  # type: ignore[arg-type]
    return written


async def write_node_histories(nc: NATS, count: int) -> int:
    """Register `count` nodes; consent for all, opt-out for every third, governance for every
    fourth. Returns events written."""
    store = EventStore(nc, timeout=10)
    await store.start()
    repo = AggregateRepository(store, NodeDecider(consent_catalogue()), NodeEvent, stream=NODES.name)
    version = current_consent_version()

    async def one(i: int) -> int:
        node, secret = ids.new_public_id(), ids.new_secret()
        meta = EventMeta(correlation_id=f"corr-{i}", actor=Actor(kind="node", id=node))
        registered = NodeRegistered(
            node_id=node,
            api_token_hash=ids.token_hash(secret),
            session_id=ids.new_public_id(),
            session_token_hash=ids.token_hash("s" + secret),
            consent_flag=True,
            user_agent=f"agent-{i}",
        )
        await repo.execute(node, Register(registered=registered), meta)
        consent = RecordConsent(api_secret=secret, consent_version=version, consent_hash=consent_catalogue()[version])
        await repo.execute(node, consent, meta)
        written = 2 + (await governed(repo, node, i) if i % 4 == 0 else 0)
        if i % 3 == 0 and i % 4 != 0:  # a banned node cannot opt out: its token is refused
            await repo.execute(node, OptOut(api_secret=secret, reason="test"), meta)
            return written + 1
        return written

    written = sum(await asyncio.gather(*(one(i) for i in range(count))))
    await store.close()
    return written


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple[object, ...]]]:
    async with pool.acquire() as conn:
        return {
            table: [tuple(row) for row in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("community_nodes", "community_node_sessions")
        }


async def project_until(runner: ProjectionRunner, position: int, timeout: float = 30) -> None:
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(timeout):
            while runner.position < position:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
    finally:
        runner.stop()
        await asyncio.gather(task, return_exceptions=True)


class CrashingOnce:
    """Dies inside its third batch, after some of the batch's rows were written: cancelled, as a
    killed process would stop (an error of its own would be the event's fault, and dead-lettered)."""

    def __init__(self) -> None:
        self.inner = NodeReadModel()
        self.spec = self.inner.spec
        self.tables = self.inner.tables
        self.batches = 0

    async def apply(self, conn: asyncpg.Connection, events: Sequence[StoredEvent]) -> None:
        self.batches += 1
        await self.inner.apply(conn, events[: len(events) // 2])
        if self.batches == 3:
            raise asyncio.CancelledError("killed mid-batch")
        await self.inner.apply(conn, events[len(events) // 2 :])


async def stream_last_seq(nc: NATS) -> int:
    info = await nc.jetstream().stream_info(NODES.name)
    return int(info.state.last_seq)


async def test_a_crash_mid_batch_applies_every_event_exactly_once(own_nc: NATS, pool: asyncpg.Pool) -> None:
    written = await write_node_histories(own_nc, NODE_COUNT)
    last = await stream_last_seq(own_nc)
    assert last == written

    crashing = ProjectionRunner(own_nc.jetstream(), pool, CrashingOnce(), batch_size=50)
    with pytest.raises(asyncio.CancelledError):
        await project_until(crashing, last)
    assert crashing.position == 100, "the two good batches are committed, the third rolled back whole"

    restarted = ProjectionRunner(own_nc.jetstream(), pool, NodeReadModel(), batch_size=50)
    await project_until(restarted, last)
    async with pool.acquire() as conn:
        nodes = await conn.fetch("SELECT * FROM community_nodes")
        sessions = await conn.fetch("SELECT * FROM community_node_sessions")
        checkpoint = await conn.fetchval("SELECT last_seq FROM projection_checkpoints")
    assert checkpoint == last
    assert len(nodes) == NODE_COUNT and len(sessions) == NODE_COUNT
    assert all(row["consent_version"] == current_consent_version() for row in nodes)
    opted_out = [row for row in nodes if not row["is_active"]]
    assert len(opted_out) == sum(1 for i in range(NODE_COUNT) if i % 3 == 0 and i % 4 != 0)
    # the governed quarter: counted once each, whatever batch the crash cut
    governed = [row for row in nodes if row["budgets"] is not None]
    assert len(governed) == NODE_COUNT // 4
    assert sum(row["jobs_failed"] for row in nodes) == sum(3 + i % 2 for i in range(0, NODE_COUNT, 4))
    assert sum(row["requests_refused"] for row in nodes) == sum(10 + i for i in range(0, NODE_COUNT, 4))
    assert sum(row["is_banned"] for row in nodes) == sum(1 for i in range(0, NODE_COUNT, 8) if i % 16)
    assert sum(row["is_shadow_banned"] for row in nodes) == sum(1 for i in range(4, NODE_COUNT, 8))
    assert {row["backoff_stage"] for row in governed} == {"mild", "moderate"}
    assert all(row["opt_out_reason"] == "test" and row["opted_out_at"] is not None for row in opted_out)
    inactive_sessions = {row["node_id"] for row in sessions if not row["is_active"]}
    assert inactive_sessions == {row["node_public_id"] for row in opted_out}


async def test_dropping_and_replaying_rebuilds_the_tables_row_for_row(own_nc: NATS, pool: asyncpg.Pool) -> None:
    await write_node_histories(own_nc, NODE_COUNT)
    last = await stream_last_seq(own_nc)
    live = ProjectionRunner(own_nc.jetstream(), pool, NodeReadModel(), batch_size=37)
    await project_until(live, last)
    before = await snapshot(pool)
    assert len(before["community_nodes"]) == NODE_COUNT

    await rebuild(pool, NodeReadModel())
    assert (await snapshot(pool))["community_nodes"] == []
    replay = ProjectionRunner(own_nc.jetstream(), pool, NodeReadModel(), batch_size=1000)
    await project_until(replay, last)
    assert await snapshot(pool) == before


async def test_only_one_replica_projects_at_a_time(own_nc: NATS, pool: asyncpg.Pool) -> None:
    await write_node_histories(own_nc, 30)
    last = await stream_last_seq(own_nc)
    first = ProjectionRunner(own_nc.jetstream(), pool, NodeReadModel())
    second = ProjectionRunner(own_nc.jetstream(), pool, NodeReadModel())
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    async with asyncio.timeout(30):
        while max(first.position, second.position) < last:
            await asyncio.sleep(0.05)
    assert sorted([first.applied, second.applied]) == [0, last], "the standby applied nothing"
    first.stop()
    second.stop()
    await asyncio.gather(*tasks)


class DeadlockedOnce:
    """Postgres picks this batch as a deadlock victim once, after writing part of it."""

    def __init__(self) -> None:
        self.inner = NodeReadModel()
        self.spec = self.inner.spec
        self.tables = self.inner.tables
        self.failures = 0

    async def apply(self, conn: asyncpg.Connection, events: Sequence[StoredEvent]) -> None:
        await self.inner.apply(conn, events)
        if self.failures == 0:
            self.failures += 1
            raise asyncpg.DeadlockDetectedError("deadlock detected")


async def test_a_transient_postgres_error_is_retried_not_fatal(own_nc: NATS, pool: asyncpg.Pool) -> None:
    await write_node_histories(own_nc, 30)
    last = await stream_last_seq(own_nc)
    projection = DeadlockedOnce()
    runner = ProjectionRunner(own_nc.jetstream(), pool, projection, batch_size=500)
    await project_until(runner, last)
    assert projection.failures == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT last_seq FROM projection_checkpoints") == last
        nodes = await conn.fetchval("SELECT count(*) FROM community_nodes")
    assert nodes == await registered_nodes_in_stream(own_nc)


async def registered_nodes_in_stream(nc: NATS) -> int:
    info = await nc.jetstream().stream_info(NODES.name, subjects_filter="ccn.node.*.registered")
    return len(info.state.subjects or {})


async def test_a_stop_ends_an_idle_wait_at_once_and_a_restart_resumes_at_the_checkpoint(
    own_nc: NATS, pool: asyncpg.Pool
) -> None:
    """Idle waits of a minute: a stop that waited one out (between batches, or for the pull in
    flight) would take the minute. Batches of one, so that catching up waits for no expiry. The
    restart must apply what came meanwhile, and once."""
    await write_node_histories(own_nc, 20)
    caught_up = await stream_last_seq(own_nc)
    first = ProjectionRunner(own_nc.jetstream(), pool, NodeReadModel(), batch_size=1, idle_wait_s=60)
    task = asyncio.create_task(first.run())
    try:
        async with asyncio.timeout(30):
            while first.position < caught_up:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # idle now: waiting on its queue, its pull open at the server
        first.stop()
        async with asyncio.timeout(10):
            await task
    finally:
        first.stop()
        task.cancel()

    await write_node_histories(own_nc, 10)
    last = await stream_last_seq(own_nc)
    restarted = ProjectionRunner(own_nc.jetstream(), pool, NodeReadModel(), batch_size=1, idle_wait_s=60)
    await project_until(restarted, last)
    assert restarted.applied == last - caught_up
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM community_nodes") == 30


async def jetstream_back(nc: NATS) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                await nc.jetstream().stream_info(NODES.name)
                return
            except Exception:  # reconnecting, or the server still recovering its streams
                await asyncio.sleep(0.1)


async def test_a_projection_carries_on_across_a_nats_server_killed_and_restarted(
    tmp_path: Path, pool: asyncpg.Pool
) -> None:
    """The consumer lives in the server's memory only (its position is the checkpoint in
    PostgreSQL): a server killed with SIGKILL forgets it, and the runner makes it again at the
    checkpoint. Every event is applied, once."""
    if os.environ.get("CCN_NATS_URL"):
        pytest.skip("kills its own NATS server; CCN_NATS_URL points at a shared one")
    port = free_port()
    server = start_nats(tmp_path / "nats", port)
    url = await with_topology(str(server.url))
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    runner = ProjectionRunner(nc.jetstream(), pool, NodeReadModel(), batch_size=50, idle_wait_s=0.2)
    task = asyncio.create_task(runner.run())
    try:
        await write_node_histories(nc, 40)
        first = await stream_last_seq(nc)
        async with asyncio.timeout(30):
            while runner.position < first:
                await asyncio.sleep(0.05)
        assert isinstance(server, EmbeddedNats)
        os.kill(server.running.pid, signal.SIGKILL)
        server.running.process.wait(timeout=10)
        server = start_nats(tmp_path / "nats", port)  # the same store, the same port
        await jetstream_back(nc)
        await write_node_histories(nc, 40)
        last = await stream_last_seq(nc)
        assert last > first
        async with asyncio.timeout(60):
            while runner.position < last:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        assert runner.applied == last, "each event applied once"
    finally:
        runner.stop()
        await asyncio.gather(task, return_exceptions=True)
        await nc.close()
        server.stop()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM community_nodes") == 80
