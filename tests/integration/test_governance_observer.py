"""The registry's governance observer against real NATS and PostgreSQL: a node that stops
heartbeating is judged offline and healthy again when it returns; a node failing jobs gets
node.work_recorded and then node.backoff_changed; and a restart, or a crash between sending a
window's records and checkpointing it, loses no window and records none twice; a node whose
results disagree with consensus answers (consensus.node_disagreed on CCN_RESULTS) has them
recorded, once, and its reputation falls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ccn_core.aggregate import AggregateRepository, outgoing_event
from ccn_core.commands import CommandClient
from ccn_core.consent import consent_catalogue
from ccn_core.domain.node import NodeDecider
from ccn_core.ids import new_public_id
from ccn_core.service import Runtime, open_runtime
from ccn_core.topology import CHECKPOINTS, NODES
from ccn_proto.budgets import JobUsage
from ccn_proto.consensus import ConsensusDecided, NodeAgreed, NodeDisagreed
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobClaimed, JobCompleted, JobFailed, JobResultSubmitted
from ccn_proto.nodes import (
    NodeBackoffChanged,
    NodeBudgetsSet,
    NodeEvent,
    NodeHealthChanged,
    NodeMetrics,
    NodeWorkRecorded,
)
from ccn_proto.registry import (
    GetNode,
    Heartbeat,
    HeartbeatReply,
    NodeActionReply,
    NodeView,
    RecordWork,
    RegisterNode,
    RegisterNodeReply,
    SetNodeBudgets,
)
from ccn_registry.app import start_registry
from ccn_registry.observer import CHECKPOINT_KEY, GovernanceObserver, ObserverOptions, WorkCheckpoint
from ccn_registry.work_windows import window_key
from tests.conftest import make_settings

FAST = ObserverOptions(window_s=0.3, liveness_tick_s=0.1)
SCHEDULER = Actor(kind="service", id="scheduler")


@dataclass
class World:
    runtime: Runtime
    commands: CommandClient
    nodes: AggregateRepository[Any, Any, NodeEvent]


@pytest.fixture
async def world(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[World]:
    settings = make_settings(isolated_nats, fresh_database, tmp_path)
    async with open_runtime("registry", settings) as runtime:
        await start_registry(runtime, health=False, observe=False)
        nodes: AggregateRepository[Any, Any, NodeEvent] = AggregateRepository(
            runtime.store, NodeDecider(consent_catalogue()), NodeEvent, stream=NODES.name
        )
        yield World(runtime=runtime, commands=CommandClient(runtime.nc, timeout=10), nodes=nodes)


@contextlib.asynccontextmanager
async def observing(
    world: World, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> AsyncIterator[GovernanceObserver]:
    observer = GovernanceObserver(world.runtime, FAST, clock=clock)
    running = asyncio.create_task(observer.ownership.run())
    try:
        async with asyncio.timeout(15):
            while not observer.ownership.owner:
                await asyncio.sleep(0.02)
        yield observer
    finally:
        observer.ownership.stop()  # steps down and lets the next one in at once
        await asyncio.wait_for(running, timeout=15)


async def register(world: World) -> RegisterNodeReply:
    return await world.commands.call(
        "registry", "register", RegisterNode(consent_flag=True), RegisterNodeReply, correlation_id=new_public_id()
    )


async def heartbeat(world: World, node: RegisterNodeReply, metrics: NodeMetrics | None = None) -> None:
    await world.commands.call(
        "registry",
        "heartbeat",
        Heartbeat(session_token=node.session_token, metrics=metrics),
        HeartbeatReply,
        correlation_id=new_public_id(),
    )


async def job_event(world: World, job_id: str, event: msgspec.Struct, *, at: datetime | None = None) -> int:
    """Append a job event as the scheduler would (at `at`, or now); returns its stream sequence."""
    ack = await world.runtime.store.append(
        outgoing_event("job", job_id, event, correlation_id=job_id, actor=SCHEDULER, occurred_at=at)
    )
    return ack.seq


async def completed_job(
    world: World, node_id: str, *, usage: JobUsage | None = None, at: datetime | None = None
) -> tuple[int, int]:
    job_id = new_public_id()
    first = await job_event(
        world, job_id, JobClaimed(node_id=node_id, attempt=1, lease_until=datetime.now(UTC) + timedelta(minutes=1))
    )
    result = {"ok": True}
    submitted = JobResultSubmitted(
        node_id=node_id, attempt=1, job_type="echo", result=result, checksum="c", usage=usage
    )
    await job_event(world, job_id, submitted, at=at)  # the node's part: its time and usage
    last = await job_event(world, job_id, JobCompleted(node_id=node_id, attempt=1, result=result, checksum="c"))
    return first, last


async def failed_job(world: World, node_id: str) -> int:
    job_id = new_public_id()
    await job_event(
        world, job_id, JobClaimed(node_id=node_id, attempt=1, lease_until=datetime.now(UTC) + timedelta(minutes=1))
    )
    return await job_event(
        world, job_id, JobFailed(node_id=node_id, attempt=1, reason="handler raised", retry_at=datetime.now(UTC))
    )


async def history(world: World, node_id: str) -> list[Envelope[NodeEvent]]:
    return await world.nodes.history(node_id)


async def until(world: World, node_id: str, check: Callable[[list[Envelope[NodeEvent]]], bool]) -> list[Any]:
    async with asyncio.timeout(30):
        while True:
            events = await history(world, node_id)
            if check(events):
                return events
            await asyncio.sleep(0.1)


def work(events: list[Envelope[NodeEvent]]) -> list[NodeWorkRecorded]:
    return [e.data for e in events if isinstance(e.data, NodeWorkRecorded)]


def health(events: list[Envelope[NodeEvent]]) -> list[NodeHealthChanged]:
    return [e.data for e in events if isinstance(e.data, NodeHealthChanged)]


async def test_a_silent_node_goes_offline_and_comes_back_healthy(world: World) -> None:
    skew = timedelta(0)

    def clock() -> datetime:
        return datetime.now(UTC) + skew

    node = await register(world)
    other = await register(world)
    await heartbeat(world, node, NodeMetrics(cpu_load=0.5))
    async with observing(world, clock) as observer:
        async with asyncio.timeout(15):
            while observer.observations_sent < 1:
                await asyncio.sleep(0.05)
        assert health(await history(world, node.node_public_id)) == []  # fresh and healthy: nothing to say
        skew = timedelta(seconds=50)  # fifty seconds of silence pass
        events = await until(world, node.node_public_id, lambda events: len(health(events)) == 1)
        offline = health(events)[0]
        assert (offline.health, offline.previous) == ("offline", "healthy")
        assert offline.silent_s >= 45
        assert offline.reasons[0].startswith("no telemetry for")
        skew = timedelta(0)
        await heartbeat(world, node)  # it returns
        events = await until(world, node.node_public_id, lambda events: len(health(events)) == 2)
        back = health(events)[1]
        assert (back.health, back.previous) == ("healthy", "offline")
        await asyncio.sleep(5 * FAST.liveness_tick_s)
        assert len(health(await history(world, node.node_public_id))) == 2  # reported once each
    # a node that never heartbeated is judged on nothing: the observer sees only samples
    assert health(await history(world, other.node_public_id)) == []


async def test_a_node_that_submits_results_is_not_silent_though_it_sends_no_heartbeat(world: World) -> None:
    skew = timedelta(0)

    def clock() -> datetime:
        return datetime.now(UTC) + skew

    node = await register(world)
    node_id = node.node_public_id
    await heartbeat(world, node)
    async with observing(world, clock) as observer:
        async with asyncio.timeout(15):
            while observer.observations_sent < 1:
                await asyncio.sleep(0.05)
        # thirty seconds pass without a heartbeat, in which the node submits a result
        await completed_job(world, node_id, at=datetime.now(UTC) + timedelta(seconds=30))
        await until(world, node_id, lambda events: bool(work(events)))  # the work watch has read it
        skew = timedelta(seconds=30)
        await asyncio.sleep(10 * FAST.liveness_tick_s)
        assert health(await history(world, node_id)) == []  # heard from by its result: not unstable
        skew = timedelta(seconds=80)  # fifty seconds with neither
        events = await until(world, node_id, lambda events: len(health(events)) == 1)
        assert health(events)[0].health == "offline"
        assert 45 <= health(events)[0].silent_s < 60  # counted from the result, not the heartbeat


async def test_a_node_failing_jobs_gets_its_work_recorded_then_a_backoff(world: World) -> None:
    failing = (await register(world)).node_public_id
    steady = (await register(world)).node_public_id
    async with observing(world):
        for _ in range(4):
            await failed_job(world, failing)
        await completed_job(world, steady)
        events = await until(world, failing, lambda events: any(isinstance(e.data, NodeBackoffChanged) for e in events))
        recorded = work(events)
        assert sum(w.failed for w in recorded) == 4
        names = [e.type for e in events]
        assert names.index("node.work_recorded") < names.index("node.backoff_changed")
        backoff = next(e.data for e in events if isinstance(e.data, NodeBackoffChanged))
        assert (backoff.stage, backoff.previous) == ("mild", "none")
        assert backoff.until is not None
        steady_events = await until(world, steady, lambda events: bool(work(events)))
        assert [(w.completed, w.failed) for w in work(steady_events)] == [(1, 0)]
        assert work(steady_events)[0].total_job_ms >= 0
        assert not any(isinstance(e.data, NodeBackoffChanged) for e in steady_events)


async def test_a_restarted_observer_loses_no_window_and_records_none_twice(world: World) -> None:
    node = (await register(world)).node_public_id

    def total(events: list[Envelope[NodeEvent]]) -> int:
        return sum(w.completed for w in work(events))

    async with observing(world) as first:
        for _ in range(3):
            await completed_job(world, node)
        await until(world, node, lambda events: total(events) == 3)
    assert first.windows_recorded >= 1
    for _ in range(2):
        await completed_job(world, node)  # while no observer runs
    async with observing(world):
        await until(world, node, lambda events: total(events) == 5)
        await asyncio.sleep(5 * FAST.window_s)
    events = await history(world, node)
    assert total(events) == 5
    ids = [e.event_id for e in events if isinstance(e.data, NodeWorkRecorded)]
    assert len(ids) == len(set(ids))


async def test_a_window_cut_and_sent_in_part_before_a_crash_is_finished_once(world: World) -> None:
    """The observer died after writing its cut and sending one node's record: the next one
    sends the other node's, and the first node's is not written again."""
    sent_before = (await register(world)).node_public_id
    not_sent = (await register(world)).node_public_id
    first, _ = await completed_job(world, sent_before)
    await completed_job(world, not_sent)
    _, last = await completed_job(world, sent_before)
    bucket = await world.runtime.js.key_value(CHECKPOINTS.bucket)
    await bucket.put(
        CHECKPOINT_KEY, msgspec.json.encode(WorkCheckpoint(done_seq=first - 1, pending_first=first, pending_last=last))
    )
    key = window_key(first, last)
    now = datetime.now(UTC)
    partial = NodeWorkRecorded(window_start=now, window_end=now, completed=2)
    await world.commands.call(
        "registry",
        "record_work",
        RecordWork(node_id=sent_before, work=partial, key=key),
        NodeActionReply,
        correlation_id="crashed-observer",
    )
    async with observing(world) as observer:
        events = await until(world, not_sent, lambda events: bool(work(events)))
        assert [w.completed for w in work(events)] == [1]
        async with asyncio.timeout(15):
            while observer.windows_recorded < 1:
                await asyncio.sleep(0.05)
        await completed_job(world, sent_before)  # the next window goes on from the checkpoint
        await until(world, sent_before, lambda events: sum(w.completed for w in work(events)) == 3)
    assert [w.completed for w in work(await history(world, sent_before))] == [2, 1]
    checkpoint = msgspec.json.decode((await bucket.get(CHECKPOINT_KEY)).value or b"", type=WorkCheckpoint)
    assert checkpoint.pending_last == 0
    assert checkpoint.done_seq > last


async def test_a_completion_reporting_usage_over_the_nodes_budgets_is_recorded_as_misreported(world: World) -> None:
    held = (await register(world)).node_public_id
    free = (await register(world)).node_public_id
    budgets = NodeBudgetsSet(max_cpu_time_per_job_s=1.0, max_memory_mb=64, by="admin-7")
    await world.commands.call(
        "registry",
        "set_budgets",
        SetNodeBudgets(node_id=held, budgets=budgets),
        NodeActionReply,
        correlation_id=new_public_id(),
    )
    over = JobUsage(cpu_time_s=5.0, max_memory_mb=32, wall_ms=5000)
    async with observing(world):
        await completed_job(world, held, usage=over)
        await completed_job(world, held, usage=JobUsage(cpu_time_s=0.5, max_memory_mb=32, wall_ms=600))
        await completed_job(world, free, usage=over)  # no budgets: nothing to misreport
        held_events = await until(world, held, lambda events: sum(w.completed for w in work(events)) == 2)
        free_events = await until(world, free, lambda events: bool(work(events)))
    assert sum(w.budget_misreported for w in work(held_events)) == 1
    assert [(w.completed, w.budget_misreported) for w in work(free_events)] == [(1, 0)]


async def disagreement(world: World, node_id: str, *, in_a_decision: bool = False) -> int:
    """A consensus.node_disagreed on a job group's aggregate, as the validation service appends
    it: an event of its own or, `in_a_decision`, a step of a `consensus.decided` (ADR 0027);
    returns its CCN_CONSENSUS sequence."""
    group = new_public_id()
    disagreed = NodeDisagreed(node_id=node_id, job_id=group, job_type="extract_text", checksum="f" * 64)
    agreed = NodeAgreed(node_id="another-node", job_id=group, job_type="extract_text")
    event: NodeDisagreed | ConsensusDecided = (
        ConsensusDecided(steps=(agreed, disagreed)) if in_a_decision else disagreed
    )
    validation = Actor(kind="service", id="validation")
    ack = await world.runtime.store.append(
        outgoing_event("consensus", group, event, correlation_id=group, actor=validation)
    )
    return ack.seq


async def test_consensus_disagreements_are_recorded_once_and_lower_the_nodes_reputation(world: World) -> None:
    forger = (await register(world)).node_public_id
    honest = (await register(world)).node_public_id
    async with observing(world):
        for _ in range(2):
            await completed_job(world, forger)
            await completed_job(world, honest)
        for index in range(12):
            await disagreement(world, forger, in_a_decision=index % 2 == 1)
        events = await until(world, forger, lambda events: sum(w.consensus_disagreed for w in work(events)) >= 12)
        await until(world, honest, lambda events: sum(w.completed for w in work(events)) >= 2)
    # the two streams are windowed apart, each under keys of its own
    recorded = [w for w in work(events) if w.consensus_disagreed]
    assert all((w.completed, w.failed) == (0, 0) for w in recorded)
    checkpoints = await world.runtime.js.key_value(CHECKPOINTS.bucket)
    kept = msgspec.json.decode((await checkpoints.get("governance-disagreements")).value or b"", type=WorkCheckpoint)
    assert kept.done_seq >= 12 and kept.pending_last == 0
    # a restarted observer starts past its checkpoint: nothing is recorded twice
    async with observing(world):
        await asyncio.sleep(4 * FAST.window_s)
    assert sum(w.consensus_disagreed for w in work(await history(world, forger))) == 12

    async def reputation(node_id: str) -> tuple[float, int]:
        view = await world.commands.call("registry", "get_node", GetNode(node_id=node_id), NodeView, correlation_id="t")
        return view.reputation.score, view.reputation.inputs.consensus_disagreed

    (forger_score, forger_disagreed), (honest_score, honest_disagreed) = (
        await reputation(forger),
        await reputation(honest),
    )
    assert (forger_disagreed, honest_disagreed) == (12, 0)
    assert forger_score < honest_score - 5
