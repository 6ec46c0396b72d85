"""`ccn jobs` against a real edge, registry and scheduler on real NATS and Postgres: a batch file
sent in chunks and sent again creates nothing twice; status, cancel and the errors an operator
meets (no stack, a wrong token, an unknown job, a bad line) each say what is wrong."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ccn_cli.main import main
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_edge.app import start_edge
from ccn_jobs.demo_corpus import as_jobs_jsonl, grant_pages
from ccn_registry.app import start_registry
from ccn_scheduler.app import start_scheduler
from tests.conftest import free_port, make_settings
from tests.integration.test_scheduler import FAST, answering
from tests.support.servers import until_ready
from tests.support.validation import validation_service


@pytest.fixture
async def edge(
    isolated_nats: str, fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    """A running edge, registry and scheduler; the CLI finds the edge and token through CCN_*."""
    settings = make_settings(isolated_nats, fresh_database, tmp_path)
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_runtime("registry", settings))
        await start_registry(registry, health=False, observe=False)
        scheduler = await stack.enter_async_context(open_runtime("scheduler", settings))
        await start_scheduler(scheduler, health=False, options=FAST)
        await stack.enter_async_context(validation_service(settings))
        start_edge(await stack.enter_async_context(open_runtime("edge", settings)))
        await answering(settings.effective_nats_url)
        async with aiohttp.ClientSession() as http:
            await until_ready(http, f"http://127.0.0.1:{settings.edge_port}", timeout_s=10)
        monkeypatch.setenv("CCN_HOME", str(tmp_path))
        monkeypatch.setenv("CCN_EDGE_HOST", "127.0.0.1")
        monkeypatch.setenv("CCN_EDGE_PORT", str(settings.edge_port))
        monkeypatch.setenv("CCN_ADMIN_TOKEN", settings.admin_token)
        yield settings


async def ccn(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`ccn ARGV` in a thread (its HTTP calls block; the servers run in this loop): code, out, err."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def batch_file(tmp_path: Path, pages: int) -> Path:
    lines = as_jobs_jsonl(grant_pages(pages)).splitlines()
    lines.insert(2, b"")  # a blank line is skipped, and the line numbers stay the file's
    path = tmp_path / "pages.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


async def test_a_batch_sent_twice_creates_its_jobs_once(
    edge: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = batch_file(tmp_path, 300)  # ~1.3 MB: more than NATS carries in one message
    argv = ("jobs", "submit", str(path), "--batch-id", "grants-1", "--dataset-source", "demo", "--chunk-size")
    code, out, err = await ccn(capsys, *argv, "120")
    assert code == 0, err
    assert "batch grants-1: 300 jobs in 3 requests: 300 created, 0 existing" in out
    job_id = re.search(r"ccn jobs tail (\S+)", out)
    assert job_id is not None, out

    code, out, err = await ccn(capsys, *argv, "120")
    assert code == 0, err
    assert "batch grants-1: 300 jobs in 3 requests: 0 created, 300 existing" in out
    # the same keys whatever the chunking: one request holding the whole file finds them all
    code, out, err = await ccn(capsys, *argv, "1000")
    assert "batch grants-1: 300 jobs in 1 requests: 0 created, 300 existing" in out, err

    code, out, err = await ccn(capsys, "jobs", "status", job_id[1])
    assert code == 0, err
    assert f"job:      {job_id[1]}" in out
    assert "status:   queued" in out
    assert "batch:    grants-1 (dataset demo)" in out
    assert re.search(r"^\S+ \S+\s+job\.created\s", out, re.MULTILINE), out


async def test_one_job_submitted_then_cancelled(edge: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    page = grant_pages(1)[0]
    payload = json.dumps({"html": page.html, "url": page.url})
    code, out, err = await ccn(capsys, "jobs", "submit", "--type", "extract_text", "--payload", payload)
    assert code == 0, err
    key = re.search(r"Idempotency-Key: (\S+)", out)
    created = re.search(r"job (\S+) \(extract_text\): queued, created", out)
    assert key is not None and created is not None, out
    job_id = created[1]

    code, out, err = await ccn(
        capsys, "jobs", "submit", "--type", "extract_text", "--payload", payload, "--idempotency-key", key[1]
    )
    assert f"job {job_id} (extract_text): queued, already created under this key" in out, err

    code, out, err = await ccn(capsys, "jobs", "cancel", job_id, "--reason", "changed my mind")
    assert code == 0, err
    assert f"job {job_id}: cancelled" in out
    code, out, err = await ccn(capsys, "jobs", "status", job_id)
    assert "status:   cancelled" in out, err
    assert re.search(r"cancelled\s.*changed my mind", out), out
    code, out, err = await ccn(capsys, "jobs", "tail", job_id)
    assert code == 1, err
    assert f"job {job_id} is cancelled" in out
    code, out, err = await ccn(capsys, "jobs", "result", job_id)
    assert code == 1
    assert f"job {job_id} is cancelled: it has no result" in err


async def test_a_bad_line_is_named_by_its_line_in_the_file_and_nothing_is_sent(
    edge: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = batch_file(tmp_path, 4)  # lines 1, 2, 4, 5: the blank line is line 3
    with path.open("ab") as handle:
        handle.write(b'{"job_type": "extract_text", "payload": "not an object"}\n')
    code, out, err = await ccn(capsys, "jobs", "submit", str(path), "--batch-id", "bad-1", "--chunk-size", "2")
    assert code == 1
    assert f"{path}:6: " in err, err
    assert "payload" in err, err
    assert "1 of 5 lines would be refused" in err and "nothing was sent" in err, err
    assert "requests" not in out, out
    # the four good lines, sent alone, are all new
    good = as_jobs_jsonl(grant_pages(4))
    path.write_bytes(good)
    code, out, err = await ccn(capsys, "jobs", "submit", str(path), "--batch-id", "bad-1", "--chunk-size", "2")
    assert "batch bad-1: 4 jobs in 2 requests: 4 created, 0 existing" in out, err


async def test_a_big_file_with_bad_lines_near_its_end_creates_nothing_and_lists_them(
    edge: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = as_jobs_jsonl(grant_pages(40)).splitlines()
    bad = {
        36: b'{"job_type": "mine_bitcoin", "payload": {"html": "<p>x</p>"}}',
        37: b'{"job_type": "extract_text", "payload": {"html": 5}}',
        38: b'{"job_type": "extract_text", "payload": {"html": "' + b"x" * 800_000 + b'"}}',
        39: b'{"job_type": "extract_text", "payload": {"html": "<p>x</p>"}, "item_key": "line-1"}',
        40: b"{not json",
    }
    path = tmp_path / "pages.jsonl"
    path.write_bytes(b"\n".join(bad.get(number, line) for number, line in enumerate(lines, start=1)) + b"\n")
    code, out, err = await ccn(capsys, "jobs", "submit", str(path), "--batch-id", "late-1", "--chunk-size", "10")
    assert code == 1
    reported = re.findall(rf"^{re.escape(str(path))}:(\d+): (.*)$", err, re.MULTILINE)
    assert [int(number) for number, _ in reported] == [36, 37, 38, 39, 40], err
    why = dict(reported)
    assert "unknown job type 'mine_bitcoin'" in why["36"]
    assert "(field payload.html)" in why["37"]
    assert "bytes encoded" in why["38"]
    assert "also the key of line 1" in why["39"]
    assert "5 of 40 lines would be refused" in err and "nothing was sent" in err, err
    # nothing of the file was created: its 35 good lines, sent now, are all new
    path.write_bytes(b"\n".join(lines[:35]) + b"\n")
    code, out, err = await ccn(capsys, "jobs", "submit", str(path), "--batch-id", "late-1", "--chunk-size", "10")
    assert code == 0, err
    assert "batch late-1: 35 jobs in 4 requests: 35 created, 0 existing" in out, out


async def test_errors_say_what_is_wrong(
    edge: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await ccn(capsys, "jobs", "status", "no-such-job")
    assert code == 1
    assert "job no-such-job does not exist" in err

    monkeypatch.setenv("CCN_ADMIN_TOKEN", "wrong-token")
    code, _, err = await ccn(capsys, "jobs", "status", "no-such-job")
    assert code == 1
    assert "refused the admin token" in err
    assert "CCN_ADMIN_TOKEN" in err

    port = free_port()
    monkeypatch.setenv("CCN_EDGE_PORT", str(port))
    code, _, err = await ccn(capsys, "jobs", "submit", "--type", "extract_text", "--payload", "{}")
    assert code == 1
    assert f"the edge is not reachable at http://127.0.0.1:{port}" in err
    assert "ccn up" in err


def test_usage_errors_need_no_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "submit", "pages.jsonl"]) == 2
    assert "--batch-id" in capsys.readouterr().err
    assert main(["jobs", "submit", "--type", "extract_text"]) == 2
