"""A node's fetches through the edge, against the real registry, scheduler, edge and NATS, with
the test itself answering `ccn.cmd.fetch.fetch_page` as the fetch proxy would: a fetch over the
socket and over HTTP reaches the proxy with the session's node (never one the node names) and
its answer comes back; a node past its fetches in flight, or fetching for a job it does not
hold, is refused; a proxy that does not answer is a typed `unavailable` with retry_after; a
body the proxy fetched for a job is served to that job's holder only; and the reference node's
crawl loop runs a crawl job's fetches and bodies through all of it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_cli.node.documents import EdgeDocuments, execute_crawl
from ccn_core.commands import CommandContext, CommandServer
from ccn_core.document_bodies import ObjectStoreBodies, open_body_store
from ccn_core.topology import FETCH_GRANTS
from ccn_proto.documents import PLAIN_TEXT, DocumentRef
from ccn_proto.fetch import FetchedPage, FetchOutcome, FetchPage, FetchRefused
from tests.conftest import make_settings
from tests.integration.test_edge_jobs import Edge, connected, create_job, next_frame, registered_node, running_edge
from tests.support.crawl_job import LINK_CRAWL

pytestmark = pytest.mark.timeout(90)

FETCHES_PER_NODE = 2
EDGE_WAIT_S = 1.0
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class FakeProxy:
    """Answers fetch_page: a page for every URL, except `/hold/...` (answered once `release` is
    set), `/silent/...` (never, within the edge's wait) and those in `pages` (their outcome)."""

    seen: list[FetchPage] = field(default_factory=list)
    correlations: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    pages: dict[str, FetchOutcome] = field(default_factory=dict)

    async def fetch_page(self, command: FetchPage, context: CommandContext) -> FetchOutcome:
        self.seen.append(command)
        self.correlations.append(context.correlation_id)
        if "/hold/" in command.url:
            await self.release.wait()
        if "/silent/" in command.url:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EDGE_WAIT_S * 3):
                    await self.release.wait()
        if command.url in self.pages:
            return self.pages[command.url]
        return FetchedPage(
            fetch_id=f"f-{len(self.seen)}", url=command.url, final_url=command.url, status=200, fetched_at=NOW
        )


@dataclass(frozen=True)
class Stack:
    edge: Edge
    proxy: FakeProxy
    nc: NATS


@pytest.fixture
async def stack(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = msgspec.structs.replace(
        make_settings(isolated_nats, fresh_database, tmp_path),
        edge_max_fetches_per_node=FETCHES_PER_NODE,
        edge_fetch_timeout_s=EDGE_WAIT_S,
    )
    nc = await nats.connect(isolated_nats)
    proxy = FakeProxy()
    server = CommandServer(nc, "fetch")
    server.register("fetch_page", FetchPage, proxy.fetch_page)
    await server.start()
    try:
        async with running_edge(settings) as (edge, _):
            yield Stack(edge=edge, proxy=proxy, nc=nc)
    finally:
        proxy.release.set()
        await server.stop(grace_s=1.0)
        await nc.close()


@contextlib.asynccontextmanager
async def holding_a_job(
    http: aiohttp.ClientSession, edge: Edge, node: dict[str, Any]
) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]]:
    """A socket of `node`'s, and the offer of a job it holds on it."""
    await create_job(edge)
    async with connected(http, edge, node) as ws:
        await ws.send_json({"type": "ready", "slots": 1})
        offer = await next_frame(ws)
        assert offer["type"] == "job_offer", offer
        yield ws, offer


def fetch_frame(request_id: str, job_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "fetch", "request_id": request_id, "job_id": job_id, "url": url, **extra}


async def frames_until(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [await next_frame(ws) for _ in range(count)]


async def test_a_fetch_over_the_socket_goes_out_as_the_sessions_node_and_its_answer_comes_back(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, stack.edge)
        async with holding_a_job(http, stack.edge, node) as (ws, offer):
            url = "https://funder.example/grants"
            await ws.send_json(fetch_frame("r-1", offer["job_id"], url, if_none_match='"v1"'))
            answer = await next_frame(ws)
    assert answer["type"] == "fetch_result" and answer["request_id"] == "r-1", answer
    outcome = msgspec.convert(answer["outcome"], FetchedPage, strict=False)
    assert (outcome.url, outcome.status, outcome.fetch_id) == (url, 200, "f-1")
    assert stack.proxy.seen == [
        FetchPage(job_id=offer["job_id"], node_id=node["node_public_id"], url=url, if_none_match='"v1"')
    ]
    assert stack.proxy.correlations == [offer["correlation_id"]]  # the job's thread, as its result's


async def test_a_frame_naming_a_node_or_a_job_the_connection_does_not_hold_reaches_no_proxy(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        node, other = await registered_node(http, stack.edge), await registered_node(http, stack.edge)
        async with holding_a_job(http, stack.edge, node) as (ws, offer):
            url = "https://funder.example/"
            await ws.send_json(fetch_frame("r-1", offer["job_id"], url, node_id=other["node_public_id"]))
            bad = await next_frame(ws)
            await ws.send_json(fetch_frame("r-2", "not-my-job", url))
            stranger = await next_frame(ws)
            # the connection carries on: a good fetch still goes through
            await ws.send_json(fetch_frame("r-3", offer["job_id"], url))
            good = await next_frame(ws)
    assert (bad["type"], bad["code"], bad["field"]) == ("error", "bad_input", "node_id"), bad
    assert (stranger["code"], stranger["request_id"], stranger["job_id"]) == ("conflict", "r-2", "not-my-job")
    assert (good["type"], good["request_id"]) == ("fetch_result", "r-3")
    assert [(seen.node_id, seen.job_id) for seen in stack.proxy.seen] == [(node["node_public_id"], offer["job_id"])]


async def test_past_its_fetches_in_flight_a_node_is_refused_until_one_is_answered(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, stack.edge)
        async with holding_a_job(http, stack.edge, node) as (ws, offer):
            job_id = offer["job_id"]
            for index in range(FETCHES_PER_NODE):
                await ws.send_json(fetch_frame(f"held-{index}", job_id, f"https://a.example/hold/{index}"))
            async with asyncio.timeout(10):
                while len(stack.proxy.seen) < FETCHES_PER_NODE:
                    await asyncio.sleep(0.01)
            await ws.send_json(fetch_frame("over", job_id, "https://a.example/over"))
            refused = await next_frame(ws)
            # over HTTP the same node meets the same cap on this edge
            async with http.post(
                f"{stack.edge.url}/compute/jobs/{job_id}/fetch",
                json={"url": "https://a.example/over-http"},
                headers={"Authorization": f"Bearer {node['session_token']}"},
            ) as response:
                http_status, retry_after = response.status, response.headers.get("Retry-After")
            stack.proxy.release.set()
            answered = await frames_until(ws, FETCHES_PER_NODE)
            await ws.send_json(fetch_frame("after", job_id, "https://a.example/after"))
            after = await next_frame(ws)
    assert (refused["type"], refused["code"], refused["request_id"]) == ("error", "rate_limited", "over"), refused
    assert refused["retry_after"] == 1.0 and refused["job_id"] == job_id
    assert (http_status, retry_after) == (429, "1")
    assert sorted(frame["request_id"] for frame in answered) == ["held-0", "held-1"]
    assert {frame["type"] for frame in answered} == {"fetch_result"}
    assert (after["type"], after["request_id"]) == ("fetch_result", "after")
    assert [seen.url for seen in stack.proxy.seen][-1] == "https://a.example/after"
    assert "https://a.example/over" not in [seen.url for seen in stack.proxy.seen]


async def test_a_proxy_that_does_not_answer_is_unavailable_with_retry_after(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, stack.edge)
        async with holding_a_job(http, stack.edge, node) as (ws, offer):
            await ws.send_json(fetch_frame("s-1", offer["job_id"], "https://a.example/silent/1"))
            # the socket is not held up meanwhile: a fetch sent after it is answered first
            await ws.send_json(fetch_frame("q-1", offer["job_id"], "https://a.example/quick"))
            quick = await next_frame(ws)
            silent = await next_frame(ws)
            async with http.post(
                f"{stack.edge.url}/compute/jobs/{offer['job_id']}/fetch",
                json={"url": "https://a.example/silent/2"},
                headers={"Authorization": f"Bearer {node['session_token']}"},
            ) as response:
                status, headers, body = response.status, response.headers, await response.json()
    assert (quick["type"], quick["request_id"]) == ("fetch_result", "q-1")
    assert (silent["type"], silent["code"], silent["request_id"]) == ("error", "unavailable", "s-1"), silent
    assert silent["retry_after"] >= 5.0 and "fetch proxy" in silent["message"]
    assert (status, body["code"]) == (503, "unavailable") and int(headers["Retry-After"]) >= 5


async def test_a_fetch_over_http_goes_out_as_the_sessions_node_and_returns_the_outcome(stack: Stack) -> None:
    url = "https://funder.example/private"
    stack.proxy.pages[url] = FetchRefused(
        fetch_id="f-9", url=url, stage="robots", reason="robots_disallowed", detail="Disallow: /private"
    )
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, stack.edge)
        headers = {"Authorization": f"Bearer {node['session_token']}"}
        endpoint = f"{stack.edge.url}/compute/jobs/job-42/fetch"
        async with http.post(endpoint, json={"url": url, "if_modified_since": "x"}, headers=headers) as response:
            assert response.status == 200, await response.text()
            outcome = await response.json()
        async with http.post(endpoint, json={"url": url, "node_id": "someone-else"}, headers=headers) as response:
            claimed = response.status, (await response.json())["field"]
        async with http.post(endpoint, json={"url": url}) as response:
            anonymous = response.status
    assert outcome == msgspec.to_builtins(stack.proxy.pages[url])
    assert stack.proxy.seen == [
        FetchPage(job_id="job-42", node_id=node["node_public_id"], url=url, if_modified_since="x")
    ]
    assert claimed == (400, "node_id") and anonymous == 401


async def grant(nc: NATS, job_id: str, sha256: str) -> None:
    bucket = await nc.jetstream().key_value(FETCH_GRANTS.bucket)
    await bucket.put(f"{job_id}.{sha256}", b"granted")


async def test_a_body_fetched_for_a_job_is_served_to_its_holder_only(stack: Stack) -> None:
    bodies = ObjectStoreBodies(await open_body_store(stack.nc.jetstream(), create=True))
    page = b"<html><body><p>Grants for rivers</p></body></html>"
    sha256 = await bodies.put(page)
    async with aiohttp.ClientSession() as http:
        holder, peer = await registered_node(http, stack.edge), await registered_node(http, stack.edge)
        async with holding_a_job(http, stack.edge, holder) as (_, offer):
            job_id = offer["job_id"]

            async def read(node: dict[str, Any], job: str) -> tuple[int, bytes, str]:
                async with http.get(
                    f"{stack.edge.url}/compute/jobs/{job}/documents/{sha256}",
                    headers={"Authorization": f"Bearer {node['session_token']}"},
                ) as response:
                    return response.status, await response.read(), response.headers.get("Content-Type", "")

            # not granted yet: the payload names no such body
            not_granted = await read(holder, job_id)
            await grant(stack.nc, job_id, sha256)
            served = await read(holder, job_id)
            to_peer = await read(peer, job_id)
            # a job of the peer's own, without the grant
            async with holding_a_job(http, stack.edge, peer) as (_, peer_offer):
                peer_job = await read(peer, peer_offer["job_id"])
    assert not_granted[0] == 404
    assert served == (200, page, "application/octet-stream")
    assert to_peer[0] == 403
    assert peer_job[0] == 404


async def test_the_reference_nodes_crawl_fetches_pages_and_bodies_through_the_edge(stack: Stack) -> None:
    """A crawl job's worker code (ccn_cli.node.documents.execute_crawl, in a thread as a worker
    would run it), with the edge over HTTP and the test playing the proxy that stores bodies and
    grants them to the job. The job the node holds is an extract_text job: the edge checks that
    the node holds it, the job's scope is the proxy's to check."""
    bodies = ObjectStoreBodies(await open_body_store(stack.nc.jetstream(), create=True))
    start, second = "https://funder.example/", "https://funder.example/rivers"
    texts = {start: f"link: {second}\nlink: https://elsewhere.example/\n".encode(), second: b"rivers\n"}
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, stack.edge)
        async with holding_a_job(http, stack.edge, node) as (_, offer):
            job_id = offer["job_id"]
            for url, text in texts.items():
                sha256 = await bodies.put(text)
                await grant(stack.nc, job_id, sha256)
                stack.proxy.pages[url] = FetchedPage(
                    fetch_id=url,
                    url=url,
                    final_url=url,
                    status=200,
                    content_type=PLAIN_TEXT,
                    body=DocumentRef(sha256=sha256, size=len(text), media_type=PLAIN_TEXT),
                    fetched_at=NOW,
                )
            source = EdgeDocuments(
                base_url=stack.edge.url,
                session_token=node["session_token"],
                job_id=job_id,
                timeout_s=30,
                read_timeout_s=10,
                user_agent="ccn-node/test",
                correlation_id=offer["correlation_id"],
            )
            result, _ = await asyncio.to_thread(execute_crawl, source, LINK_CRAWL, {"start": start})
    assert [(seen.url, seen.node_id, seen.job_id) for seen in stack.proxy.seen] == [
        (start, node["node_public_id"], job_id),
        (second, node["node_public_id"], job_id),
    ]
    assert stack.proxy.correlations == [offer["correlation_id"]] * 2
    assert result == {
        "pages": [
            {"url": url, "outcome": "fetched:200", "sha256": hashlib.sha256(text).hexdigest()}
            for url, text in texts.items()
        ]
    }


async def set_limits(http: aiohttp.ClientSession, edge: Edge, limits: dict[str, Any]) -> None:
    """Store `limits` and wait until the edge enforces them."""
    admin = {"Authorization": f"Bearer {edge.settings.admin_token}"}
    async with http.put(f"{edge.url}/admin/limits/", json=limits, headers=admin) as response:
        body = await response.json()
        assert response.status == 200, body
    async with asyncio.timeout(10):
        while True:
            async with http.get(f"{edge.url}/admin/limits/", headers=admin) as response:
                if (await response.json())["applied_revision"] == body["revision"]:
                    return
            await asyncio.sleep(0.02)


async def test_fetches_meet_the_nodes_own_fetch_rate_over_the_socket_and_over_http(stack: Stack) -> None:
    one_per_minute = {"rate": 1, "period_s": 60.0, "burst": 1}
    async with aiohttp.ClientSession() as http:
        await set_limits(http, stack.edge, {"per_node": {"ws.fetch": one_per_minute, "http.fetch": one_per_minute}})
        node = await registered_node(http, stack.edge)
        async with holding_a_job(http, stack.edge, node) as (ws, offer):
            for request_id in ("first", "second"):
                await ws.send_json(fetch_frame(request_id, offer["job_id"], f"https://a.example/{request_id}"))
            # the refusal is sent as the frame is read, the answer when the proxy gives it: any order
            answers = {frame["request_id"]: frame for frame in await frames_until(ws, 2)}
            first, second = answers["first"], answers["second"]
            statuses = []
            for _ in range(2):
                async with http.post(
                    f"{stack.edge.url}/compute/jobs/{offer['job_id']}/fetch",
                    json={"url": "https://a.example/http"},
                    headers={"Authorization": f"Bearer {node['session_token']}"},
                ) as response:
                    statuses.append((response.status, response.headers.get("Retry-After")))
    assert (first["type"], first["request_id"]) == ("fetch_result", "first")
    assert (second["type"], second["code"], second["request_id"]) == ("error", "rate_limited", "second"), second
    assert 0 < second["retry_after"] <= 60
    assert statuses[0] == (200, None) and statuses[1][0] == 429 and statuses[1][1] is not None
    assert [seen.url for seen in stack.proxy.seen] == ["https://a.example/first", "https://a.example/http"]
