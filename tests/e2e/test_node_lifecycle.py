"""A node's whole life over HTTP against the stack as real processes: register → consent →
heartbeat → opt-out, the bad inputs, the read models, the audit trail by correlation id, and
the correlation id on events, logs and traces."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import nats
import pytest

from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.topology import NODES
from tests.e2e.conftest import Stack

VERSION = current_consent_version()
CONSENT = {"consent_version": VERSION, "consent_hash": consent_catalogue()[VERSION]}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    async with http.request(method, url, data=data, headers=sent) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else {}), dict(response.headers)


async def eventually(check: Any, timeout: float = 15.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)


async def register(http: aiohttp.ClientSession, stack: Stack, correlation: str) -> dict[str, Any]:
    status, body, _ = await call(
        http,
        "POST",
        f"{stack.edge}/compute/register-node",
        body={"consent_flag": True, "user_agent": "e2e-node/1.0"},
        headers={"X-Correlation-ID": correlation, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert status == 201, body
    return body


async def test_a_node_lives_registers_consents_beats_and_opts_out(stack: Stack, http: aiohttp.ClientSession) -> None:
    correlation = f"e2e-{uuid.uuid4().hex[:12]}"
    node = await register(http, stack, correlation)
    node_id = node["node_public_id"]
    assert node["api_token"].startswith("cca_")
    assert node["session_token"].startswith("ccs_")

    status, consent, headers = await call(
        http,
        "POST",
        f"{stack.edge}/compute/consent",
        token=node["api_token"],
        body=CONSENT,
        headers={"X-Correlation-ID": correlation},
    )
    assert status == 200, consent
    assert consent["consent_version"] == VERSION
    assert headers["X-Correlation-ID"] == correlation

    status, beat, _ = await call(http, "POST", f"{stack.edge}/compute/telemetry", token=node["session_token"], body={})
    assert status == 200, beat
    assert beat["node_public_id"] == node_id

    status, opted, _ = await call(
        http,
        "POST",
        f"{stack.edge}/compute/opt-out",
        token=node["api_token"],
        body={"reason": "e2e done"},
        headers={"X-Correlation-ID": correlation},
    )
    assert status == 200, opted
    assert opted["sessions_ended"] == 1

    # tokens are refused from now on
    status, refused, _ = await call(
        http, "POST", f"{stack.edge}/compute/consent", token=node["api_token"], body=CONSENT
    )
    assert status == 403, refused
    status, refused, _ = await call(
        http, "POST", f"{stack.edge}/compute/telemetry", token=node["session_token"], body={}
    )
    assert status == 403, refused

    # the read models catch up
    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await eventually(
            lambda: conn.fetchrow(
                "SELECT * FROM community_nodes WHERE node_public_id = $1 AND NOT is_active", uuid.UUID(node_id)
            )
        )
        assert row["consent_version"] == VERSION
        assert row["opt_out_reason"] == "e2e done"
        assert row["correlation_id"] == correlation
        assert row["last_seen_at"] is not None
        # the heartbeat reaches the session through its own projection: wait for it as well
        sessions = await eventually(
            lambda: conn.fetch(
                "SELECT * FROM community_node_sessions WHERE node_id = $1 AND last_seen_at > created_at",
                uuid.UUID(node_id),
            )
        )
        assert [(s["is_active"], s["end_reason"]) for s in sessions] == [(False, "node opted out")]
        assert sessions[0]["ip_hash"] and "127.0.0.1" not in sessions[0]["ip_hash"]
        assert sessions[0]["last_seen_at"] > sessions[0]["created_at"]
    finally:
        await conn.close()

    # the audit trail, pulled by the correlation id, tells the story in order
    async def audit() -> list[dict[str, Any]]:
        status, body, _ = await call(
            http, "GET", f"{stack.analytics}/admin/audit?correlation_id={correlation}", token=stack.admin_token
        )
        assert status == 200, body
        return body["entries"] if len(body["entries"]) == 3 else []

    entries = await eventually(audit)
    assert [e["event_type"] for e in entries] == ["node.registered", "node.consent_recorded", "node.opted_out"]
    assert {e["aggregate_id"] for e in entries} == {node_id}
    assert {e["correlation_id"] for e in entries} == {correlation}
    assert all(e["actor"] == {"kind": "node", "id": node_id} for e in entries)
    assert "hash" not in json.dumps([e.get("details") for e in entries]).lower().replace("consent_hash", "")

    # the event store holds the same correlation id in its headers, with a trace context
    nc = await nats.connect(stack.nats_url)
    history = await nc.jetstream().pull_subscribe(f"ccn.node.{node_id}.*", stream=NODES.name)
    msgs = await history.fetch(10, timeout=2)
    assert [m.subject.rsplit(".", 1)[1] for m in msgs] == ["registered", "consent_recorded", "opted_out"]
    assert all(m.headers and m.headers["ccn-correlation-id"] == correlation for m in msgs)
    assert all(m.headers and m.headers.get("traceparent", "").startswith("00-") for m in msgs)
    await history.unsubscribe()
    await nc.close()

    # and so do the services' JSON logs
    registry_log = (stack.home / "logs" / "registry.log").read_text()
    lines = [json.loads(line) for line in registry_log.splitlines() if correlation in line]
    assert lines, "no registry log line carries the request's correlation id"
    assert all(line["correlation_id"] == correlation for line in lines)


async def test_a_retried_registration_returns_the_same_node(stack: Stack, http: aiohttp.ClientSession) -> None:
    key = str(uuid.uuid4())
    body = {"consent_flag": True, "user_agent": "retry/1.0"}
    first = await call(http, "POST", f"{stack.edge}/compute/register-node", body=body, headers={"Idempotency-Key": key})
    again = await call(http, "POST", f"{stack.edge}/compute/register-node", body=body, headers={"Idempotency-Key": key})
    assert (first[0], again[0]) == (201, 200)
    assert first[1]["node_public_id"] == again[1]["node_public_id"]
    assert first[1]["api_token"] == again[1]["api_token"]
    other = await call(
        http,
        "POST",
        f"{stack.edge}/compute/register-node",
        body={**body, "user_agent": "other"},
        headers={"Idempotency-Key": key},
    )
    assert other[0] == 409, other[1]


@pytest.mark.parametrize(
    ("path", "token_kind", "raw", "status", "field"),
    [
        ("/compute/register-node", None, b'{"consent_flag": tru', 400, None),
        ("/compute/register-node", None, b'{"consent_flag": "yes"}', 400, "consent_flag"),
        ("/compute/register-node", None, b'{"consent_flag": true, "surprise": 1}', 400, "surprise"),
        (
            "/compute/consent",
            "api",
            b'{"consent_version": "1999-01-01", "consent_hash": "' + b"0" * 64 + b'"}',
            422,
            "consent_version",
        ),
        ("/compute/consent", "api", b'{"consent_version": "2026-11-01"}', 400, "consent_hash"),
        ("/compute/consent", None, b"{}", 401, None),
        ("/compute/consent", "garbage", b"{}", 401, None),
        ("/compute/telemetry", "api", b"{}", 401, None),
        ("/compute/register-node", None, b'{"user_agent": "' + b"x" * 5000 + b'"}', 413, None),
    ],
    ids=[
        "malformed-json",
        "wrong-type",
        "unknown-field",
        "unknown-consent-version",
        "missing-field",
        "missing-token",
        "garbled-token",
        "api-token-as-session-token",
        "body-too-large",
    ],
)
async def test_bad_input_is_refused_with_a_typed_error_and_writes_nothing(
    stack: Stack,
    http: aiohttp.ClientSession,
    path: str,
    token_kind: str | None,
    raw: bytes,
    status: int,
    field: str | None,
) -> None:
    node = await register(http, stack, f"bad-{uuid.uuid4().hex[:8]}")
    token = {"api": node["api_token"], "garbage": "cca_nonsense", None: None}[token_kind]
    got, body, headers = await call(
        http, "POST", f"{stack.edge}{path}", token=token, raw=raw, headers={"X-Correlation-ID": "bad-input"}
    )
    assert got == status, body
    assert body["code"] and body["message"]
    assert body["correlation_id"] == "bad-input" == headers["X-Correlation-ID"]
    if field is not None:
        assert body["field"] == field, body


async def test_health_and_openapi(stack: Stack, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "GET", f"{stack.edge}/healthz")
    assert status == 200, body
    status, body, _ = await call(http, "GET", f"{stack.edge}/readyz")
    assert status == 200, body
    status, schema, _ = await call(http, "GET", f"{stack.edge}/schema/openapi.json")
    assert status == 200
    assert {"/compute/register-node", "/compute/consent", "/compute/opt-out", "/compute/telemetry"} <= set(
        schema["paths"]
    )
    status, body, _ = await call(http, "GET", f"{stack.analytics}/admin/audit", token="wrong")
    assert status == 401, body


async def test_status_reports_every_service_healthy(stack: Stack) -> None:
    result = stack.ccn("status")
    assert result.returncode == 0, result.stdout + result.stderr
    for service in ("registry", "edge", "analytics"):
        assert service in result.stdout
