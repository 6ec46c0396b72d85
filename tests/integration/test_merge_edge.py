"""The dataset API at the edge, on a small stack (merge service, edge, analytics) on real NATS and
Postgres: the review queue with its field-by-field diff, approve and reject with a comment, every
bad input a typed error (bad and unknown ids, bad and missing comments, oversized bodies, a
decision twice), versions published, the diff as JSON and as a table, a field explained, and the
decisions in the audit trail with their admin and correlation id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from ccn_analytics.__main__ import start_analytics
from ccn_cli.main import main
from ccn_core.service import Runtime, open_runtime
from ccn_core.settings import Settings
from ccn_edge.app import start_edge
from ccn_merge.app import start_merge
from ccn_merge.merge_service import MergeService
from tests.conftest import make_settings
from tests.integration.test_merge_service import completed_funders_job, funder, funders_payload, merged_records
from tests.integration.test_scheduler import eventually
from tests.support.servers import until_ready

ADMIN = object()
SERVER_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


class Stack:
    def __init__(self, settings: Settings, runtime: Runtime, service: MergeService) -> None:
        self.settings = settings
        self.runtime = runtime
        self.service = service
        self.edge = f"http://127.0.0.1:{settings.edge_port}"

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: object = ADMIN,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        presented = self.settings.admin_token if token is ADMIN else token
        sent = dict(headers or {})
        if presented is not None:
            sent["Authorization"] = f"Bearer {presented}"
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, f"{self.edge}{path}", json=body, data=data, headers=sent) as response,
        ):
            if response.content_type == "text/plain":
                return response.status, await response.text()
            return response.status, await response.json(content_type=None)


@pytest.fixture
async def stack(
    isolated_nats: str, fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    settings = make_settings(isolated_nats, fresh_database, tmp_path)
    for name, value in (
        ("CCN_HOME", str(tmp_path)),
        ("CCN_EDGE_HOST", "127.0.0.1"),
        ("CCN_EDGE_PORT", str(settings.edge_port)),
        ("CCN_ADMIN_TOKEN", settings.admin_token),
    ):
        monkeypatch.setenv(name, value)
    async with contextlib.AsyncExitStack() as running:
        runtime = await running.enter_async_context(open_runtime("merge", settings, needs_postgres=False))
        service = await start_merge(runtime, health=False)
        await start_analytics(await running.enter_async_context(open_runtime("analytics", settings)))
        start_edge(await running.enter_async_context(open_runtime("edge", settings, needs_postgres=False)))
        async with aiohttp.ClientSession() as http:
            await until_ready(http, f"http://127.0.0.1:{settings.edge_port}", timeout_s=10.0)
        yield Stack(settings, runtime, service)


async def pending_reviews(stack: Stack, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        status, body = await stack.request("GET", "/admin/review")
        assert status == 200, body
        return body["reviews"] if len(body["reviews"]) >= count else None

    return await eventually(probe)


async def ccn(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`ccn ARGV` in a thread (its HTTP calls block; the servers run in this loop)."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    out = "".join(line for line in captured.out.splitlines(keepends=True) if not SERVER_LOG_LINE.match(line))
    return code, out, captured.err


async def test_review_versions_diff_and_explain_through_the_edge(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    store = stack.runtime.store
    await completed_funders_job(store, funders_payload(funder("Acme Foundation", ein="12-3456789")), "node-a")
    await eventually(lambda: _records(stack.service, 1))
    # the same EIN under another name: a critical field would change, so it waits for a reviewer
    renamed = funder("Acme Community Foundation", ein="12-3456789", source="foundation-site")
    await completed_funders_job(store, funders_payload(renamed), "node-b")
    [review] = await pending_reviews(stack, 1)
    code, out, err = await ccn(capsys, "admin", "review", "list")
    assert code == 0, err
    assert review["review_id"] in out and "name: Acme Foundation -> Acme Community Foundation" in out
    code, out, err = await ccn(capsys, "admin", "review", "approve", "rev-bad", "--comment", "ok")
    assert code == 1 and "not a review id" in err
    assert any("critical field name" in reason for reason in review["reasons"])
    [change] = [c for c in review["changes"] if c["field"] == "name"]
    assert (change["before"], change["after"]) == ("Acme Foundation", "Acme Community Foundation")

    status, body = await stack.request("GET", "/admin/review", token=None)
    assert status == 401
    status, body = await stack.request("POST", "/datasets/grants/versions", {"note": "before the review"})
    assert status == 201 and body["version"] == 1, body

    approve = f"/admin/review/{review['review_id']}/approve"
    for path, payload, expected in (
        ("/admin/review/rev-nothex/approve", {"comment": "ok"}, 400),
        ("/admin/review/rev-" + "0" * 24 + "/approve", {"comment": "ok"}, 404),
        (approve, {"comment": "two\nlines"}, 400),
        (approve, {"comment": ""}, 400),
        (approve, {}, 400),
        (approve, {"comment": "x" * 2001}, 400),
        (approve, {"comment": "ok", "surprise": 1}, 400),
        (approve, {"comment": "ok", "record_id": "not-a-candidate"}, 400),
    ):
        status, body = await stack.request("POST", path, payload)
        assert status == expected, (path, payload, status, body)
        assert body["code"], body
    status, body = await stack.request("POST", approve, data=b'{"comment": "' + b"y" * 70_000 + b'"}')
    assert status == 413, body

    status, body = await stack.request(
        "POST",
        approve,
        {"comment": "the foundation renamed itself in 2024"},
        headers={"X-Correlation-ID": "corr-review-1"},
    )
    assert status == 200, body
    assert body["status"] == "approved" and body["changes"][0]["after"] == "Acme Community Foundation"
    status, body = await stack.request("POST", approve, {"comment": "again"})
    assert status == 409, body
    status, body = await stack.request("POST", approve.replace("approve", "reject"), {"comment": "too late"})
    assert status == 409, body

    # a second renaming, rejected
    await completed_funders_job(
        store, funders_payload(funder("Acme Relief Trust", ein="12-3456789", source="crawl")), "node-c"
    )
    [second] = await pending_reviews(stack, 1)
    status, body = await stack.request("POST", f"/admin/review/{second['review_id']}/reject", {"comment": "a typo"})
    assert status == 200 and body["status"] == "rejected", body

    status, body = await stack.request("POST", "/datasets/grants/versions", {})
    assert status == 201 and body["version"] == 2, body
    status, body = await stack.request("POST", "/datasets/grants/versions", {})
    assert status == 409, body  # nothing changed since version 2
    status, body = await stack.request("GET", "/datasets/grants/versions")
    assert [v["version"] for v in body["versions"]] == [1, 2]
    status, body = await stack.request("GET", "/datasets/unknown/versions")
    assert status == 404, body

    status, diff = await stack.request("GET", "/datasets/grants/diff?from=1&to=2")
    assert status == 200, diff
    [changed] = diff["changed"]
    assert diff["added"] == [] and diff["removed"] == [] and diff["changed_count"] == 1
    assert {f["field"]: (f["before"], f["after"]) for f in changed["fields"]}["name"] == (
        "Acme Foundation",
        "Acme Community Foundation",
    )
    status, table = await stack.request("GET", "/datasets/grants/diff?from=1&to=2&format=table")
    assert status == 200 and "version 1 -> 2: 0 added, 0 removed, 1 changed" in table
    assert "Acme Community Foundation" in table
    for query, expected in (("from=1&to=9", 404), ("from=0&to=1", 400), ("from=1", 400), ("from=1&to=2&format=x", 400)):
        status, body = await stack.request("GET", f"/datasets/grants/diff?{query}")
        assert status == expected, (query, body)

    record_id = changed["record_id"]
    status, explained = await stack.request("GET", f"/datasets/grants/records/{record_id}/explain/name")
    assert status == 200 and explained["value"] == "Acme Community Foundation", explained
    assert "Acme Relief Trust" not in explained["text"]  # a rejected change never became a candidate
    status, body = await stack.request("GET", f"/datasets/grants/records/{record_id}/explain/colour")
    assert status == 400, body
    status, body = await stack.request("GET", "/datasets/grants/records/nobody/explain/name")
    assert status == 404, body

    code, out, err = await ccn(capsys, "datasets", "versions")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == ["1", "2"], (out, err)
    code, out, err = await ccn(capsys, "datasets", "diff", "1", "2")
    assert code == 0 and "1 changed" in out and "Acme Community Foundation" in out, (out, err)
    code, out, err = await ccn(capsys, "datasets", "diff", "1", "2", "--json")
    assert code == 0 and json.loads(out)["changed_count"] == 1, err
    code, out, err = await ccn(capsys, "datasets", "explain", record_id, "name")
    assert code == 0 and out.startswith(f"{record_id}.name = 'Acme Community Foundation'"), (out, err)
    code, out, err = await ccn(capsys, "datasets", "diff", "1", "7")
    assert code == 1 and "version" in err

    rows = await _audit_rows(stack.settings, 4)
    decisions = {(r["event_type"], r["actor_kind"], r["actor_id"]) for r in rows}
    assert ("dataset.review_approved", "admin", "admin") in decisions
    assert ("dataset.review_rejected", "admin", "admin") in decisions
    assert ("dataset.version_published", "admin", "admin") in decisions
    [approved] = [r for r in rows if r["event_type"] == "dataset.review_approved"]
    assert approved["correlation_id"] == "corr-review-1"
    assert '"the foundation renamed itself in 2024"' in approved["details"]


async def _records(service: MergeService, count: int) -> bool:
    return len(await merged_records(service)) >= count


async def _audit_rows(settings: Settings, count: int) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(settings.effective_database_url)
    try:

        async def probe() -> list[dict[str, Any]] | None:
            rows = await conn.fetch(
                "SELECT event_type, actor_kind, actor_id, correlation_id, details::text AS details "
                "FROM audit_log WHERE stream = 'CCN_DATASETS' ORDER BY stream_seq"
            )
            return [dict(r) for r in rows] if len(rows) >= count else None

        return await eventually(probe)
    finally:
        await conn.close()
