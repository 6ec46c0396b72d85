"""Hostile query strings against the admin read APIs, on real PostgreSQL: every parameter is
parsed into a bounded type before a query is built, so each one is a 400 naming the parameter,
never a 500 from the database (an integer outside its column's range, a timestamp outside
PostgreSQL's, a cursor that is not one the API returned, a control character)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from ccn_analytics.app import create_app

TOKEN = "admin-token-for-bounds"
BIGINT_MAX = 2**63 - 1
SMALLINT_MAX = 2**15 - 1


async def always_ready() -> tuple[bool, dict[str, str]]:
    return True, {}


@pytest.fixture
async def admin(pg_dsn: str) -> AsyncIterator[httpx.AsyncClient]:
    """The analytics app on the test's own loop (its pool is bound to it), over real PostgreSQL."""
    async with asyncpg.create_pool(pg_dsn, min_size=1, max_size=2) as pool:
        app = create_app(pool=pool, admin_token=TOKEN, ready=always_ready, body_timeout_s=10.0)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://analytics", headers=headers) as client:
            yield client


def cursor(*position: Any) -> str:
    """A cursor as the API encodes one (base64url of the page key as a JSON array), holding
    whatever a hostile caller puts in it."""
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def raw_cursor(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


WHEN = "2026-01-01T00:00:00Z"
# hostile values of parameters both routes have, each refused naming the parameter
SHARED: list[tuple[str, str]] = [
    ("limit", "99999999999999999999999"),
    ("limit", str(BIGINT_MAX + 1)),
    ("limit", "-1"),
    ("limit", "0"),
    ("limit", "1001"),
    ("limit", "1.5"),
    ("limit", "1e3"),
    ("limit", "NaN"),
    ("limit", "inf"),
    ("limit", "ten"),
    ("limit", ""),
    ("limit", "1\x00"),
    ("since", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
    ("since", "9999-12-31T23:59:59-01:00"),  # after year 9999 in UTC
    ("since", "-4714-11-24T00:00:00Z"),
    ("since", "294277-01-01T00:00:00Z"),
    ("since", "99999999-01-01T00:00:00Z"),
    ("since", "2025-01-31T12:00:00"),  # no offset: ambiguous
    ("since", "2025-13-01T00:00:00Z"),
    ("since", "2025-01-31T12:00:00+25:00"),
    ("since", "NaN"),
    ("since", "1e3"),
    ("since", ""),
    ("since", "2025-01-31T12:00:00Z\x00"),
    ("since", "2025-01-31T12:00:00Z\n"),
    ("node_id", "node\x00"),
    ("node_id", "node\n"),
    ("node_id", "node\x7f"),
    ("node_id", "n" * 129),
    ("correlation_id", "abc\x00def"),
    ("correlation_id", "abc\n"),
    ("correlation_id", "a\tb"),
    ("correlation_id", "x" * 129),
    ("cursor", "not-a-cursor"),
    ("cursor", "!!!!"),
    ("cursor", raw_cursor(b"\xff\xfe")),
    ("cursor", raw_cursor(b"not json")),
    ("cursor", raw_cursor(b'{"occurred_at": "2026-01-01T00:00:00Z"}')),
    ("cursor", raw_cursor(b"[" * 5000)),
    ("cursor", cursor()),
    ("cursor", cursor(WHEN)),
    ("cursor", cursor("yesterday", 1, "CCN_NODES", 0)),
    ("cursor", cursor("2026-01-01T00:00:00", 1, "CCN_NODES", 0)),  # naive
    ("cursor", cursor("0001-01-01T00:00:00+01:00", 1, "CCN_NODES", 0)),
    ("cursor", cursor("9999-12-31T23:59:59-01:00", 1, "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, BIGINT_MAX + 1, "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, 10**30, "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, -(2**63) - 1, "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, 0, "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, 1.5, "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, "1", "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, None, "CCN_NODES", 0)),
    ("cursor", cursor(WHEN, 1, "CCN\x00NODES", 0)),
    ("cursor", cursor(WHEN, 1, "\ud800", 0)),
    ("cursor", cursor(WHEN, 1, "s" * 300, 0)),
    ("cursor", cursor(WHEN, 1, 7, 0)),
    ("cursor", "x" * 257),
    ("cursor", "abc\x00"),
]


AUDIT: list[tuple[str, str]] = [
    *SHARED,
    # the audit page key has three parts: (occurred_at, stream_seq, stream)
    ("cursor", cursor(WHEN, 1, "CCN_NODES", 0)),
    ("type", "node.registered\x00"),
    ("type", "node.registered\n"),
    ("type", "t" * 300),
]

ORCHESTRATOR: list[tuple[str, str]] = [
    *SHARED,
    # the orchestrator-log page key has four: (occurred_at, stream_seq, stream, step smallint)
    ("cursor", cursor(WHEN, 1, "CCN_JOBS")),
    ("cursor", cursor(WHEN, 1, "CCN_JOBS", SMALLINT_MAX + 1)),
    ("cursor", cursor(WHEN, 1, "CCN_JOBS", -1)),
    ("cursor", cursor(WHEN, 1, "CCN_JOBS", 2**40)),
    ("cursor", cursor(WHEN, 1, "CCN_JOBS", 0.5)),
    ("cursor", cursor(WHEN, 1, "CCN_JOBS", 0, "extra")),
    ("job_id", "job\x00"),
    ("job_id", "job\n"),
    ("job_id", "j" * 129),
    ("event", "job_created\x00"),
    ("event", "job_created\n"),
    ("event", "no_such_step"),
]


async def refused(client: httpx.AsyncClient, path: str, name: str, value: str) -> dict[str, Any]:
    response = await client.get(path, params={name: value}, headers={"X-Correlation-ID": "bounds-1"})
    assert response.status_code == 400, (name, value, response.text)
    body: dict[str, Any] = response.json()
    assert (body["code"], body["field"], body["correlation_id"]) == ("bad_input", name, "bounds-1"), body
    assert body["message"]
    return body


@pytest.mark.parametrize(("name", "value"), AUDIT)
async def test_hostile_audit_parameters_are_400_naming_the_parameter(
    admin: httpx.AsyncClient, name: str, value: str
) -> None:
    await refused(admin, "/admin/audit", name, value)


@pytest.mark.parametrize(("name", "value"), ORCHESTRATOR)
async def test_hostile_orchestrator_log_parameters_are_400_naming_the_parameter(
    admin: httpx.AsyncClient, name: str, value: str
) -> None:
    await refused(admin, "/admin/orchestrator-log", name, value)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/admin/audit", {"since": "0001-01-01T00:00:00Z", "limit": "1000"}),
        ("/admin/audit", {"since": "9999-12-31T23:59:59.999999+00:00"}),
        ("/admin/audit", {"since": "0001-01-01T00:00:00-14:00"}),  # still year 1 in UTC
        ("/admin/audit", {"cursor": cursor("0001-01-01T00:00:00Z", BIGINT_MAX, "CCN_NODES")}),
        ("/admin/audit", {"cursor": cursor("9999-12-31T23:59:59Z", 1, "")}),
        ("/admin/orchestrator-log", {"cursor": cursor(WHEN, BIGINT_MAX, "CCN_JOBS", SMALLINT_MAX), "limit": "1"}),
        ("/admin/orchestrator-log", {"since": "2026-01-01T00:00:00+14:00", "node_id": "n-1"}),
    ],
)
async def test_the_extremes_of_every_range_are_answered(
    admin: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await admin.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.json()["entries"] == []


async def test_a_parameter_given_twice_is_refused_not_guessed(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/admin/audit?limit=1&limit=2")
    assert (response.status_code, response.json()["field"]) == (400, "limit"), response.text


async def test_the_openapi_document_states_the_bounds(admin: httpx.AsyncClient) -> None:
    schema = (await admin.get("/schema/openapi.json")).json()
    for path in ("/admin/audit", "/admin/orchestrator-log"):
        parameters = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
        assert parameters["limit"]["minimum"] == 1 and parameters["limit"]["maximum"] == 1000
        assert parameters["cursor"]["maxLength"] == 256
        assert "pattern" in parameters["cursor"]
        assert "pattern" in parameters["since"]
        for name, schema_of in parameters.items():
            if schema_of.get("type") == "string" or "oneOf" in schema_of:
                assert "pattern" in json.dumps(schema_of), (path, name)
