"""Documents by reference reach a volunteer node through the edge, against the real registry,
scheduler, edge and NATS object store: the reference node fetches each body a job names from
GET /compute/jobs/{job_id}/documents/{sha256}, runs extract_text on it and completes the job;
and the endpoint refuses, typed, every request that is not the holder's for a body its job names."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import nats
import pytest

from ccn_cli.node.config import NodeConfig
from ccn_cli.node.node import build_client
from ccn_core.document_bodies import ObjectStoreBodies, open_body_store
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.demo_documents import grant_pdf
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from ccn_proto.documents import HTML, PDF, DocumentRef
from ccn_proto.scheduler import CreateJob, CreateJobReply, GetJob, JobView
from tests.conftest import make_settings
from tests.integration.test_edge_jobs import Edge, registered_node, running_edge

pytestmark = pytest.mark.timeout(90)

MAX_DOCUMENT_BYTES = 200_000
PDF_BYTES = grant_pdf(3, pages=2)
HTML_BYTES = grant_pages(2)[1].html.encode()


@dataclass(frozen=True)
class Stored:
    edge: Edge
    bodies: ObjectStoreBodies


@pytest.fixture
async def stored(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Stored]:
    settings = msgspec.structs.replace(
        make_settings(isolated_nats, fresh_database, tmp_path), max_document_bytes=MAX_DOCUMENT_BYTES
    )
    nc = await nats.connect(isolated_nats)
    try:
        bodies = ObjectStoreBodies(await open_body_store(nc.jetstream(), create=True))
        async with running_edge(settings) as (edge, _):
            yield Stored(edge=edge, bodies=bodies)
    finally:
        await nc.close()


async def stored_ref(
    bodies: ObjectStoreBodies, data: bytes, media_type: Any, *, size: int | None = None
) -> DocumentRef:
    sha256 = await bodies.put(data)
    return DocumentRef(sha256=sha256, size=len(data) if size is None else size, media_type=media_type)


async def create_job(edge: Edge, ref: DocumentRef, *, max_retries: int = 3) -> str:
    reply = await edge.scheduler.call(
        "scheduler",
        "create_job",
        CreateJob(job_type="extract_text", payload={"document": msgspec.to_builtins(ref)}, max_retries=max_retries),
        CreateJobReply,
        correlation_id=f"test-{ref.sha256[:12]}",
    )
    return reply.job_id


async def job_view(edge: Edge, job_id: str) -> JobView:
    return await edge.scheduler.call("scheduler", "get_job", GetJob(job_id=job_id), JobView, correlation_id="t")


async def settled(edge: Edge, job_id: str, statuses: frozenset[str], timeout_s: float = 60) -> JobView:
    async with asyncio.timeout(timeout_s):
        while (view := await job_view(edge, job_id)).status not in statuses:
            await asyncio.sleep(0.1)
    return view


def expected_result(ref: DocumentRef, data: bytes) -> tuple[dict[str, Any], str]:
    result = result_to_builtins(run_job("extract_text", {"document": msgspec.to_builtins(ref)}, {ref.sha256: data}))
    return result, result_checksum(result)


@contextlib.asynccontextmanager
async def reference_node(edge: Edge, home: Path) -> AsyncIterator[None]:
    config = NodeConfig(edge_url=edge.url, home=home, job_types=("extract_text",), executor="process")
    async with aiohttp.ClientSession() as http:
        client = build_client(config, http)
        running = asyncio.create_task(client.run())
        try:
            yield
        finally:
            client.request_stop()
            client.request_stop()  # no grace: every job this test waits for has settled
            await asyncio.wait_for(running, timeout=20)


async def test_the_reference_node_reads_pdf_and_html_bodies_through_the_edge_and_completes_the_jobs(
    stored: Stored, tmp_path: Path
) -> None:
    pdf = await stored_ref(stored.bodies, PDF_BYTES, PDF)
    html = await stored_ref(stored.bodies, HTML_BYTES, HTML)
    absent = DocumentRef(sha256=hashlib.sha256(b"never stored").hexdigest(), size=12, media_type=HTML)
    jobs = {await create_job(stored.edge, ref, max_retries=0): ref for ref in (pdf, html, absent)}
    async with reference_node(stored.edge, tmp_path / "node"):
        views = {job_id: await settled(stored.edge, job_id, frozenset({"completed", "dead"})) for job_id in jobs}
    for job_id, ref in jobs.items():
        view = views[job_id]
        if ref is absent:
            assert view.status == "dead"
            reasons = [entry.reason or "" for entry in view.history if entry.reason]
            assert any(reason.startswith("body_missing: extract_text: ") for reason in reasons), reasons
            assert any(f"404 not_found: no body {absent.sha256}" in reason for reason in reasons), reasons
            continue
        data = PDF_BYTES if ref is pdf else HTML_BYTES
        result, checksum = expected_result(ref, data)
        assert view.status == "completed", view.history
        assert (view.result, view.result_checksum) == (result, checksum)
        assert view.result["media_type"] == ref.media_type and view.result["text"]
    assert views[next(iter(jobs))].result["pages"] == 2  # type: ignore[index]


async def claimed_by(http: aiohttp.ClientSession, edge: Edge, node: dict[str, Any], job_id: str) -> None:
    async with http.get(
        f"{edge.url}/compute/job",
        params={"job_types": "extract_text", "wait_s": "5", "concurrency": "8"},
        headers={"Authorization": f"Bearer {node['session_token']}"},
    ) as response:
        assert response.status == 200, await response.text()
        offer = await response.json()
    assert offer["job_id"] == job_id


async def document(
    http: aiohttp.ClientSession, edge: Edge, token: str, job_id: str, sha256: str
) -> tuple[int, dict[str, Any] | bytes, aiohttp.typedefs.LooseHeaders]:
    async with http.get(
        f"{edge.url}/compute/jobs/{job_id}/documents/{sha256}", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        body = await response.read()
        if response.content_type == "application/json":
            return response.status, msgspec.json.decode(body), response.headers
        return response.status, body, response.headers


async def test_the_holder_reads_its_jobs_body_and_every_other_request_is_refused_typed(stored: Stored) -> None:
    edge, bodies = stored.edge, stored.bodies
    pdf = await stored_ref(bodies, PDF_BYTES, PDF)
    async with aiohttp.ClientSession() as http:
        holder = await registered_node(http, edge)
        peer = await registered_node(http, edge)
        job_id = await create_job(edge, pdf)
        await claimed_by(http, edge, holder, job_id)

        status, body, headers = await document(http, edge, holder["session_token"], job_id, pdf.sha256)
        assert (status, body) == (200, PDF_BYTES)
        assert headers["Content-Type"] == PDF and headers["X-Content-Sha256"] == pdf.sha256
        assert int(headers["Content-Length"]) == len(PDF_BYTES)

        async def refused(token: str, job: str, sha256: str) -> tuple[int, str]:
            status, error, _ = await document(http, edge, token, job, sha256)
            assert isinstance(error, dict), error
            assert set(error) == {"code", "message", "field", "correlation_id"}
            return status, error["code"]

        # a peer asking for the holder's job
        assert await refused(peer["session_token"], job_id, pdf.sha256) == (403, "forbidden")
        # a digest the payload does not name, though the store has it
        other = await stored_ref(bodies, HTML_BYTES, HTML)
        assert await refused(holder["session_token"], job_id, other.sha256) == (404, "not_found")
        # no such job; a bad token; no token; a malformed digest
        assert await refused(holder["session_token"], "no-such-job", pdf.sha256) == (404, "not_found")
        assert await refused("ccs_not-a-real-token", job_id, pdf.sha256) == (401, "unauthorized")
        assert await refused("", job_id, pdf.sha256) == (401, "unauthorized")
        assert await refused(holder["session_token"], job_id, "AB" * 32) == (400, "bad_input")

        # a job nobody holds (queued)
        queued = await create_job(edge, other)
        assert await refused(holder["session_token"], queued, other.sha256) == (409, "conflict")
        await claimed_by(http, edge, peer, queued)

        # the store's body is not of the size the reference says
        wrong_size = await stored_ref(bodies, b"<p>" + b"x" * 500 + b"</p>", HTML, size=400)
        job_wrong = await create_job(edge, wrong_size)
        await claimed_by(http, edge, holder, job_wrong)
        assert await refused(holder["session_token"], job_wrong, wrong_size.sha256) == (409, "conflict")

        # a body over the edge's limit is refused before any of it is read
        big = await stored_ref(bodies, b"<p>" + b"y" * MAX_DOCUMENT_BYTES + b"</p>", HTML)
        job_big = await create_job(edge, big)
        await claimed_by(http, edge, holder, job_big)
        assert await refused(holder["session_token"], job_big, big.sha256) == (413, "payload_too_large")

        # a named body missing from the store
        missing = DocumentRef(sha256=hashlib.sha256(b"gone").hexdigest(), size=4, media_type=HTML)
        job_missing = await create_job(edge, missing)
        await claimed_by(http, edge, holder, job_missing)
        assert await refused(holder["session_token"], job_missing, missing.sha256) == (404, "not_found")

        # once the job is completed its body is no longer served, even to the node that held it
        result, checksum = expected_result(pdf, PDF_BYTES)
        async with http.post(
            f"{edge.url}/compute/job/result",
            json={"job_id": job_id, "result": result, "checksum": checksum},
            headers={"Authorization": f"Bearer {holder['session_token']}"},
        ) as response:
            assert response.status == 200, await response.text()
        assert await refused(holder["session_token"], job_id, pdf.sha256) == (409, "conflict")


async def test_a_body_larger_than_its_chunk_streams_whole(stored: Stored) -> None:
    """Several object-store chunks (128 KiB each) pass through in order, whole and unaltered."""
    data = b"<html><body>" + b"".join(b"<p>paragraph %d</p>" % i for i in range(8_000)) + b"</body></html>"
    assert 128 * 1024 < len(data) <= MAX_DOCUMENT_BYTES
    ref = await stored_ref(stored.bodies, data, HTML)
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, stored.edge)
        job_id = await create_job(stored.edge, ref)
        await claimed_by(http, stored.edge, node, job_id)
        status, body, _ = await document(http, stored.edge, node["session_token"], job_id, ref.sha256)
    assert status == 200 and body == data


async def test_a_stored_body_that_is_not_its_name_is_cut_short_never_served_whole(stored: Stored) -> None:
    """A writer that names bytes wrongly (the store checks only its own digest): the edge finds
    out at the last chunk and stops short of Content-Length, so the node never holds the body."""
    impostor = b"<p>" + b"z" * 150_000 + b"</p>"
    wanted = hashlib.sha256(b"the real document").hexdigest()
    await stored.bodies._store.put(wanted, impostor)
    ref = DocumentRef(sha256=wanted, size=len(impostor), media_type=HTML)
    assert 128 * 1024 < ref.size <= MAX_DOCUMENT_BYTES  # two chunks: the first goes out, the last does not
    edge = stored.edge
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        job_id = await create_job(edge, ref)
        await claimed_by(http, edge, node, job_id)
        async with http.get(
            f"{edge.url}/compute/jobs/{job_id}/documents/{wanted}",
            headers={"Authorization": f"Bearer {node['session_token']}"},
        ) as response:
            assert response.status == 200 and response.content_length == ref.size
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
