"""Hostile input at every entry point of a real edge (registry and scheduler behind it, real NATS
and PostgreSQL): control characters, deep JSON, invalid UTF-8 and lax types are refused with a
typed 400 naming the field (an error frame over WebSocket), nothing reaches the event streams,
and the services stay ready."""

# ruff: noqa: F811 - `edge` is test_edge_jobs' fixture, imported to be requested by name

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import nats
import pytest

from ccn_core.ids import ip_hash
from ccn_core.topology import JOBS, NODES
from tests.integration.test_edge_jobs import Edge, connected, edge, hello, next_frame, registered_node  # noqa: F401

DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 2_000 + b"1" + b"}" * 2_000  # past the interpreter's recursion limit


async def refused(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    token: str | None = None,
    field: str | None,
    status: int = 400,
) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post(url, data=body, headers=headers) as response:
        text = await response.text()
        assert response.status == status, (url, body[:80], response.status, text)
        error: dict[str, Any] = json.loads(text)
    assert error["code"] == "bad_input", error
    assert error["field"] == field, (url, body[:80], error)
    assert error["correlation_id"]
    return error


async def stream_holds_no_control_characters(edge: Edge) -> None:
    client = await nats.connect(edge.settings.effective_nats_url)
    try:
        js = client.jetstream()
        for stream in (NODES.name, JOBS.name):
            info = await js.stream_info(stream)
            if not info.state.messages:
                continue
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(stream, seq)
                assert b"\\u0000" not in (message.data or b""), (stream, seq, message.data)
    finally:
        await client.close()


async def still_ready(http: aiohttp.ClientSession, edge: Edge) -> None:
    async with http.get(f"{edge.url}/readyz") as response:
        assert response.status == 200, await response.text()


async def test_node_api_bodies_refuse_control_characters_deep_json_bad_utf8_and_lax_types(edge: Edge) -> None:
    compute = f"{edge.url}/compute"
    async with aiohttp.ClientSession() as http:
        register = f"{compute}/register-node"
        await refused(http, register, b'{"consent_flag": true, "user_agent": "evil\\u0000agent"}', field="user_agent")
        await refused(http, register, b'{"user_id": "\\u001b]0;title\\u0007"}', field="user_id")
        await refused(http, register, b'{"user_agent": "two\\nlines"}', field="user_agent")
        await refused(http, register, b'{"user_agent": "\xff\xfe"}', field=None)
        await refused(http, register, DEEP, field=None)
        await refused(http, register, b'{"user_agent": ' + DEEP + b"}", field="user_agent")
        async with http.post(register, json={}, headers={"Idempotency-Key": "ключ-идемпотентности"}) as response:
            assert response.status == 400
            assert (await response.json())["field"] == "idempotency_key"
        for lax in (b'"true"', b"1", b'"1"'):
            await refused(http, register, b'{"consent_flag": ' + lax + b"}", field="consent_flag")

        node = await registered_node(http, edge)
        api, session = node["api_token"], node["session_token"]
        await refused(http, f"{compute}/opt-out", b'{"reason": "bye\\u0000"}', token=api, field="reason")
        await refused(http, f"{compute}/session", b'{"user_agent": "x\\u0000"}', token=api, field="user_agent")
        await refused(http, f"{compute}/telemetry", b'{"job_ids": ["\\u0000"]}', token=session, field="job_ids[0]")
        await refused(
            http,
            f"{compute}/job/result",
            b'{"job_id": "j", "checksum": "' + b"0" * 64 + b'", "result": {"text": "a\\u0000"}}',
            token=session,
            field="result.text",
        )
        await refused(http, f"{compute}/job/result", DEEP, token=session, field=None)
        await refused(
            http, f"{compute}/job/fail", b'{"job_id": "j", "reason": "\\u0000"}', token=session, field="reason"
        )
        await still_ready(http, edge)
    await stream_holds_no_control_characters(edge)


async def test_operator_job_bodies_and_batch_lines_are_strict(edge: Edge) -> None:
    jobs = f"{edge.url}/jobs"
    admin = edge.settings.admin_token
    payload = '"payload": {"html": "<p>grant</p>", "url": "https://example.org/"}'
    async with aiohttp.ClientSession() as http:
        for field, value in (("lease_s", '"60"'), ("lease_s", '"1e3"'), ("max_retries", '"3"'), ("priority", '"5"')):
            body = f'{{"job_type": "extract_text", {payload}, "{field}": {value}}}'.encode()
            await refused(http, f"{jobs}/", body, token=admin, field=field)
        await refused(
            http,
            f"{jobs}/",
            b'{"job_type": "extract_text", "payload": {"html": "<p>\\u0000</p>"}}',
            token=admin,
            field="payload.html",
        )
        await refused(
            http,
            f"{jobs}/",
            b'{"job_type": "extract_text", "payload": {"html": "x"}, "dataset_source": "s\\u0000"}',
            token=admin,
            field="dataset_source",
        )
        await refused(
            http, f"{jobs}/", b'{"job_type": "extract_text", "payload": ' + DEEP_OBJECT + b"}", token=admin, field=None
        )
        await refused(http, f"{jobs}/", b'{"job_type": "extract_\xc3"}', token=admin, field=None)
        good = f'{{"job_type": "extract_text", {payload}}}'.encode()
        batch = b"\n".join([good, good.replace(b"grant", b"grant\\u0000")])
        error = await refused(
            http, f"{jobs}/batch?batch_id=hostile-1", batch, token=admin, field="line 2: payload.html"
        )
        assert error["message"].startswith("line 2: payload.html holds a forbidden character U+0000")
        await refused(http, f"{jobs}/batch?batch_id=hostile-2", good + b"\n" + DEEP, token=admin, field="line 2")
        await refused(http, f"{jobs}/batch?batch_id=hostile-3", b"\xff\n", token=admin, field="line 1")
        await still_ready(http, edge)
    await stream_holds_no_control_characters(edge)


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (b'{"type": "fail", "job_id": "j", "reason": "x\\u0000"}', "reason"),
        (b'{"type": "heartbeat", "job_ids": ["\\u0001"]}', "job_ids[0]"),
        (b'{"type": "ready", "slots": "1"}', "slots"),
        (b'{"type": "ready", "slots": 99999999999999999999999}', "slots"),
        (b'{"type": "result", "job_id": "j", "checksum": "c", "result": {"a": "\\u0000"}}', "result.a"),
        (b'{"type": "result", "job_id": "j", "checksum": "c", "result": ' + DEEP_OBJECT + b"}", None),
        (DEEP, None),
        (b"\xff\xfe{", None),
    ],
)
async def test_frames_get_a_typed_error_and_the_connection_goes_on(edge: Edge, frame: bytes, field: str | None) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with connected(http, edge, node) as ws:
            await ws.send_bytes(frame)
            error = await next_frame(ws)
            assert error["type"] == "error", error
            assert error["code"] == "bad_input", error
            assert error["field"] == field, error
            await ws.send_json({"type": "heartbeat", "job_ids": []})
            await ws.send_json({"type": "bye"})
            closing = await ws.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
            assert ws.close_code == 1000, ws.close_code


async def test_a_deep_hello_is_refused_with_a_typed_close(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with http.ws_connect(f"{edge.url.replace('http', 'ws')}/ws") as ws:
            await ws.send_bytes(b'{"type": "hello", "capabilities": ' + DEEP + b"}")
            error = await next_frame(ws)
            assert error == {**error, "type": "error", "code": "bad_input"}
            assert await next_frame(ws) == {"type": "bye", "reason": "the first frame must be a hello"}
            closing = await ws.receive(timeout=10)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
            assert ws.close_code == 1008, ws.close_code
        async with connected(http, edge, node) as ws:  # the node itself is unharmed
            await ws.send_json(hello(node))
            assert (await next_frame(ws))["code"] == "bad_input"


async def test_a_client_cannot_choose_the_address_it_is_counted_under(edge: Edge) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{edge.url}/compute/register-node",
            json={"consent_flag": True},
            headers={
                "Idempotency-Key": str(uuid.uuid4()),
                "X-Forwarded-For": "203.0.113.9",
                "Forwarded": "for=1.2.3.4",
            },
        ) as response,
    ):
        assert response.status == 201
        node_id = (await response.json())["node_public_id"]
    client = await nats.connect(edge.settings.effective_nats_url)
    try:
        message = await client.jetstream().get_last_msg(NODES.name, f"ccn.node.{node_id}.registered")
    finally:
        await client.close()
    registered = json.loads(message.data or b"{}")
    assert registered["data"]["ip_hash"] == ip_hash("127.0.0.1", edge.settings.ip_hash_salt)


async def test_the_openapi_document_describes_the_error_body_that_is_sent(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{edge.url}/schema/openapi.json") as response:
        document = await response.json()
    assert set(document["components"]["schemas"]["ErrorBody"]["required"]) == {
        "code",
        "message",
        "field",
        "correlation_id",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            refusals = {status: body for status, body in operation["responses"].items() if status[0] in "45"}
            assert "400" in refusals, (method, path)
            for status, body in refusals.items():
                schema = body["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
