"""Several jobs per node frame (issue #13): a node that says `batch_frames` gets the offers of one
claim as one `job_offers` frame and its acks as one `acks` frame, and any node may send several
results in one `results` frame, each judged on its own. Against the real registry and scheduler
on real NATS and Postgres; hostile batches are answered with typed errors and change nothing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from ccn_proto.node_protocol import MAX_FRAME_ITEMS
from tests.conftest import make_settings
from tests.integration.test_edge_jobs import (
    Edge,
    create_job,
    hello,
    job_view,
    next_frame,
    registered_node,
    running_edge,
)


@pytest.fixture
async def edge(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Edge]:
    settings = msgspec.structs.replace(make_settings(isolated_nats, fresh_database, tmp_path), max_frame_bytes=64_000)
    async with running_edge(settings) as (running, _):
        yield running


BATCHING = {"job_types": ["extract_text"], "concurrency": 4, "batch_frames": True}


@contextlib.asynccontextmanager
async def batching_node(
    http: aiohttp.ClientSession, edge: Edge, node: dict[str, Any], capabilities: dict[str, Any] = BATCHING
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with http.ws_connect(f"{edge.url.replace('http', 'ws')}/ws", max_msg_size=0) as ws:
        await ws.send_json(hello(node, capabilities=capabilities))
        assert (await next_frame(ws))["type"] == "welcome"
        yield ws


async def offers_until(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    """Offers as they come (several per `job_offers` frame, or one per `job_offer`) until `count`."""
    offers: list[dict[str, Any]] = []
    while len(offers) < count:
        frame = await next_frame(ws)
        if frame["type"] == "job_offers":
            assert all(item["type"] == "job_offer" for item in frame["offers"]), frame
            offers.extend(frame["offers"])
        else:
            assert frame["type"] == "job_offer", frame
            offers.append(frame)
    return offers


def item(offer: dict[str, Any], *, checksum: str | None = None) -> dict[str, Any]:
    result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
    return {"job_id": offer["job_id"], "result": result, "checksum": checksum or result_checksum(result)}


async def test_a_batching_node_gets_offers_and_acks_in_one_frame_each_and_its_next_offers_with_them(
    edge: Edge,
) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        created = [await create_job(edge, index) for index in range(4)]
        async with batching_node(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 4})
            first = await next_frame(ws)
            assert first["type"] == "job_offers", first  # all four were ready: one claim, one frame
            offers = first["offers"]
            assert {offer["job_id"] for offer in offers} == {job.job_id for job in created}
            assert {offer["correlation_id"] for offer in offers} == {f"test-job-{index}" for index in range(4)}
            later = [await create_job(edge, index) for index in range(4, 6)]
            await ws.send_json({"type": "results", "results": [item(offer) for offer in offers], "ready": 2})
            acks = await next_frame(ws)
            assert acks["type"] == "acks", acks
            assert sorted(acks["acks"], key=lambda ack: ack["job_id"]) == sorted(
                ({"type": "ack", "job_id": job.job_id, "status": "validating"} for job in created),
                key=lambda ack: ack["job_id"],
            )
            # the next two jobs ride on the results' answer, without a ready frame
            assert {offer["job_id"] for offer in await offers_until(ws, 2)} == {job.job_id for job in later}
        for index, job in enumerate(created):
            view = await job_view(edge, job.job_id)
            assert view.status == "completed"
            assert {entry.correlation_id for entry in view.history} == {f"test-job-{index}"}, "each on its own thread"


async def test_one_bad_result_in_a_batch_refuses_that_result_only(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        stranger = await registered_node(http, edge)
        for index in range(3):
            await create_job(edge, index)
        async with batching_node(http, edge, stranger) as other:
            await other.send_json({"type": "ready", "slots": 1})
            peer_offer = (await offers_until(other, 1))[0]
            async with batching_node(http, edge, node) as ws:
                await ws.send_json({"type": "ready", "slots": 2})
                good, bad = await offers_until(ws, 2)
                results = [item(good), item(bad, checksum="0" * 64), item(peer_offer)]
                await ws.send_json({"type": "results", "results": results})
                answers = [await next_frame(ws) for _ in range(3)]
                by_job = {answer.get("job_id"): answer for answer in answers}
                assert by_job[good["job_id"]] == {"type": "ack", "job_id": good["job_id"], "status": "validating"}
                assert (by_job[bad["job_id"]]["type"], by_job[bad["job_id"]]["code"]) == ("error", "bad_input")
                assert (by_job[peer_offer["job_id"]]["type"], by_job[peer_offer["job_id"]]["code"]) == (
                    "error",
                    "conflict",
                )
                # the refused result's job is still this node's: its corrected result is taken
                await ws.send_json({"type": "results", "results": [item(bad)]})
                assert await next_frame(ws) == {"type": "ack", "job_id": bad["job_id"], "status": "validating"}
        assert (await job_view(edge, peer_offer["job_id"])).status == "claimed", "a peer's job is not touched"


async def test_a_node_that_does_not_batch_gets_one_frame_per_job_for_its_results_frame(edge: Edge) -> None:
    plain = {"job_types": ["extract_text"], "concurrency": 2}
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        for index in range(2):
            await create_job(edge, index)
        async with batching_node(http, edge, node, plain) as ws:
            await ws.send_json({"type": "ready", "slots": 2})
            offers = [await next_frame(ws) for _ in range(2)]
            assert [offer["type"] for offer in offers] == ["job_offer", "job_offer"]
            await ws.send_json({"type": "results", "results": [item(offer) for offer in offers]})
            acks = [await next_frame(ws) for _ in range(2)]
            assert {(ack["type"], ack["job_id"]) for ack in acks} == {("ack", offer["job_id"]) for offer in offers}


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "results", "results": []}, "results"),
        (
            {
                "type": "results",
                "results": [
                    {"job_id": f"j{index}", "result": {}, "checksum": "0"} for index in range(MAX_FRAME_ITEMS + 1)
                ],
            },
            "results",
        ),
        ({"type": "results", "results": [{"job_id": "j", "result": {}}]}, "results[0].checksum"),
        (
            {"type": "results", "results": [{"job_id": "j", "result": {}, "checksum": "0", "ready": 1}]},
            "results[0].ready",
        ),
        ({"type": "results", "results": [], "ready": -1}, None),
    ],
    ids=["empty", "too-many", "missing-checksum", "unknown-field", "negative-ready"],
)
async def test_a_malformed_results_frame_is_refused_as_bad_input(
    edge: Edge, frame: dict[str, Any], field: str | None
) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with batching_node(http, edge, node) as ws:
            await ws.send_json(frame)
            error = await next_frame(ws)
            assert (error["type"], error["code"]) == ("error", "bad_input"), error
            if field is not None:
                assert error["field"] == field, error


async def test_a_job_named_twice_in_one_frame_refuses_the_frame_and_changes_nothing(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        await create_job(edge)
        async with batching_node(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = (await offers_until(ws, 1))[0]
            twice = item(offer)
            await ws.send_json({"type": "results", "results": [twice, twice]})
            error = await next_frame(ws)
            assert (error["type"], error["code"], error["field"]) == ("error", "bad_input", "results[1].job_id"), error
            assert (await job_view(edge, offer["job_id"])).status == "claimed"
            await ws.send_json({"type": "results", "results": [twice]})
            assert await next_frame(ws) == {"type": "ack", "job_id": offer["job_id"], "status": "validating"}


async def test_a_results_frame_of_strangers_alone_spends_the_bad_frame_budget_once(edge: Edge) -> None:
    """Twenty frames each naming many jobs the node does not hold: every job is answered, and
    the connection stays open (a frame is one bad frame, not one per item)."""
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        async with batching_node(http, edge, node) as ws:
            strangers = [{"job_id": f"not-mine-{index}", "result": {}, "checksum": "0"} for index in range(30)]
            for _ in range(15):
                await ws.send_json({"type": "results", "results": strangers})
                answers = [await next_frame(ws) for _ in strangers]
                assert {(answer["code"], answer["job_id"]) for answer in answers} == {
                    ("conflict", stranger["job_id"]) for stranger in strangers
                }
            created = await create_job(edge)
            await ws.send_json({"type": "ready", "slots": 1})
            assert (await offers_until(ws, 1))[0]["job_id"] == created.job_id
