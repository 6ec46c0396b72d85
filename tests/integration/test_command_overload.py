"""Past its capacity a service refuses at once, and a command its caller gave up on is dropped
unread: nothing queues without bound behind slow commands."""

from __future__ import annotations

import asyncio
import secrets
import time

import msgspec
import pytest
from nats.aio.client import Client as NATS
from prometheus_client import REGISTRY

from ccn_core import subjects
from ccn_core.commands import HEADER_DEADLINE, CommandClient, CommandContext, CommandServer
from ccn_core.errors import Unavailable
from ccn_proto.envelope import HEADER_CORRELATION_ID


class Ping(msgspec.Struct, frozen=True):
    text: str


async def test_a_full_service_refuses_at_once_and_recovers(nc: NATS) -> None:
    service = f"overload_{secrets.token_hex(3)}"
    release = asyncio.Event()
    handled: list[str] = []

    async def slow(request: Ping, _: CommandContext) -> Ping:
        await release.wait()
        handled.append(request.text)
        return request

    server = CommandServer(nc, service, max_concurrency=2)
    server.register("ping", Ping, slow)
    await server.start()
    client = CommandClient(nc, timeout=5.0)
    try:
        busy = [
            asyncio.create_task(client.call(service, "ping", Ping(f"b{i}"), Ping, correlation_id="c")) for i in range(2)
        ]
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        with pytest.raises(Unavailable) as refused:
            await client.call(service, "ping", Ping("third"), Ping, correlation_id="c")
        assert time.perf_counter() - started < 1.0  # refused, not queued for the slow ones' time
        assert refused.value.retry_after is not None and refused.value.retry_after > 0
        release.set()
        assert [reply.text for reply in await asyncio.gather(*busy)] == ["b0", "b1"]
        assert (await client.call(service, "ping", Ping("after"), Ping, correlation_id="c")).text == "after"
        assert "third" not in handled
    finally:
        release.set()
        await server.stop()
    dropped = REGISTRY.get_sample_value("ccn_commands_dropped_total", {"service": service, "reason": "overloaded"})
    assert dropped == 1


async def test_a_command_past_its_callers_deadline_is_not_handled(nc: NATS) -> None:
    service = f"deadline_{secrets.token_hex(3)}"
    handled: list[str] = []

    async def ping(request: Ping, _: CommandContext) -> Ping:
        handled.append(request.text)
        return request

    server = CommandServer(nc, service)
    server.register("ping", Ping, ping)
    await server.start()
    try:
        late = {HEADER_CORRELATION_ID: "c", HEADER_DEADLINE: f"{time.time() - 5:.3f}"}
        await nc.publish(subjects.command(service, "ping"), msgspec.json.encode(Ping("late")), headers=late)
        in_time = CommandClient(nc)
        assert (await in_time.call(service, "ping", Ping("on time"), Ping, correlation_id="c")).text == "on time"
        assert handled == ["on time"]
    finally:
        await server.stop()
