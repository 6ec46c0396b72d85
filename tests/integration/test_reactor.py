"""Reactors against a real JetStream: events become commands exactly once in effect, even when
every event is delivered again (a second consumer replaying the stream from the start)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.errors import BadInput, Unavailable
from ccn_core.eventstore import EventStore, StoredEvent
from ccn_core.ids import new_public_id
from ccn_core.reactor import Reactor
from ccn_core.topology import ConsumerSpec
from ccn_proto.envelope import Actor, Envelope
from tests.conftest import make_settings
from tests.integration.kernel_fixtures import TALLY, Add, TallyDecider, TallyEvent, connect_with_tally

Tally = AggregateRepository[Any, Any, Any]


@pytest.fixture
async def own_nc(isolated_nats: str, tmp_path: Path) -> AsyncIterator[NATS]:
    settings = make_settings(isolated_nats, "postgresql://unused/none", tmp_path)
    async for client in connect_with_tally(isolated_nats, settings):
        yield client


@pytest.fixture
async def store(own_nc: NATS) -> AsyncIterator[EventStore]:
    event_store = EventStore(own_nc)
    await event_store.start()
    yield event_store
    await event_store.close()


@pytest.fixture
def repo(store: EventStore) -> Tally:
    return AggregateRepository(store, TallyDecider(), TallyEvent, stream=TALLY.name)


def spec(name: str) -> ConsumerSpec:
    return ConsumerSpec(durable=name, stream=TALLY.name, filter_subjects=("ccn.tally.*.added",), description="test")


async def run_until(reactor: Reactor, handled: int, timeout: float = 20, linger: float = 0.0) -> None:
    task = asyncio.create_task(reactor.run())
    try:
        async with asyncio.timeout(timeout):
            while reactor.handled < handled:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        await asyncio.sleep(linger)
    finally:
        reactor.stop()
        await task


async def test_a_redelivered_event_does_not_act_twice(own_nc: NATS, repo: Tally) -> None:
    sources = [new_public_id() for _ in range(20)]
    sink = new_public_id()
    meta = EventMeta(correlation_id="corr-reactor", actor=Actor(kind="service", id="test"))
    for source in sources:
        await repo.execute(source, Add(command_id=f"ping-{source}"), meta)

    async def echo(envelope: Envelope[Any], stored: StoredEvent) -> None:
        if not envelope.data.command_id.startswith("ping-"):
            return
        reaction = EventMeta(
            correlation_id=envelope.correlation_id,
            causation_id=envelope.event_id,
            actor=Actor(kind="service", id="echo"),
            idempotency_key=envelope.event_id,
        )
        await repo.execute(sink, Add(command_id=f"pong-{envelope.aggregate_id}"), reaction)

    await run_until(Reactor(own_nc, own_nc.jetstream(), spec("echo_a"), TallyEvent, echo), handled=20)
    # a second consumer replays everything from the start: every event arrives again
    await run_until(Reactor(own_nc, own_nc.jetstream(), spec("echo_b"), TallyEvent, echo), handled=40)

    pongs = await repo.history(sink)
    assert sorted(e.data.command_id for e in pongs) == sorted(f"pong-{s}" for s in sources)
    assert {e.correlation_id for e in pongs} == {"corr-reactor"}
    sources_events = {e.event_id for s in sources for e in await repo.history(s)}
    assert {e.causation_id for e in pongs} == sources_events


async def test_errors_map_to_retry_or_terminate(own_nc: NATS, repo: Tally) -> None:
    meta = EventMeta(correlation_id="corr-errors", actor=Actor(kind="service", id="test"))
    flaky, poison = new_public_id(), new_public_id()
    await repo.execute(flaky, Add(command_id="flaky"), meta)
    await repo.execute(poison, Add(command_id="poison"), meta)
    seen: dict[str, int] = {"flaky": 0, "poison": 0}

    async def handler(envelope: Envelope[Any], stored: StoredEvent) -> None:
        name = envelope.data.command_id
        seen[name] += 1
        if name == "flaky" and seen[name] < 3:
            raise Unavailable("downstream not ready")
        if name == "poison":
            raise BadInput("can never succeed")

    reactor = Reactor(own_nc, own_nc.jetstream(), spec("errors"), TallyEvent, handler, retry_delay_s=0.1)
    # linger: time for a (wrong) redelivery of the poison event to show up
    await run_until(reactor, handled=1, linger=0.5)
    assert seen == {"flaky": 3, "poison": 1}


async def test_a_consumer_made_for_fewer_subjects_is_brought_up_to_the_topology(own_nc: NATS, repo: Tally) -> None:
    """A reactor that learns a new event type (a release adds it to its spec) hears it from then
    on, though its durable consumer was created by an older release with the old subjects."""
    meta = EventMeta(correlation_id="corr-topology", actor=Actor(kind="service", id="test"))
    tallies = [new_public_id() for _ in range(3)]
    for tally in tallies:
        await repo.execute(tally, Add(command_id=f"add-{tally}"), meta)
    heard: list[str] = []

    async def handler(envelope: Envelope[Any], stored: StoredEvent) -> None:
        heard.append(envelope.aggregate_id)

    js = own_nc.jetstream()
    older = ConsumerSpec(durable="learns", stream=TALLY.name, filter_subjects=("ccn.tally.*.reset",), description="v1")
    await Reactor(own_nc, js, older, TallyEvent, handler).ensure_consumer()
    newer = ConsumerSpec(
        durable="learns",
        stream=TALLY.name,
        filter_subjects=("ccn.tally.*.reset", "ccn.tally.*.added"),
        description="v2",
    )
    await run_until(Reactor(own_nc, js, newer, TallyEvent, handler), handled=3)
    assert sorted(heard) == sorted(tallies)
    info = await js.consumer_info(TALLY.name, "learns")
    assert sorted(info.config.filter_subjects or []) == ["ccn.tally.*.added", "ccn.tally.*.reset"]
    assert info.config.description == "v2"


async def test_a_reactor_whose_consumer_is_deleted_makes_it_again_and_goes_on(own_nc: NATS, repo: Tally) -> None:
    meta = EventMeta(correlation_id="corr-gone", actor=Actor(kind="service", id="test"))
    heard: set[str] = set()

    async def handler(envelope: Envelope[Any], stored: StoredEvent) -> None:
        heard.add(envelope.aggregate_id)

    js = own_nc.jetstream()
    reactor = Reactor(own_nc, js, spec("gone"), TallyEvent, handler)
    task = asyncio.create_task(reactor.run())
    try:
        first = new_public_id()
        await repo.execute(first, Add(command_id="first"), meta)
        async with asyncio.timeout(10):
            while first not in heard:
                await asyncio.sleep(0.05)
        await js.delete_consumer(TALLY.name, "gone")  # an operator, or a release replacing it
        second = new_public_id()
        await repo.execute(second, Add(command_id="second"), meta)
        async with asyncio.timeout(15):
            while second not in heard:
                assert not task.done(), task
                await asyncio.sleep(0.05)
    finally:
        reactor.stop()
        await task
