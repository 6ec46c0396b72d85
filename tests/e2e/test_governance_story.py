"""A misbehaving node against the stack as real processes, while the demo's reference nodes
work: shadow-banned, its result is set aside and another node completes the job; polling far too
fast, it is throttled and then backed off; banned, it is refused everything, a new session
included. The other nodes complete every job meanwhile, and the node's history says why each
thing happened to it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from ccn_jobs.extract_text import EXTRACT_TEXT
from ccn_jobs.registry import run_job
from ccn_proto.canonical import result_checksum
from tests.e2e.conftest import Stack
from tests.e2e.test_node_lifecycle import CONSENT, call, eventually, register

JOBS = 24


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), connector=connector) as session:
        yield session


async def submit_jobs(http: aiohttp.ClientSession, stack: Stack, tag: str) -> list[str]:
    payload = msgspec.to_builtins(EXTRACT_TEXT.sample_payloads[0])
    job_ids = []
    for i in range(JOBS):
        status, job, _ = await call(
            http,
            "POST",
            f"{stack.edge}/jobs",
            token=stack.admin_token,
            body={"job_type": "extract_text", "payload": payload},
            headers={"Idempotency-Key": f"story-{tag}-{i:04d}"},
        )
        assert status == 201, job
        job_ids.append(job["job_id"])
    return job_ids


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


async def node_log(http: aiohttp.ClientSession, stack: Stack, node_id: str) -> list[dict[str, Any]]:
    status, page, _ = await call(
        http, "GET", f"{stack.analytics}/admin/orchestrator-log?node_id={node_id}&limit=1000", token=stack.admin_token
    )
    assert status == 200, page
    entries: list[dict[str, Any]] = page["entries"]
    return entries


async def test_a_misbehaving_node_is_set_aside_throttled_backed_off_and_banned_while_others_work(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    tag = uuid.uuid4().hex[:10]
    node = await register(http, stack, f"story-{tag}")
    node_id, session = node["node_public_id"], node["session_token"]
    status, _, _ = await call(http, "POST", f"{stack.edge}/compute/consent", token=node["api_token"], body=CONSENT)
    assert status == 200

    async def admin(action: str, reason: str) -> None:
        status, reply, _ = await call(
            http,
            "POST",
            f"{stack.edge}/admin/nodes/{node_id}/{action}",
            token=stack.admin_token,
            body={"reason": reason},
        )
        assert (status, reply["changed"]) == (200, True), reply

    # shadow-banned: it keeps getting work, but its results never complete a job
    await admin("shadow-ban", "its results disagree with other nodes'")
    job_ids = await submit_jobs(http, stack, tag)
    offer: dict[str, Any] | None = None
    for _ in range(20):  # within its limit (2 a second): the demo nodes take most of the jobs
        status, offer, _ = await call(
            http, "GET", f"{stack.edge}/compute/job?job_types=extract_text&wait_s=2", token=session
        )
        if status == 200:
            break
        assert status == 204, offer
        await asyncio.sleep(0.6)
    assert status == 200 and offer is not None, "the shadow-banned node was never offered a job"
    result = msgspec.to_builtins(run_job("extract_text", offer["payload"]))
    status, ack, _ = await call(
        http,
        "POST",
        f"{stack.edge}/compute/job/result",
        token=session,
        body={"job_id": offer["job_id"], "result": result, "checksum": result_checksum(result)},
        headers={"X-Correlation-ID": offer["correlation_id"]},
    )
    assert (status, ack["status"]) == (200, "validating"), ack  # it must not learn

    # polling far too fast: throttled with 429 and Retry-After ...
    async def poll() -> tuple[int, dict[str, str]]:
        status, _, headers = await call(
            http, "GET", f"{stack.edge}/compute/job?job_types=extract_text&wait_s=0", token=session
        )
        return status, lowered(headers)

    answers = await asyncio.gather(*(poll() for _ in range(40)))
    throttled = [headers for status, headers in answers if status == 429]
    assert len(throttled) >= 20 and all(float(h["retry-after"]) > 0 for h in throttled)

    # ... then backed off, once its edge has reported the window's refusals
    async def backed_off() -> list[str]:
        steps = [entry["event"] for entry in await node_log(http, stack, node_id)]
        return steps if "node_backoff_changed" in steps else []

    steps = await eventually(backed_off, timeout=40)
    assert "node_rate_limited" in steps and "node_shadow_banned" in steps
    await asyncio.sleep(1.5)  # its rate limit refills; the backoff does not
    status, headers = await poll()
    assert status == 204 and "backed off" in headers.get("ccn-withheld", ""), headers
    assert "ccn-backoff-until" in headers and 0 < int(headers["retry-after"]) <= 30, headers

    # banned: every request refused, a new session too
    await admin("ban", "ignores its backoff")
    status, refused, _ = await call(http, "POST", f"{stack.edge}/compute/telemetry", token=session, body={})
    assert status == 403 and "banned" in refused["message"]
    status, _, _ = await call(http, "POST", f"{stack.edge}/compute/session", token=node["api_token"], body={})
    assert status == 403

    # meanwhile the other nodes completed every job, the set-aside one included
    async def all_completed() -> list[dict[str, Any]]:
        views = []
        for job_id in dict.fromkeys([*job_ids, offer["job_id"]]):  # its job may be one of the demo's
            status, view, _ = await call(http, "GET", f"{stack.edge}/jobs/{job_id}", token=stack.admin_token)
            assert status == 200, view
            if view["status"] != "completed":
                return []
            views.append(view)
        return views

    views = await eventually(all_completed, timeout=60)
    completers = {entry["node_id"] for view in views for entry in view["history"] if entry["type"] == "job.completed"}
    assert node_id not in completers and completers
    (set_aside,) = [view for view in views if view["job_id"] == offer["job_id"]]
    types = [(entry["type"], entry["node_id"]) for entry in set_aside["history"]]
    assert ("job.result_set_aside", node_id) in types
    assert types[-1][0] == "job.completed" and types[-1][1] != node_id
