"""What a node measured passes through the edge to the scheduler untouched: the usage of a
result and of a failure, and the failure's kind, over the WebSocket (single and batched
frames) and over HTTP; and an offer carries its budget to the node. Watched on the command
subjects themselves, as the scheduler receives them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import nats
from nats.aio.msg import Msg

from ccn_core import subjects
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from tests.integration.test_edge_jobs import Edge, connected, create_job, edge, next_frame, registered_node

__all__ = ["edge"]  # the fixture, used by name

USAGE = {"cpu_time_s": 0.25, "max_memory_mb": 12, "wall_ms": 310, "bytes_fetched": 4096}
OTHER_USAGE = {"cpu_time_s": 1.5, "max_memory_mb": 70, "wall_ms": 1600, "bytes_fetched": 0}


def found(value: Any, key: str) -> Iterator[Any]:
    """Every value under `key` anywhere in a decoded JSON document."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name == key:
                yield inner
            yield from found(inner, key)
    elif isinstance(value, list):
        for inner in value:
            yield from found(inner, key)


async def settled(commands: list[tuple[str, Any]], name: str, count: int) -> list[Any]:
    async with asyncio.timeout(10):
        while len(bodies := [body for subject, body in commands if subject.endswith(name)]) < count:
            await asyncio.sleep(0.02)
    return bodies


async def test_usage_and_failure_kinds_reach_the_scheduler_over_the_socket_and_http(edge: Edge) -> None:
    commands: list[tuple[str, Any]] = []

    async def watch(msg: Msg) -> None:
        commands.append((msg.subject, json.loads(msg.data)))

    nc = await nats.connect(edge.settings.nats_url)
    await nc.subscribe(subjects.command_wildcard("scheduler"), cb=watch)  # no queue group: a copy of each
    try:
        async with aiohttp.ClientSession() as http:
            node = await registered_node(http, edge)
            for index in range(3):
                await create_job(edge, index)
            async with connected(http, edge, node) as ws:
                await ws.send_json({"type": "ready", "slots": 2})
                offers = [await next_frame(ws), await next_frame(ws)]
                assert all(offer["type"] == "job_offer" for offer in offers), offers
                done, failed = offers
                result = result_to_builtins(run_job(done["job_type"], done["payload"]))
                await ws.send_json(
                    {
                        "type": "result",
                        "job_id": done["job_id"],
                        "result": result,
                        "checksum": result_checksum(result),
                        "usage": USAGE,
                    }
                )
                assert (await next_frame(ws))["type"] == "ack"
                await ws.send_json(
                    {
                        "type": "fail",
                        "job_id": failed["job_id"],
                        "reason": "memory budget exceeded (64 MiB)",
                        "kind": "budget_exceeded",
                        "usage": OTHER_USAGE,
                    }
                )
                assert (await next_frame(ws))["type"] == "ack"
                await ws.send_json({"type": "bye"})

            auth = {"Authorization": f"Bearer {node['session_token']}"}
            async with http.get(f"{edge.url}/compute/job?job_types=extract_text&wait_s=5", headers=auth) as response:
                assert response.status == 200
                offer = await response.json()
            fail = {"job_id": offer["job_id"], "reason": "timed out after 2 s", "kind": "timeout", "usage": USAGE}
            async with http.post(f"{edge.url}/compute/job/fail", json=fail, headers=auth) as response:
                assert response.status == 200, await response.text()

        submitted = await settled(commands, ".submit_results", 1)
        assert [usage for body in submitted for usage in found(body, "usage")] == [USAGE]
        fails = await settled(commands, ".fail_job", 2)
        assert [(body["kind"], body["usage"]) for body in fails] == [
            ("budget_exceeded", OTHER_USAGE),
            ("timeout", USAGE),
        ]
    finally:
        await nc.close()
