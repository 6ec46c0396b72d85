"""A node's work over the edge's WebSocket, against the real registry and scheduler on real NATS
and Postgres: hello → ready → offer → result → ack, and every bad frame answered with a typed
error that leaves the connection and all state sound."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import nats
import pytest
from nats.aio.msg import Msg

from ccn_core import subjects
from ccn_core.commands import CommandClient
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import JOBS
from ccn_edge.app import start_edge
from ccn_edge.connection_limits import SocketLimits
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from ccn_proto.node_protocol import MIN_NODE_VERSION, PROTOCOL_VERSION
from ccn_proto.scheduler import CreateBatch, CreateJob, CreateJobReply, GetJob, JobView
from ccn_registry.app import start_registry
from ccn_scheduler.app import start_scheduler
from tests.conftest import make_settings
from tests.integration.test_scheduler import FAST, answering
from tests.support.servers import until_ready
from tests.support.validation import validation_service


@dataclass(frozen=True)
class Edge:
    url: str
    settings: Settings
    scheduler: CommandClient


@contextlib.asynccontextmanager
async def running_edge(settings: Settings) -> AsyncIterator[tuple[Edge, SocketLimits]]:
    """The registry, the scheduler and an edge in this loop, once the edge answers ready."""
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_runtime("registry", settings))
        await start_registry(registry, health=False, observe=False)
        scheduler = await stack.enter_async_context(open_runtime("scheduler", settings))
        await start_scheduler(scheduler, health=False, options=FAST)
        await stack.enter_async_context(validation_service(settings))
        edge_runtime = await stack.enter_async_context(open_runtime("edge", settings))
        limits = start_edge(edge_runtime)
        await answering(settings.effective_nats_url)
        url = f"http://127.0.0.1:{settings.edge_port}"
        async with aiohttp.ClientSession() as http:
            await until_ready(http, url, timeout_s=10)
        yield Edge(url=url, settings=settings, scheduler=CommandClient(scheduler.nc, timeout=10)), limits


async def job_view(edge: Edge, job_id: str) -> JobView:
    """The job as the scheduler tells it; one whose result is being judged, once it is settled."""
    async with asyncio.timeout(15):
        while True:
            view = await edge.scheduler.call("scheduler", "get_job", GetJob(job_id=job_id), JobView, correlation_id="t")
            if view.status != "validating":
                return view
            await asyncio.sleep(0.05)


@pytest.fixture
async def edge(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Edge]:
    settings = msgspec.structs.replace(make_settings(isolated_nats, fresh_database, tmp_path), max_frame_bytes=64_000)
    async with running_edge(settings) as (running, _):
        yield running


async def registered_node(http: aiohttp.ClientSession, edge: Edge) -> dict[str, Any]:
    async with http.post(
        f"{edge.url}/compute/register-node",
        json={"consent_flag": True, "user_agent": "test-node/0.1"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    ) as response:
        assert response.status == 201
        node: dict[str, Any] = await response.json()
    version = current_consent_version()
    async with http.post(
        f"{edge.url}/compute/consent",
        json={"consent_version": version, "consent_hash": consent_catalogue()[version]},
        headers={"Authorization": f"Bearer {node['api_token']}"},
    ) as response:
        assert response.status == 200
    return node


def hello(node: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {
        "type": "hello",
        "session_token": node["session_token"],
        "node_version": MIN_NODE_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "capabilities": {"job_types": ["extract_text"], "concurrency": 2},
        **overrides,
    }


async def next_frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 15) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    frame: dict[str, Any] = json.loads(message.data)
    return frame


@contextlib.asynccontextmanager
async def connected(
    http: aiohttp.ClientSession, edge: Edge, node: dict[str, Any]
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with http.ws_connect(f"{edge.url.replace('http', 'ws')}/ws", max_msg_size=0) as ws:
        await ws.send_json(hello(node))
        welcome = await next_frame(ws)
        assert welcome["type"] == "welcome", welcome
        assert welcome["node_public_id"] == node["node_public_id"]
        yield ws


async def create_job(edge: Edge, index: int = 0, *, lease_s: float = 30) -> CreateJobReply:
    page = grant_pages(index + 1)[index]
    return await edge.scheduler.call(
        "scheduler",
        "create_job",
        CreateJob(job_type="extract_text", payload={"html": page.html, "url": page.url}, lease_s=lease_s),
        CreateJobReply,
        correlation_id=f"test-job-{index}",
    )


async def test_a_job_goes_out_over_the_socket_and_its_result_comes_back(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        created = await create_job(edge)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws)
            assert offer["type"] == "job_offer", offer
            assert offer["job_id"] == created.job_id
            assert offer["correlation_id"] == "test-job-0"
            await ws.send_json({"type": "heartbeat", "job_ids": [offer["job_id"]]})
            result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
            await ws.send_json(
                {"type": "result", "job_id": offer["job_id"], "result": result, "checksum": result_checksum(result)}
            )
            ack = await next_frame(ws)
            assert ack == {"type": "ack", "job_id": created.job_id, "status": "validating"}
            await ws.send_json({"type": "bye"})
        view = await job_view(edge, created.job_id)
        assert view.status == "completed"
        assert view.result == result
        assert {entry.correlation_id for entry in view.history} == {"test-job-0"}


async def test_a_result_that_asks_for_more_brings_the_next_offer_in_the_same_round_trip(edge: Edge) -> None:
    """A result frame's `ready` is the node's next ask: with work waiting, the offer follows the
    ack without a Ready frame; with none, the edge keeps asking for the node, as after Ready."""
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        first, second = await create_job(edge, 0), await create_job(edge, 1)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offers = []
            for expected in (first, second):
                offer = await next_frame(ws)
                assert offer["type"] == "job_offer", offer
                assert offer["job_id"] == expected.job_id
                offers.append(offer)
                result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
                await ws.send_json(
                    {
                        "type": "result",
                        "job_id": offer["job_id"],
                        "result": result,
                        "checksum": result_checksum(result),
                        "ready": 1,
                    }
                )
                assert await next_frame(ws) == {"type": "ack", "job_id": expected.job_id, "status": "validating"}
            assert offers[1]["correlation_id"] == "test-job-1"  # the next job's own thread
            third = await create_job(edge, 2)
            offer = await next_frame(ws)
            assert offer["type"] == "job_offer", offer
            assert offer["job_id"] == third.job_id


async def test_a_node_that_reconnects_finishes_the_job_it_held_on_the_new_connection(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        created = await create_job(edge)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws)
            assert offer["job_id"] == created.job_id
        # the connection dropped (no bye); the node kept running the job
        result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "heartbeat", "job_ids": [offer["job_id"]]})
            await ws.send_json(
                {"type": "result", "job_id": offer["job_id"], "result": result, "checksum": result_checksum(result)}
            )
            ack = await next_frame(ws)
            assert ack == {"type": "ack", "job_id": created.job_id, "status": "validating"}, ack
        view = await edge.scheduler.call(
            "scheduler", "get_job", GetJob(job_id=created.job_id), JobView, correlation_id="t"
        )
        assert [entry.type for entry in view.history].count("job.claimed") == 1, "the job was not run twice"
        assert {entry.correlation_id for entry in view.history} == {"test-job-0"}


async def test_a_node_that_restarted_without_its_jobs_gets_new_work_after_its_first_heartbeat(edge: Edge) -> None:
    """The edge takes the scheduler's word at hello that the node holds its old job; the
    node's heartbeat does not name it (the process restarted and lost it), so the edge lets go
    of it, and once the old lease runs out the next job is offered without another ready.
    (Before, the edge counted the old job against the node for the rest of the connection: a
    node that restarted while holding as many jobs as its concurrency never got work again.)"""
    one_slot = {"job_types": ["extract_text"], "concurrency": 1}
    url = f"{edge.url.replace('http', 'ws')}/ws"
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        first = await create_job(edge, 0, lease_s=2)
        # the old socket stays open, as a killed process's may until the edge notices: the
        # node's session is not over, so its job is not released
        async with http.ws_connect(url, max_msg_size=0) as old:
            await old.send_json(hello(node, capabilities=one_slot))
            assert (await next_frame(old))["type"] == "welcome"
            await old.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(old)
            assert offer["job_id"] == first.job_id
            second = await create_job(edge, 1)
            async with http.ws_connect(url, max_msg_size=0) as ws:
                await ws.send_json(hello(node, capabilities=one_slot))
                assert (await next_frame(ws))["type"] == "welcome"
                await ws.send_json({"type": "ready", "slots": 1})
                with pytest.raises(TimeoutError):
                    await next_frame(ws, timeout=1.5)  # the old job fills the node's one slot
                await ws.send_json({"type": "heartbeat", "job_ids": []})
                offer = await next_frame(ws)
                assert offer["type"] == "job_offer" and offer["job_id"] == second.job_id, offer


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        (b'{"type": "ready", "slots": ', "bad_input", None),
        (b'{"type": "teleport"}', "bad_input", "type"),
        (b'{"type": "ready", "slots": "many"}', "bad_input", "slots"),
        (b'{"type": "result", "job_id": "nope", "result": {}, "checksum": "00"}', "conflict", None),
        (b'{"type": "fail", "job_id": "nope", "reason": "x"}', "conflict", None),
        (b'{"type": "heartbeat", "job_ids": ["' + b"x" * 70_000 + b'"]}', "payload_too_large", None),
    ],
    ids=["malformed", "unknown-type", "wrong-type", "result-not-held", "fail-not-held", "oversized"],
)
async def test_a_bad_frame_gets_a_typed_error_and_the_connection_carries_on(
    edge: Edge, frame: bytes, code: str, field: str | None
) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with connected(http, edge, node) as ws:
            await ws.send_bytes(frame)
            error = await next_frame(ws)
            assert error["type"] == "error", error
            assert error["code"] == code, error
            if field is not None:
                assert error["field"] == field, error
            # still sound: work flows on the same connection
            created = await create_job(edge)
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws)
            assert offer["job_id"] == created.job_id, offer


async def test_a_result_with_a_wrong_checksum_is_refused_and_the_job_stays_held(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        await create_job(edge)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws)
            result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
            await ws.send_json({"type": "result", "job_id": offer["job_id"], "result": result, "checksum": "0" * 64})
            error = await next_frame(ws)
            assert (error["type"], error["job_id"]) == ("error", offer["job_id"]), error
            await ws.send_json(
                {"type": "result", "job_id": offer["job_id"], "result": result, "checksum": result_checksum(result)}
            )
            assert (await next_frame(ws))["status"] == "validating"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"node_version": "0.0.1"}, "upgrade_required"),
        ({"protocol_version": PROTOCOL_VERSION + 1}, "upgrade_required"),
        ({"capabilities": {"job_types": ["mine_bitcoin"], "concurrency": 1}}, "bad_input"),
        ({"session_token": "ccs_garbage"}, "unauthorized"),
    ],
    ids=["old-node", "future-protocol", "unknown-job-type", "bad-token"],
)
async def test_a_refused_hello_says_why_and_closes(edge: Edge, overrides: dict[str, Any], code: str) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with http.ws_connect(f"{edge.url.replace('http', 'ws')}/ws") as ws:
            await ws.send_json(hello(node, **overrides))
            error = await next_frame(ws)
            assert (error["type"], error["code"]) == ("error", code), error
            if code == "upgrade_required":
                assert MIN_NODE_VERSION in error["message"]
            assert (await next_frame(ws))["type"] == "bye"
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_a_flood_of_bad_frames_closes_the_connection_with_a_reason(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with connected(http, edge, node) as ws:
            for _ in range(40):
                with contextlib.suppress(ConnectionResetError):
                    await ws.send_str("not json")
            frames = []
            while True:
                message = await ws.receive(timeout=10)
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                frames.append(json.loads(message.data))
            assert frames[-1] == {"type": "bye", "reason": "too many bad frames"}
            assert ws.close_code == 1008


async def admin_call(http: aiohttp.ClientSession, edge: Edge, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {edge.settings.admin_token}", **kwargs.pop("headers", {})}
    async with http.request(method, f"{edge.url}{path}", headers=headers, **kwargs) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text else None)


async def test_operators_submit_follow_and_cancel_jobs_over_http(edge: Edge) -> None:
    page = grant_pages(1)[0]
    body = {"job_type": "extract_text", "payload": {"html": page.html}}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    async with aiohttp.ClientSession() as http:
        status, first = await admin_call(http, edge, "POST", "/jobs", json=body, headers=key)
        assert status == 201, first
        status, again = await admin_call(http, edge, "POST", "/jobs", json=body, headers=key)
        assert (status, again["job_id"], again["created"]) == (200, first["job_id"], False)
        status, other = await admin_call(http, edge, "POST", "/jobs", json={**body, "priority": 5}, headers=key)
        assert status == 409, other
        status, view = await admin_call(http, edge, "GET", f"/jobs/{first['job_id']}")
        assert (status, view["status"]) == (200, "queued"), view
        status, none_yet = await admin_call(http, edge, "GET", f"/jobs/{first['job_id']}/result")
        assert status == 409, none_yet
        status, cancelled = await admin_call(http, edge, "POST", f"/jobs/{first['job_id']}/cancel", json={})
        assert (status, cancelled["status"]) == (200, "cancelled"), cancelled
        status, refused = await admin_call(
            http, edge, "GET", f"/jobs/{first['job_id']}", headers={"Authorization": "x"}
        )
        assert status == 401, refused


async def test_a_batch_resent_after_a_failure_creates_nothing_twice(edge: Edge) -> None:
    lines = b"\n".join(
        json.dumps({"job_type": "extract_text", "payload": {"html": page.html, "url": page.url}}).encode()
        for page in grant_pages(7)
    )
    async with aiohttp.ClientSession() as http:
        path = "/jobs/batch?batch_id=b-1&dataset_source=demo&dataset_version=v1&chunk_size=3"
        status, first = await admin_call(http, edge, "POST", path, data=lines)
        assert (status, first["jobs"], first["created"]) == (201, 7, 7), first
        status, again = await admin_call(http, edge, "POST", path, data=lines)
        assert (status, again["created"], again["existing"]) == (200, 0, 7), again
        assert again["job_ids"] == first["job_ids"]
        status, view = await admin_call(http, edge, "GET", f"/jobs/{first['job_ids'][4]}")
        assert (view["batch_id"], view["dataset_source"], view["dataset_version"]) == ("b-1", "demo", "v1")
        bad = lines + b'\n{"job_type": "extract_text", "payload": "not an object"}'
        status, error = await admin_call(http, edge, "POST", "/jobs/batch?batch_id=b-2", data=bad)
        assert (status, error["field"]) == (400, "line 8: payload"), error


async def test_a_batch_says_which_of_its_chunks_continue_it_so_a_busy_scheduler_refuses_only_its_first(
    edge: Edge,
) -> None:
    """The scheduler refuses a creation behind others waiting past its bound, except a chunk that
    says it continues a batch begun (test_scheduler.py shows both). So the edge must say so of
    every chunk after the first, and of the first never."""
    nc = await nats.connect(edge.settings.effective_nats_url)
    sent: list[CreateBatch] = []

    async def overheard(msg: Msg) -> None:
        sent.append(msgspec.json.decode(msg.data, type=CreateBatch))

    try:
        # a plain subscription hears every command beside the scheduler's queue group
        await nc.subscribe(subjects.command("scheduler", "create_batch"), cb=overheard)
        await nc.flush()
        async with aiohttp.ClientSession() as http:
            path = "/jobs/batch?batch_id=chunked&chunk_size=3"
            status, reply = await admin_call(http, edge, "POST", path, data=b"\n".join(batch_lines(7)))
            assert (status, reply["created"]) == (201, 7), reply
        await nc.flush()
    finally:
        await nc.close()
    assert [(len(chunk.jobs), chunk.continues_batch) for chunk in sent] == [(3, False), (3, True), (1, True)]


async def jobs_created(edge: Edge) -> int:
    """How many jobs the event store holds a job.created event of."""
    nc = await nats.connect(edge.settings.effective_nats_url)
    try:
        info = await nc.jetstream().stream_info(JOBS.name, subjects_filter="ccn.job.*.created")
    finally:
        await nc.close()
    return len(info.state.subjects or {})


def batch_lines(pages: int) -> list[bytes]:
    return [
        json.dumps({"job_type": "extract_text", "payload": {"html": page.html, "url": page.url}}).encode()
        for page in grant_pages(pages)
    ]


@pytest.mark.parametrize(
    ("last_line", "status", "field"),
    [
        ({"job_type": "extract_text", "payload": {"html": 5}}, 400, "line 7: payload.html"),
        ({"job_type": "extract_text", "payload": {"html": "<p>x</p>", "url": "ftp://no"}}, 400, "line 7: payload.url"),
        ({"job_type": "extract_text", "payload": {"html": "<p>x</p>", "extra": 1}}, 400, "line 7: payload.extra"),
        ({"job_type": "extract_text", "payload": {"html": "x" * 800_000}}, 413, "line 7: payload"),
        ({"job_type": "no_such_type", "payload": {"html": "<p>x</p>"}}, 422, "line 7: job_type"),
        ({"job_type": "Not A Type!", "payload": {}}, 422, "line 7: job_type"),
    ],
)
async def test_a_batch_refused_in_its_last_chunk_creates_nothing(
    edge: Edge, last_line: dict[str, Any], status: int, field: str
) -> None:
    good = batch_lines(6)
    body = b"\n".join([*good, json.dumps(last_line).encode()])
    async with aiohttp.ClientSession() as http:
        path = "/jobs/batch?batch_id=all-or-nothing&chunk_size=2"  # four chunks; the bad line is alone in the last
        answer, error = await admin_call(http, edge, "POST", path, data=body)
        assert (answer, error["field"]) == (status, field), error
        assert error["message"].startswith("line 7: "), error
        # the six good lines, sent alone, are all new: none of the refused batch's chunks was created
        answer, resent = await admin_call(http, edge, "POST", path, data=b"\n".join(good))
        assert (answer, resent["created"], resent["existing"]) == (201, 6, 0), resent
    assert await jobs_created(edge) == 6


HOSTILE_JOB_QUERIES: list[tuple[str, str]] = [
    ("/jobs/batch?batch_id=b%00", "batch_id"),
    ("/jobs/batch?batch_id=b%0A", "batch_id"),
    ("/jobs/batch?batch_id=" + "b" * 129, "batch_id"),
    ("/jobs/batch?batch_id=b&batch_id=c", "batch_id"),
    ("/jobs/batch?batch_id=b&dataset_source=demo%00", "dataset_source"),
    ("/jobs/batch?batch_id=b&dataset_source=demo%0A", "dataset_source"),
    ("/jobs/batch?batch_id=b&dataset_source=" + "s" * 1001, "dataset_source"),
    ("/jobs/batch?batch_id=b&dataset_version=v%1B", "dataset_version"),
    ("/jobs/batch?batch_id=b&chunk_size=0", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=1001", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=-1", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=99999999999999999999999", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=1e2", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=2.5", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=NaN", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=ten", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=", "chunk_size"),
    ("/jobs/batch?batch_id=b&chunk_size=5&chunk_size=6", "chunk_size"),
]


async def test_hostile_job_api_parameters_are_400_naming_the_parameter(edge: Edge) -> None:
    line = batch_lines(1)[0]
    async with aiohttp.ClientSession() as http:
        for path, field in HOSTILE_JOB_QUERIES:
            status, error = await admin_call(http, edge, "POST", path, data=line)
            assert (status, error["code"], error["field"]) == (400, "bad_input", field), (path, error)
        for job_id in ("job%00", "job%0A", "j%7F", "x" * 65):
            for suffix in ("", "/result"):
                status, error = await admin_call(http, edge, "GET", f"/jobs/{job_id}{suffix}")
                assert (status, error["field"]) == (400, "job_id"), (job_id, error)
            status, error = await admin_call(http, edge, "POST", f"/jobs/{job_id}/cancel", json={})
            assert (status, error["field"]) == (400, "job_id"), (job_id, error)
    # none of it reached the scheduler: no job was created
    assert await jobs_created(edge) == 0


async def test_a_simple_client_takes_renews_and_completes_a_job_over_http(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        auth = {"Authorization": f"Bearer {node['session_token']}"}
        async with http.get(f"{edge.url}/compute/job?job_types=extract_text&wait_s=0", headers=auth) as response:
            assert response.status == 204
        created = await create_job(edge, 2)
        async with http.get(f"{edge.url}/compute/job?job_types=extract_text&wait_s=5", headers=auth) as response:
            assert response.status == 200
            offer = await response.json()
        assert offer["job_id"] == created.job_id
        async with http.post(f"{edge.url}/compute/telemetry", json={"job_ids": [created.job_id]}, headers=auth) as r:
            assert (r.status, (await r.json())["lost"]) == (200, [])
        result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
        body = {"job_id": created.job_id, "result": result, "checksum": result_checksum(result)}
        thread = {**auth, "X-Correlation-ID": offer["correlation_id"]}
        async with http.post(f"{edge.url}/compute/job/result", json=body, headers=thread) as response:
            assert (response.status, (await response.json())["status"]) == (200, "validating")
        async with http.post(
            f"{edge.url}/compute/job/fail", json={"job_id": created.job_id, "reason": "late"}, headers=auth
        ) as response:
            assert response.status == 409


async def test_a_claim_waiting_for_a_node_that_left_is_withdrawn_and_takes_nothing(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            await asyncio.sleep(0.3)  # the edge's claim now waits at the scheduler for a job
        await asyncio.sleep(0.3)  # the edge has seen the node go
        created = await create_job(edge)
        await asyncio.sleep(1.0)  # long enough for a waiting claim to have taken it
        view = await edge.scheduler.call(
            "scheduler", "get_job", GetJob(job_id=created.job_id), JobView, correlation_id="t"
        )
        assert view.status == "queued", view
        assert [entry.type for entry in view.history] == ["job.created"]


async def test_after_many_nodes_leave_a_few_nodes_get_every_job_at_once(edge: Edge) -> None:
    """Nodes that left while their claims waited must not take the next jobs: each such claim
    would hand its job back as a failure (an attempt spent, a backoff), and a run of them would
    kill jobs or stall the few nodes still connected."""
    async with aiohttp.ClientSession() as http:
        leaving = await asyncio.gather(*(registered_node(http, edge) for _ in range(12)))
        async with contextlib.AsyncExitStack() as sockets:
            for node in leaving:
                ws = await sockets.enter_async_context(connected(http, edge, node))
                await ws.send_json({"type": "ready", "slots": 2})
            await asyncio.sleep(0.3)  # every claim now waits at the scheduler
        created = [await create_job(edge, index) for index in range(8)]
        staying = await asyncio.gather(*(registered_node(http, edge) for _ in range(2)))
        offers: list[dict[str, Any]] = []
        async with contextlib.AsyncExitStack() as sockets:
            sockets_ = [await sockets.enter_async_context(connected(http, edge, node)) for node in staying]

            async def work(ws: aiohttp.ClientWebSocketResponse) -> None:
                await ws.send_json({"type": "ready", "slots": 2})
                while len(offers) < len(created):
                    frame = await next_frame(ws, timeout=5)
                    if frame["type"] == "job_offer":
                        offers.append(frame)
                        result = result_to_builtins(run_job(frame["job_type"], frame["payload"]))
                        checksum = result_checksum(result)
                        await ws.send_json(
                            {"type": "result", "job_id": frame["job_id"], "result": result, "checksum": checksum}
                        )
                    elif frame["type"] == "ack":
                        await ws.send_json({"type": "ready", "slots": 1})

            async with asyncio.timeout(5):
                done, _ = await asyncio.wait(
                    [asyncio.create_task(work(ws)) for ws in sockets_], return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
        assert sorted(offer["job_id"] for offer in offers) == sorted(job.job_id for job in created)
        assert {offer["attempt"] for offer in offers} == {1}, "no job was spent on a node that had left"


@pytest.fixture
async def quick_release_edge(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Edge]:
    settings = msgspec.structs.replace(
        make_settings(isolated_nats, fresh_database, tmp_path), max_frame_bytes=64_000, node_release_grace_s=1.0
    )
    async with running_edge(settings) as (running, _):
        yield running


async def test_a_node_gone_without_bye_has_its_job_back_after_the_grace_not_the_lease(
    quick_release_edge: Edge,
) -> None:
    edge = quick_release_edge
    async with aiohttp.ClientSession() as http:
        gone, other = await registered_node(http, edge), await registered_node(http, edge)
        created = await create_job(edge, lease_s=600)
        async with connected(http, edge, gone) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            assert (await next_frame(ws))["job_id"] == created.job_id
        # the socket closed without a bye (a killed process): the job comes back after the
        # 1-second grace, not after its 10-minute lease
        async with connected(http, edge, other) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws, timeout=10)
            assert (offer["job_id"], offer["attempt"]) == (created.job_id, 2), offer
    view = await job_view(edge, created.job_id)
    abandoned = [entry for entry in view.history if entry.type == "job.abandoned"]
    assert [(entry.node_id, entry.reason) for entry in abandoned] == [(gone["node_public_id"], "node disconnected")]


async def test_a_node_back_within_the_grace_naming_its_job_keeps_it(quick_release_edge: Edge) -> None:
    edge = quick_release_edge
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        created = await create_job(edge, lease_s=600)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws)
        url = f"{edge.url.replace('http', 'ws')}/ws"
        async with http.ws_connect(url, max_msg_size=0) as ws:
            await ws.send_json(hello(node, running=[created.job_id]))
            assert (await next_frame(ws))["type"] == "welcome"
            await asyncio.sleep(2.0)  # past the grace: it named the job, so the job stays its own
            result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
            await ws.send_json(
                {"type": "result", "job_id": created.job_id, "result": result, "checksum": result_checksum(result)}
            )
            assert await next_frame(ws) == {"type": "ack", "job_id": created.job_id, "status": "validating"}
    view = await job_view(edge, created.job_id)
    assert [entry.type for entry in view.history] == [
        "job.created",
        "job.claimed",
        "job.result_submitted",
        "job.completed",
    ]


async def test_a_node_back_without_a_job_it_held_gives_it_back_at_once(quick_release_edge: Edge) -> None:
    edge = quick_release_edge
    async with aiohttp.ClientSession() as http:
        node, other = await registered_node(http, edge), await registered_node(http, edge)
        created = await create_job(edge, lease_s=600)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            assert (await next_frame(ws))["job_id"] == created.job_id
        url = f"{edge.url.replace('http', 'ws')}/ws"
        async with http.ws_connect(url, max_msg_size=0) as ws:
            # it restarted and lost the job: its hello names nothing it runs
            await ws.send_json(hello(node, running=[]))
            assert (await next_frame(ws))["type"] == "welcome"
            async with connected(http, edge, other) as other_ws:
                await other_ws.send_json({"type": "ready", "slots": 1})
                offer = await next_frame(other_ws, timeout=10)
                assert offer["job_id"] == created.job_id
