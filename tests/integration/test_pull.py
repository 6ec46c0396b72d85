"""BatchPuller.next_batch against a real JetStream: what a consumer has is handed over at once,
and on a quiet stream the first message to arrive ends the wait; neither waits out the idle
wait (a minute here, so a pull that did would fail the test's bound)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig

from ccn_core.pull import BatchPuller
from tests.conftest import make_settings
from tests.integration.kernel_fixtures import TALLY, connect_with_tally

IDLE_WAIT_S = 60.0
BOUND_S = 10.0


@pytest.fixture
async def puller(isolated_nats: str, tmp_path: Path) -> AsyncIterator[tuple[NATS, BatchPuller]]:
    settings = make_settings(isolated_nats, "postgresql://unused/none", tmp_path)
    async for client in connect_with_tally(isolated_nats, settings):
        await client.jetstream().add_consumer(
            TALLY.name, ConsumerConfig(durable_name="pull-test", ack_policy=AckPolicy.EXPLICIT)
        )
        yield client, BatchPuller(client, TALLY.name, "pull-test")


async def test_what_the_consumer_has_comes_at_once_though_the_batch_is_not_full(
    puller: tuple[NATS, BatchPuller],
) -> None:
    client, pulls = puller
    js = client.jetstream()
    for index in range(3):
        await js.publish(f"ccn.tally.t{index}.added", b"{}")
    async with asyncio.timeout(BOUND_S):
        msgs = await pulls.next_batch(100, IDLE_WAIT_S)
    assert [m.subject for m in msgs] == ["ccn.tally.t0.added", "ccn.tally.t1.added", "ccn.tally.t2.added"]


async def test_on_a_quiet_stream_the_first_message_to_arrive_ends_the_wait(puller: tuple[NATS, BatchPuller]) -> None:
    client, pulls = puller
    js = client.jetstream()

    async def publish_later() -> None:
        await asyncio.sleep(0.5)
        await js.publish("ccn.tally.late.added", b"{}")

    later = asyncio.create_task(publish_later())
    async with asyncio.timeout(BOUND_S):
        msgs = await pulls.next_batch(100, IDLE_WAIT_S)
    await later
    assert [m.subject for m in msgs] == ["ccn.tally.late.added"]
    for msg in msgs:
        await msg.ack()
    # what arrives next is not lost with the request that ended: the next pull has it
    await js.publish("ccn.tally.next.added", b"{}")
    async with asyncio.timeout(BOUND_S):
        again = await pulls.next_batch(100, IDLE_WAIT_S)
    assert [m.subject for m in again] == ["ccn.tally.next.added"]


async def test_a_quiet_stream_gives_nothing_after_the_idle_wait(puller: tuple[NATS, BatchPuller]) -> None:
    _, pulls = puller
    async with asyncio.timeout(BOUND_S):
        assert await pulls.next_batch(100, 0.2) == []


async def test_a_consumer_at_its_ack_pending_bound_ends_the_pull_at_the_idle_wait(
    isolated_nats: str, tmp_path: Path
) -> None:
    """It delivers what its bound allows and then nothing more: the request must still end (a
    pull with `no_wait` alone would stay open, and the caller take the consumer for gone)."""
    settings = make_settings(isolated_nats, "postgresql://unused/none", tmp_path)
    async for client in connect_with_tally(isolated_nats, settings):
        js = client.jetstream()
        await js.add_consumer(
            TALLY.name, ConsumerConfig(durable_name="bounded", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=2)
        )
        pulls = BatchPuller(client, TALLY.name, "bounded")
        for index in range(5):
            await js.publish(f"ccn.tally.b{index}.added", b"{}")
        async with asyncio.timeout(BOUND_S):
            first = await pulls.next_batch(100, 0.5)
            held = await pulls.next_batch(100, 0.5)  # two unacknowledged: the consumer gives nothing
        assert [m.subject for m in first] == ["ccn.tally.b0.added", "ccn.tally.b1.added"]
        assert held == []
        for msg in first:
            await msg.ack()
        async with asyncio.timeout(BOUND_S):
            after = await pulls.next_batch(100, 0.5)
        assert [m.subject for m in after] == ["ccn.tally.b2.added", "ccn.tally.b3.added"]


async def test_a_consumer_whose_only_message_waits_for_redelivery_ends_the_pull_at_the_idle_wait(
    puller: tuple[NATS, BatchPuller],
) -> None:
    """A reactor's handler that failed asks for its event again later (a nak with a delay): until
    then the consumer has a message it may not deliver, and the pull must still end."""
    client, pulls = puller
    await client.jetstream().publish("ccn.tally.later.added", b"{}")
    async with asyncio.timeout(BOUND_S):
        [msg] = await pulls.next_batch(100, 0.5)
        await msg.nak(delay=2.0)
        assert await pulls.next_batch(100, 0.5) == []
        again = await pulls.next_batch(100, 5.0)
    assert [m.subject for m in again] == ["ccn.tally.later.added"]
