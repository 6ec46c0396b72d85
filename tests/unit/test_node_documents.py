"""The node's side of documents by reference, against a small HTTP server playing the edge: a
body is read whole or refused (an error reply, a size that is not the reference's, a body cut
short or running long, bytes that are not the digest), and a job's worker fetches its bodies
before the handler runs, or fails the job with a typed reason that survives a worker process.
The bytes a job fetches are counted in its usage and held to its bandwidth budget."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import multiprocessing
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from ccn_cli.node.config import NodeConfig
from ccn_cli.node.documents import BodyUnavailable, EdgeBodyReader, EdgeDocuments, execute_for_job
from ccn_cli.node.execute import JobRefused, WorkDone, WorkFailed, execute_job
from ccn_cli.node.runner import Completed, Failed, JobRunner, Outcome, make_executor
from ccn_cli.node.worker import run_measured_in_thread
from ccn_jobs.documents import fetch_bodies
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.registry import decode_payload, result_to_builtins, run_job
from ccn_proto.budgets import JobBudget
from ccn_proto.canonical import result_checksum
from ccn_proto.documents import HTML, DocumentRef
from tests.unit.test_node_runner import offer, settle

pytestmark = pytest.mark.timeout(60)

BODY = b"<html><body><h1>Grants for rivers</h1><p>The fund opens on 1 March 2027 for river projects.</p></body></html>"
SHA = hashlib.sha256(BODY).hexdigest()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def edge() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[EdgeDocuments, list[web.Request]]]]]:
    """Serve one handler at the documents path; the source pointing at it, and the requests."""
    runners: list[web.AppRunner] = []

    async def serve(handler: Handler) -> tuple[EdgeDocuments, list[web.Request]]:
        seen: list[web.Request] = []

        async def recorded(request: web.Request) -> web.StreamResponse:
            seen.append(request)
            return await handler(request)

        app = web.Application()
        app.router.add_get("/compute/jobs/{job_id}/documents/{sha256}", recorded)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        source = EdgeDocuments(
            base_url=f"http://127.0.0.1:{port}",
            session_token="ccs_token",
            job_id="job-1",
            timeout_s=5,
            read_timeout_s=2,
            user_agent="ccn-node/test",
        )
        return source, seen

    yield serve
    for runner in runners:
        await runner.cleanup()


async def body_ok(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type=HTML)


async def read(source: EdgeDocuments, sha256: str = SHA, size: int = len(BODY)) -> bytes:
    async with aiohttp.ClientSession() as http:
        return await EdgeBodyReader(http, source).read(sha256, size)


async def test_a_body_is_read_whole_with_the_session_token_from_the_jobs_path(edge: Any) -> None:
    source, seen = await edge(body_ok)
    assert await read(source) == BODY
    (request,) = seen
    assert request.path == f"/compute/jobs/job-1/documents/{SHA}"
    assert request.headers["Authorization"] == "Bearer ccs_token"


async def refused_with(source: EdgeDocuments, size: int = len(BODY)) -> str:
    with pytest.raises(BodyUnavailable) as raised:
        await read(source, size=size)
    return str(raised.value)


async def test_an_error_reply_is_refused_with_what_the_edge_said(edge: Any) -> None:
    async def not_held(request: web.Request) -> web.Response:
        body = {"code": "forbidden", "message": "job job-1 is not held by this node", "field": None}
        return web.json_response(body, status=403)

    source, _ = await edge(not_held)
    assert "403 forbidden: job job-1 is not held by this node" in await refused_with(source)


async def test_a_reply_of_another_size_is_refused(edge: Any) -> None:
    source, _ = await edge(body_ok)
    assert "announces" in await refused_with(source, size=len(BODY) - 1)


async def test_a_reply_running_past_the_size_is_cut_off(edge: Any) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(100):
            await response.write(BODY)
        await response.write_eof()
        return response

    source, _ = await edge(chunked)
    assert "more than" in await refused_with(source)


async def test_a_reply_cut_short_is_refused(edge: Any) -> None:
    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
        await response.prepare(request)
        await response.write(BODY[:10])
        assert request.transport is not None
        request.transport.close()
        return response

    source, _ = await edge(short)
    assert "could not be read" in await refused_with(source)


async def test_bytes_that_are_not_the_digest_fail_as_a_mismatch(edge: Any) -> None:
    async def other(request: web.Request) -> web.Response:
        return web.Response(body=BODY.upper(), content_type=HTML)

    source, _ = await edge(other)
    payload = decode_payload("extract_text", {"document": reference()})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(DocumentRefused) as raised:
            await fetch_bodies(payload, EdgeBodyReader(http, source), "extract_text")
    assert raised.value.code == "body_mismatch"


def reference() -> dict[str, Any]:
    return msgspec.to_builtins(DocumentRef(sha256=SHA, size=len(BODY), media_type=HTML))


def config_for(source: EdgeDocuments) -> NodeConfig:
    return NodeConfig(edge_url=source.base_url, home=Path("unused"), job_timeout_s=5, http_timeout_s=2)


async def test_a_job_runs_on_the_body_it_names_and_a_job_without_references_asks_for_nothing(edge: Any) -> None:
    source, seen = await edge(body_ok)
    execute = execute_for_job(config_for(source), "ccs_token", "job-1", "test")
    payload = {"document": reference()}
    # the worker runs it off the event loop, in its own loop
    result, checksum = await asyncio.to_thread(execute, "extract_text", payload)
    expected = result_to_builtins(run_job("extract_text", payload, {SHA: BODY}))
    assert (result, checksum) == (expected, result_checksum(expected))
    assert "river projects" in result["text"]
    assert len(seen) == 1
    inline = {"html": BODY.decode()}
    assert await asyncio.to_thread(execute, "extract_text", inline) == execute_job("extract_text", inline)
    assert len(seen) == 1


async def test_a_body_that_cannot_be_had_fails_the_job_typed(edge: Any) -> None:
    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"code": "not_found", "message": "no body", "field": None}, status=404)

    source, _ = await edge(missing)
    execute = execute_for_job(config_for(source), "ccs_token", "job-1", "test")
    with pytest.raises(JobRefused) as raised:
        await asyncio.to_thread(execute, "extract_text", {"document": reference()})
    assert str(raised.value).startswith("body_missing: extract_text: ")
    assert "404 not_found: no body" in str(raised.value)


def test_a_refusal_survives_pickling_with_its_reason() -> None:
    with pytest.raises(JobRefused) as raised:
        execute_job("extract_text", {"document": {"kind": "nothing"}})
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)  # noqa: S301 - our own bytes


def test_a_refusal_leaves_a_worker_process_with_its_reason() -> None:
    """Raised in a worker process, a job type's refusal reaches the node whole (its own error
    types do not unpickle: the pool would break and the reason be lost)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(execute_job, "extract_text", {"document": {"kind": "nothing"}})
        with pytest.raises(JobRefused) as raised:
            future.result(timeout=45)
        # the same worker takes the next job: the pool is sound
        assert pool.submit(execute_job, "extract_text", {"html": BODY.decode()}).result(timeout=45)[1]
    assert "document" in str(raised.value)


async def test_a_budgeted_job_counts_the_bytes_it_fetched_and_one_over_its_bandwidth_fetches_nothing(
    edge: Any,
) -> None:
    """In the child a worker forks for a budgeted job: the bytes counted there reach the node
    with the job's usage; a body past the job's bandwidth allowance is never asked for."""
    source, seen = await edge(body_ok)
    execute = execute_for_job(config_for(source), "ccs_token", "job-1", "test")
    outcomes: list[Outcome] = []
    runner = JobRunner(lambda: make_executor("process"), concurrency=1, timeout_s=30, on_outcome=outcomes.append)
    job = offer("job-1", {"document": reference()})
    try:
        runner.start(msgspec.structs.replace(job, budget=JobBudget(max_bandwidth_per_min=len(BODY))), execute)
        await settle(outcomes, 1)
        fetched = outcomes[0]
        assert isinstance(fetched, Completed) and fetched.usage is not None, fetched
        assert fetched.usage.bytes_fetched == len(BODY) and len(seen) == 1
        runner.start(msgspec.structs.replace(job, budget=JobBudget(max_bandwidth_per_min=len(BODY) - 1)), execute)
        await settle(outcomes, 2)
        refused = outcomes[1]
        assert isinstance(refused, Failed) and refused.kind == "budget_exceeded", refused
        assert refused.reason.startswith(f"bandwidth budget exceeded: {len(BODY)} bytes to fetch")
        assert refused.usage is not None and refused.usage.bytes_fetched == 0 and len(seen) == 1
        runner.start(job, execute)  # no budget: the worker itself, its bytes counted all the same
        await settle(outcomes, 3)
        plain = outcomes[2]
        assert isinstance(plain, Completed) and plain.usage is not None and plain.usage.bytes_fetched == len(BODY)
    finally:
        runner.shutdown()


async def test_in_a_worker_thread_the_bandwidth_budget_holds_too(edge: Any) -> None:
    source, seen = await edge(body_ok)
    execute = execute_for_job(config_for(source), "ccs_token", "job-1", "test")
    payload = {"document": reference()}
    within = await asyncio.to_thread(
        run_measured_in_thread, execute, JobBudget(max_bandwidth_per_min=10_000), "extract_text", payload
    )
    assert isinstance(within, WorkDone) and within.usage is not None and within.usage.bytes_fetched == len(BODY)
    over = await asyncio.to_thread(
        run_measured_in_thread, execute, JobBudget(max_bandwidth_per_min=10), "extract_text", payload
    )
    assert isinstance(over, WorkFailed) and over.kind == "budget_exceeded" and len(seen) == 1
