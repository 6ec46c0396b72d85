"""Prometheus metrics, read back from the process registry as a scrape would see them: commands
timed by outcome, consumer lag sampled from the server, HTTP requests by route template, the
job states of the read model, and /metrics on both kinds of HTTP server."""

from __future__ import annotations

import asyncio
import secrets

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from litestar import get
from litestar.params import FromPath
from litestar.testing import AsyncTestClient
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig
from prometheus_client import REGISTRY

from ccn_core.commands import CommandClient, CommandContext, CommandServer
from ccn_core.errors import BadInput, CcnError
from ccn_core.metrics import sample_consumer_lag
from ccn_core.service import health_app, open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import ConsumerSpec
from ccn_scheduler.job_states import STATES, record_job_counts
from ccn_web.http import create_http_app


class Ping(msgspec.Struct, frozen=True):
    text: str


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_commands_are_timed_by_command_and_outcome(nc: NATS) -> None:
    service = f"metrics_{secrets.token_hex(3)}"

    async def ping(request: Ping, _: CommandContext) -> Ping:
        if request.text == "bad":
            raise BadInput("bad ping", field="text")
        return request

    server = CommandServer(nc, service)
    server.register("ping", Ping, ping)
    await server.start()
    client = CommandClient(nc)
    try:
        assert await client.call(service, "ping", Ping("hi"), Ping, correlation_id="m-1") == Ping("hi")
        with pytest.raises(CcnError):
            await client.call(service, "ping", Ping("bad"), Ping, correlation_id="m-2")
        with pytest.raises(CcnError):
            await client.call(service, "nosuch", Ping("hi"), Ping, correlation_id="m-3")
    finally:
        await server.stop()
    count = "ccn_command_seconds_count"
    assert sample(count, service=service, command="ping", outcome="ok") == 1
    assert sample(count, service=service, command="ping", outcome="refused") == 1
    assert sample(count, service=service, command="unknown", outcome="refused") == 1
    assert sample(count, service=service, command="nosuch", outcome="refused") == 0


async def test_consumer_lag_is_what_the_server_has_yet_to_deliver(nc: NATS) -> None:
    js = nc.jetstream()
    stream, durable = f"METRICS_{secrets.token_hex(3).upper()}", "lag_probe"
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    for index in range(5):
        await js.publish(f"{stream.lower()}.event", str(index).encode())
    await js.add_consumer(stream, ConsumerConfig(durable_name=durable))
    spec = ConsumerSpec(durable=durable, stream=stream, filter_subjects=(f"{stream.lower()}.>",), description="t")
    stopping = asyncio.Event()
    sampler = asyncio.create_task(sample_consumer_lag(js, [spec], stopping, every_s=0.05))
    try:
        async with asyncio.timeout(10):
            while sample("ccn_consumer_pending_messages", consumer=durable, stream=stream) != 5:
                await asyncio.sleep(0.02)
        await js.publish(f"{stream.lower()}.event", b"6")
        async with asyncio.timeout(10):
            while sample("ccn_consumer_pending_messages", consumer=durable, stream=stream) != 6:
                await asyncio.sleep(0.02)
    finally:
        stopping.set()
        await sampler
        await js.delete_stream(stream)


async def test_http_requests_are_counted_by_route_template_and_served_at_metrics() -> None:
    @get("/things/{thing_id:str}", sync_to_thread=False)
    def thing(thing_id: FromPath[str]) -> dict[str, str]:
        return {"id": thing_id}

    async def ready() -> tuple[bool, dict[str, str]]:
        return True, {}

    service = f"web_{secrets.token_hex(3)}"
    app = create_http_app(
        service=service, title="t", route_handlers=[thing], ready=ready, max_body_bytes=1024, body_timeout_s=5
    )
    async with AsyncTestClient(app) as client:
        for thing_id in ("a-1", "b-2"):
            assert (await client.get(f"/things/{thing_id}")).status_code == 200
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    count = "ccn_http_request_seconds_count"
    assert sample(count, service=service, method="GET", route="/things/{thing_id}", status="200") == 2
    assert f'service="{service}"' in scraped.text and "a-1" not in scraped.text


async def test_the_health_server_serves_metrics(settings: Settings) -> None:
    record_job_counts({"queued": 4, "claimed": 2})
    async with (
        open_runtime("metrics-probe", settings, needs_postgres=False) as runtime,
        TestClient(TestServer(health_app(runtime))) as client,
    ):
        answer = await client.get("/metrics")
        text = await answer.text()
    assert answer.status == 200 and answer.content_type == "text/plain"
    assert 'ccn_jobs{state="queued"} 4.0' in text
    assert 'ccn_jobs{state="dead"} 0.0' in text  # every state, zero included
    assert set(STATES) == {"queued", "claimed", "validating", "retry_wait", "completed", "dead", "cancelled"}
