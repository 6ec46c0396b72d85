"""The edge's bounds on work it has out (issue #13, overload): past its HTTP requests in flight a
request on the node or job API is answered 503 with Retry-After at once, and past its node
frames in flight a result, failure or heartbeat gets an error frame with retry_after, the result
kept for later; nothing refused changes anything, and work flows again once there is room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import msgspec
import pytest

from ccn_edge.connection_limits import SocketLimits
from tests.conftest import make_settings
from tests.integration.test_batched_frames import batching_node, item, job_view, offers_until
from tests.integration.test_edge_jobs import Edge, create_job, next_frame, registered_node, running_edge

pytestmark = pytest.mark.timeout(90)


@dataclass(frozen=True)
class BoundedEdge:
    edge: Edge
    limits: SocketLimits


@pytest.fixture
async def bounded(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[BoundedEdge]:
    settings = msgspec.structs.replace(
        make_settings(isolated_nats, fresh_database, tmp_path), edge_max_requests_in_flight=1
    )
    async with running_edge(settings) as (running, limits):
        yield BoundedEdge(running, limits)


async def test_past_its_requests_in_flight_the_edge_answers_503_with_retry_after(bounded: BoundedEdge) -> None:
    address = urlsplit(bounded.edge.url)
    # a request whose body has not arrived holds the one place
    _reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(
        b"POST /compute/register-node HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
        b"Content-Length: 64\r\n\r\n{"
    )
    await writer.drain()
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(10):
            while True:  # until the held request is in hand
                async with http.post(f"{bounded.edge.url}/compute/register-node", json={}) as response:
                    if response.status == 503:
                        body = await response.json()
                        break
                await asyncio.sleep(0.02)
        assert response.headers["Retry-After"] == "1"
        assert body["code"] == "unavailable" and "HTTP requests" in body["message"], body
        async with http.get(f"{bounded.edge.url}/readyz") as response:
            assert response.status == 200  # probes are not bounded
        writer.close()
        await writer.wait_closed()
        async with asyncio.timeout(10):
            # the place is given back once the held request ends: the next one is served
            while not await registered(http, bounded.edge):
                await asyncio.sleep(0.05)


async def registered(http: aiohttp.ClientSession, edge: Edge) -> bool:
    async with http.post(
        f"{edge.url}/compute/register-node",
        json={"consent_flag": True, "user_agent": "test-node/0.1"},
        headers={"Idempotency-Key": "0123456789abcdef0123"},
    ) as response:
        return response.status == 201


async def test_past_its_frames_in_flight_results_are_refused_with_retry_after_and_taken_later(
    bounded: BoundedEdge,
) -> None:
    frames = bounded.limits.frames
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, bounded.edge)
        for index in range(2):
            await create_job(bounded.edge, index)
        async with batching_node(http, bounded.edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 2})
            offers = await offers_until(ws, 2)
            frames.count = frames.limit  # as if as many frames as it takes were out at the services
            try:
                await ws.send_json({"type": "results", "results": [item(offer) for offer in offers]})
                refusals = [await next_frame(ws) for _ in offers]
                await ws.send_json({"type": "heartbeat", "job_ids": [offer["job_id"] for offer in offers]})
                heartbeat_refusal = await next_frame(ws)
            finally:
                frames.count = 0
            assert {(r["type"], r["code"], r["job_id"], r["retry_after"]) for r in refusals} == {
                ("error", "unavailable", offer["job_id"], 1.0) for offer in offers
            }
            assert (heartbeat_refusal["code"], heartbeat_refusal["job_id"], heartbeat_refusal["retry_after"]) == (
                "unavailable",
                None,
                1.0,
            )
            for offer in offers:
                assert (await job_view(bounded.edge, offer["job_id"])).status == "claimed", "nothing was recorded"
            # sent again, as a node does after retry_after: taken
            await ws.send_json({"type": "results", "results": [item(offer) for offer in offers]})
            acks = await next_frame(ws)
            assert acks["type"] == "acks" and {ack["job_id"] for ack in acks["acks"]} == {o["job_id"] for o in offers}
        assert frames.refused == 2
