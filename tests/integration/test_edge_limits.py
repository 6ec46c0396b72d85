"""The edge's connection limits against a real edge, registry and scheduler on real NATS and
Postgres, with small caps: silent sockets past the per-address and per-edge caps are refused with
a typed error frame and close 1013 while a well-behaved node still connects; a node over its
connection cap is refused with `conflict` and close 1008 while its connections keep working; a
stalled body gets 408 and stalled headers a closed connection; every exit path gives its slot
back. Each test connects from its own loopback addresses (127.0.0.x), so each has its own ip_hashes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from ccn_edge.connection_limits import SocketLimits
from tests.conftest import make_settings
from tests.integration.test_edge_jobs import Edge, hello, next_frame, registered_node, running_edge

pytestmark = pytest.mark.timeout(90)

PER_IP = 3
TOTAL = 5
PER_NODE = 2
BODY_TIMEOUT_S = 1.0
HEADERS_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class LimitedEdge:
    edge: Edge
    limits: SocketLimits

    @property
    def ws_url(self) -> str:
        return f"{self.edge.url.replace('http', 'ws')}/ws"


@pytest.fixture
async def limited(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[LimitedEdge]:
    settings = msgspec.structs.replace(
        make_settings(isolated_nats, fresh_database, tmp_path),
        ws_max_ungreeted_per_ip=PER_IP,
        ws_max_ungreeted=TOTAL,
        ws_max_connections_per_node=PER_NODE,
        http_body_timeout_s=BODY_TIMEOUT_S,
        http_headers_timeout_s=HEADERS_TIMEOUT_S,
    )
    async with running_edge(settings) as (running, limits):
        yield LimitedEdge(running, limits)


@contextlib.asynccontextmanager
async def from_address(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose connections come from `address` (any 127.x.y.z reaches the loopback)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def refused_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[str, Any], int | None]:
    """The error frame a refused socket hears, and the close code that follows it."""
    frame = await next_frame(ws)
    message = await ws.receive(timeout=10)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), message
    return frame, ws.close_code


async def test_silent_sockets_past_their_address_cap_are_refused_while_a_node_connects(limited: LimitedEdge) -> None:
    gate = limited.limits.ungreeted
    async with (
        from_address("127.0.0.11") as flood,
        from_address("127.0.0.12") as other,
        aiohttp.ClientSession() as http,
    ):
        node = await registered_node(http, limited.edge)
        # the upgrade completes after the edge counted the socket: no wait is needed to see it
        silent = [await flood.ws_connect(limited.ws_url) for _ in range(PER_IP)]
        assert gate.held() == PER_IP
        refused = await flood.ws_connect(limited.ws_url)
        frame, close_code = await refused_with(refused)
        assert frame == {
            "type": "error",
            "code": "rate_limited",
            "message": f"{PER_IP} connections from this address have not said hello yet; try again shortly",
            "job_id": None,
            "field": None,
            "retry_after": 5.0,
            "backoff_until": None,
            "request_id": None,
        }
        assert close_code == 1013
        assert gate.held() == PER_IP  # the refused socket never counted

        # a node from another address says hello and is welcomed, flood or not
        async with other.ws_connect(limited.ws_url) as ws:
            await ws.send_json(hello(node))
            welcome = await next_frame(ws)
            assert welcome["type"] == "welcome", welcome
            assert limited.limits.per_node.held(node["node_public_id"]) == 1
            # greeted, it no longer counts as silent
            assert gate.held() == PER_IP

            # one silent socket leaves: its address may open one more, and only one
            await silent.pop().close()
            await until(lambda: gate.held() == PER_IP - 1)
            silent.append(await flood.ws_connect(limited.ws_url))
            frame, close_code = await refused_with(await flood.ws_connect(limited.ws_url))
            assert (frame["code"], close_code) == ("rate_limited", 1013)
        for ws in silent:
            await ws.close()
    await until(lambda: gate.held() == 0 and limited.limits.per_node.held() == 0)


async def test_silent_sockets_past_the_edge_cap_are_refused_as_unavailable(limited: LimitedEdge) -> None:
    gate = limited.limits.ungreeted
    async with (
        from_address("127.0.0.21") as first,
        from_address("127.0.0.22") as second,
        from_address("127.0.0.23") as third,
        aiohttp.ClientSession() as http,
    ):
        node = await registered_node(http, limited.edge)
        silent = [await first.ws_connect(limited.ws_url) for _ in range(PER_IP)]
        silent += [await second.ws_connect(limited.ws_url) for _ in range(TOTAL - PER_IP)]
        assert gate.held() == TOTAL
        frame, close_code = await refused_with(await third.ws_connect(limited.ws_url))
        assert frame["code"] == "unavailable" and frame["retry_after"] == 5.0
        assert (
            frame["message"] == f"this edge holds {TOTAL} connections that have not said hello yet; try again shortly"
        )
        assert close_code == 1013

        await silent.pop(0).close()
        await until(lambda: gate.held() == TOTAL - 1)
        async with third.ws_connect(limited.ws_url) as ws:
            await ws.send_json(hello(node))
            assert (await next_frame(ws))["type"] == "welcome"
        for ws in silent:
            await ws.close()
    await until(lambda: gate.held() == 0 and limited.limits.per_node.held() == 0)


async def test_every_way_out_of_a_connection_gives_its_slots_back(limited: LimitedEdge) -> None:
    gate, per_node = limited.limits.ungreeted, limited.limits.per_node
    async with from_address("127.0.0.31") as client, aiohttp.ClientSession() as http:
        node = await registered_node(http, limited.edge)
        # the client leaves before saying anything
        ws = await client.ws_connect(limited.ws_url)
        await ws.close()
        await until(lambda: gate.held() == 0)
        # its first frame is not a hello
        ws = await client.ws_connect(limited.ws_url)
        await ws.send_json({"type": "ready", "slots": 1})
        assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT  # the bye
        await until(lambda: gate.held() == 0)
        await ws.close()
        # a hello with a token the registry refuses
        ws = await client.ws_connect(limited.ws_url)
        await ws.send_json(hello(node, session_token="ccs_not-a-real-token"))
        frame = await next_frame(ws)
        assert frame["type"] == "error" and frame["code"] in ("unauthorized", "bad_input"), frame
        await until(lambda: gate.held() == 0 and per_node.held() == 0)
        await ws.close()
        # a node welcomed, then gone: both the silent slot and the node's slot come back
        ws = await client.ws_connect(limited.ws_url)
        await ws.send_json(hello(node))
        assert (await next_frame(ws))["type"] == "welcome"
        assert gate.held() == 0 and per_node.held(node["node_public_id"]) == 1
        await ws.close()
        await until(lambda: per_node.held() == 0)
        # and a silent socket that never says hello is closed at the hello timeout: not waited for
        # here (10 s); its slot is released by the same `finally` as every path above


async def test_a_node_over_its_connection_cap_is_refused_and_its_connections_carry_on(limited: LimitedEdge) -> None:
    per_node = limited.limits.per_node
    async with from_address("127.0.0.41") as client, aiohttp.ClientSession() as http:
        node = await registered_node(http, limited.edge)
        connections = []
        for _ in range(PER_NODE):
            ws = await client.ws_connect(limited.ws_url)
            await ws.send_json(hello(node))
            assert (await next_frame(ws))["type"] == "welcome"
            connections.append(ws)
        assert per_node.held(node["node_public_id"]) == PER_NODE

        extra = await client.ws_connect(limited.ws_url)
        await extra.send_json(hello(node))
        frame, close_code = await refused_with(extra)
        assert frame == {
            "type": "error",
            "code": "conflict",
            "message": f"this node already has {PER_NODE} connections to this edge; close one or try again shortly",
            "job_id": None,
            "field": None,
            "retry_after": 10.0,
            "backoff_until": None,
            "request_id": None,
        }
        assert close_code == 1008
        assert per_node.held(node["node_public_id"]) == PER_NODE

        # the connections it has still answer (a second hello is a bad frame, answered in kind)
        for ws in connections:
            await ws.send_json(hello(node))
            answer = await next_frame(ws)
            assert (answer["type"], answer["code"]) == ("error", "bad_input"), answer

        # one closes: the node may connect again
        await connections.pop().close()
        await until(lambda: per_node.held(node["node_public_id"]) == PER_NODE - 1)
        ws = await client.ws_connect(limited.ws_url)
        await ws.send_json(hello(node))
        assert (await next_frame(ws))["type"] == "welcome"
        connections.append(ws)
        for ws in connections:
            await ws.close()
    await until(lambda: per_node.held() == 0 and limited.limits.ungreeted.held() == 0)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while chunk := await reader.read(65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def test_a_stalled_body_gets_408_and_the_connection_is_closed(limited: LimitedEdge) -> None:
    port = limited.edge.settings.edge_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.write(
        b"POST /compute/register-node HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
        b"X-Correlation-ID: stalled-body-1\r\nContent-Length: 60\r\n\r\n"
        b'{"consent_flag": true, '
    )
    await writer.drain()
    async with asyncio.timeout(BODY_TIMEOUT_S + 5):
        response = await _read_all(reader)  # to the end: the edge closes the connection
    elapsed = loop.time() - started
    writer.close()
    assert BODY_TIMEOUT_S <= elapsed < BODY_TIMEOUT_S + 5
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 408 Request Timeout"
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    assert headers["connection"] == "close"
    assert headers["x-correlation-id"] == "stalled-body-1"
    assert json.loads(body) == {
        "code": "request_timeout",
        "message": f"the request body did not arrive within {BODY_TIMEOUT_S:g} s",
        "field": None,
        "correlation_id": "stalled-body-1",
    }


async def test_stalled_headers_close_the_connection_and_whole_requests_are_served(limited: LimitedEdge) -> None:
    port = limited.edge.settings.edge_port
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, limited.edge)
        # a WebSocket upgraded before: its head arrived, so the deadline on heads never cuts it
        async with http.ws_connect(limited.ws_url) as ws:
            # half a request head, then nothing
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = loop.time()
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n")
            async with asyncio.timeout(HEADERS_TIMEOUT_S + 5):
                assert await _read_all(reader) == b""  # closed, no answer
            assert HEADERS_TIMEOUT_S <= loop.time() - started < HEADERS_TIMEOUT_S + 5
            writer.close()
            await ws.send_json(hello(node))
            assert (await next_frame(ws))["type"] == "welcome"

    # a whole request is answered; a second one that stalls on the same connection is cut off too
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
    async with asyncio.timeout(5):
        status = await reader.readline()
    assert status == b"HTTP/1.1 200 OK\r\n"
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    started = loop.time()
    async with asyncio.timeout(HEADERS_TIMEOUT_S + 5):
        rest = await _read_all(reader)
    assert b"HTTP/1.1" not in rest.partition(b"\r\n\r\n")[2]  # the first answer's tail, no second
    assert loop.time() - started < HEADERS_TIMEOUT_S + 5
    writer.close()
