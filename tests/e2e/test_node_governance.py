"""Operators govern a node against the stack as real processes: show, ban, unban, shadow-ban,
drain and budgets over the admin API and `ccn admin nodes`, with the refusals a banned node
meets, the bad inputs refused, and every action in the audit trail and the orchestrator log
with who did it and why."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_node_lifecycle import CONSENT, call, eventually, register


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # the `ccn admin` calls between requests outlast the edge's keep-alive: a connection each
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15), connector=connector) as session:
        yield session


async def admin(http: aiohttp.ClientSession, stack: Stack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, answer, _ = await call(http, method, f"{stack.edge}/admin/nodes{path}", token=stack.admin_token, body=body)
    return status, answer


async def test_an_operator_bans_unbans_shadow_bans_drains_and_budgets_a_node(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    node = await register(http, stack, f"gov-{uuid.uuid4().hex[:12]}")
    node_id = node["node_public_id"]
    status, consent, _ = await call(
        http, "POST", f"{stack.edge}/compute/consent", token=node["api_token"], body={**CONSENT, "scopes": ["nlp"]}
    )
    assert status == 200, consent
    assert consent["scopes"] == ["nlp"]

    status, view = await admin(http, stack, "GET", f"/{node_id}")
    assert status == 200, view
    assert (view["health"], view["banned"], view["consent_scopes"]) == ("healthy", False, ["nlp"])
    assert view["reputation"]["score"] == 62.5
    assert set(view["reputation"]["inputs"]) >= {"completed", "failed", "success_rate", "agreement_rate"}

    banned = stack.ccn("admin", "nodes", "ban", node_id, "--reason", "scraping outside its lease")
    assert banned.returncode == 0, banned.stderr
    assert "done" in banned.stdout
    # every request of a banned node is refused, a new session included
    status, refused, _ = await call(
        http, "POST", f"{stack.edge}/compute/telemetry", token=node["session_token"], body={}
    )
    assert status == 403 and "banned: scraping outside its lease" in refused["message"], refused
    status, refused, _ = await call(http, "POST", f"{stack.edge}/compute/session", token=node["api_token"], body={})
    assert status == 403, refused
    shown = stack.ccn("admin", "nodes", "show", node_id)
    assert shown.returncode == 0, shown.stderr
    assert "banned: scraping outside its lease" in shown.stdout and "reputation    62.5 / 100" in shown.stdout
    again = stack.ccn("admin", "nodes", "ban", node_id, "--reason", "again")
    assert again.returncode == 0 and "nothing to change" in again.stdout

    status, reply = await admin(http, stack, "POST", f"/{node_id}/unban", {"reason": "appeal upheld"})
    assert (status, reply["changed"]) == (200, True), reply
    status, beat, _ = await call(http, "POST", f"{stack.edge}/compute/telemetry", token=node["session_token"], body={})
    assert status == 200, beat

    for action in ("shadow-ban", "drain"):
        status, reply = await admin(http, stack, "POST", f"/{node_id}/{action}", {"reason": f"{action} test"})
        assert (status, reply["changed"]) == (200, True), reply
    status, reply = await admin(
        http, stack, "PUT", f"/{node_id}/budgets", {"max_memory_mb": 256, "max_cpu_time_per_job_s": 5}
    )
    assert (status, reply["changed"]) == (200, True), reply
    status, view = await admin(http, stack, "GET", f"/{node_id}")
    assert (view["shadow_banned"], view["draining"], view["banned"]) == (True, True, False)
    assert view["budgets"]["max_memory_mb"] == 256 and view["budgets"]["by"] == "admin"

    # the node list, from the read model
    async def listed() -> str:
        out = stack.ccn("admin", "nodes", "list", "--standing", "draining")
        return out.stdout if node_id in out.stdout else ""

    listing = await eventually(listed)
    assert "shadow,draining" in listing

    # the audit trail says who did what and why
    async def audited() -> list[dict[str, Any]]:
        status, page, _ = await call(
            http, "GET", f"{stack.analytics}/admin/audit?node_id={node_id}", token=stack.admin_token
        )
        assert status == 200, page
        entries = [e for e in page["entries"] if e["actor"]["kind"] == "admin"]
        return entries if len(entries) == 5 else []

    entries = await eventually(audited)
    assert [e["event_type"] for e in entries] == [
        "node.banned",
        "node.unbanned",
        "node.shadow_banned",
        "node.drain_requested",
        "node.budgets_set",
    ]
    assert {e["actor"]["id"] for e in entries} == {"admin"}
    assert entries[0]["details"] == {"reason": "scraping outside its lease", "by": "admin"}

    # and the orchestrator log shows the node's governance beside its other steps
    async def logged() -> list[str]:
        status, page, _ = await call(
            http, "GET", f"{stack.analytics}/admin/orchestrator-log?node_id={node_id}", token=stack.admin_token
        )
        assert status == 200, page
        steps = [e["event"] for e in page["entries"]]
        return steps if "node_budgets_set" in steps else []

    steps = await eventually(logged)
    assert steps[-5:] == [
        "node_banned",
        "node_unbanned",
        "node_shadow_banned",
        "node_drain_requested",
        "node_budgets_set",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/{node}/ban", {}, 400),  # no reason
        ("POST", "/{node}/ban", {"reason": "x\x1b[2J"}, 400),  # control characters
        ("POST", "/{node}/ban", {"reason": "x" * 1001}, 400),
        ("POST", "/{node}/ban", {"reason": "ok", "by": "someone-else"}, 400),  # who acts is the token's name
        ("PUT", "/{node}/budgets", {"max_memory_mb": -1}, 400),
        ("PUT", "/{node}/budgets", {"max_cpu_time_per_job_s": 1e300}, 400),
        ("PUT", "/{node}/budgets", {"max_bandwidth_per_min": 2**70}, 400),
        ("POST", "/00000000-0000-4000-8000-000000000000/ban", {"reason": "ok"}, 404),
        ("GET", "/00000000-0000-4000-8000-000000000000", None, 404),
        ("GET", "/not..an..id", None, 400),
        ("POST", "/{node}/explode", {"reason": "ok"}, 404),
    ],
)
async def test_bad_admin_requests_are_refused_and_change_nothing(
    stack: Stack, http: aiohttp.ClientSession, method: str, path: str, body: Any, status: int
) -> None:
    node = await register(http, stack, f"gov-bad-{uuid.uuid4().hex[:8]}")
    node_id = node["node_public_id"]
    answered, reply = await admin(http, stack, method, path.format(node=node_id), body)
    assert answered == status, reply
    _, view = await admin(http, stack, "GET", f"/{node_id}")
    assert (view["banned"], view["budgets"]) == (False, None)


async def test_node_administration_needs_the_admin_token(stack: Stack, http: aiohttp.ClientSession) -> None:
    node = await register(http, stack, f"gov-tok-{uuid.uuid4().hex[:8]}")
    for token in (None, "wrong", node["api_token"], node["session_token"]):
        status, _, _ = await call(
            http, "POST", f"{stack.edge}/admin/nodes/{node['node_public_id']}/ban", token=token, body={"reason": "x"}
        )
        assert status == 401


async def test_the_node_list_pages_by_node_id_and_refuses_bad_filters(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    for _ in range(2):
        await register(http, stack, f"gov-list-{uuid.uuid4().hex[:8]}")

    async def page(query: str) -> tuple[int, Any]:
        status, body, _ = await call(http, "GET", f"{stack.analytics}/admin/nodes?{query}", token=stack.admin_token)
        return status, body

    async def two_or_more() -> list[str]:
        _, first = await page("limit=1000")
        return [n["node_id"] for n in first["nodes"]] if len(first["nodes"]) >= 2 else []

    every = await eventually(two_or_more)
    seen: list[str] = []
    query = "limit=1"
    while True:
        status, body = await page(query)
        assert status == 200, body
        seen += [n["node_id"] for n in body["nodes"]]
        if not body["has_more"]:
            break
        query = f"limit=1&cursor={body['next_cursor']}"
    # other tests register nodes on the shared stack meanwhile: the pages hold those too, in order
    assert every == sorted(every)
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert set(every) <= set(seen)
    for bad in ("health=sleepy", "standing=king", "cursor=' OR 1=1 --", "limit=0", "limit=100000"):
        status, body = await page(bad)
        assert status == 400, (bad, body)
