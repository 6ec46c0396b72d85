"""Heartbeat metrics end to end through a real edge (registry and scheduler behind it, real NATS
and PostgreSQL): over HTTP and WebSocket they land in community_node_telemetry, and a value out
of range is refused with a typed error naming the field (400, or an error frame), recording
nothing. The table is kept to the telemetry stream's age."""

# ruff: noqa: F811 - `edge` is test_edge_jobs' fixture, imported to be requested by name

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import msgspec

from ccn_core.eventstore import StoredEvent
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.nodes import HeartbeatSample, NodeMetrics
from ccn_registry.telemetry_projection import NodeTelemetry
from tests.integration.test_edge_jobs import Edge, connected, edge, next_frame, registered_node  # noqa: F401
from tests.integration.test_hostile_input import refused


async def telemetry_rows(dsn: str, node_id: str, count: int) -> list[dict[str, Any]]:
    """The node's telemetry rows once there are `count` of them (the projection is a moment behind)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(15):
            while True:
                rows = await conn.fetch(
                    "SELECT * FROM community_node_telemetry WHERE node_id = $1 ORDER BY stream_seq", node_id
                )
                if len(rows) >= count:
                    return [dict(row) for row in rows]
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_metrics_over_http_and_websocket_land_in_the_telemetry_table(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        metrics = {"cpu_load": 1.5, "memory_free": 2_000_000_000, "last_job_ms": 1234, "network_latency_ms": 17}
        async with http.post(
            f"{edge.url}/compute/telemetry",
            json={"metrics": metrics},
            headers={"Authorization": f"Bearer {node['session_token']}"},
        ) as response:
            assert response.status == 200, await response.text()
        async with http.post(  # a heartbeat without metrics is no telemetry row
            f"{edge.url}/compute/telemetry", json={}, headers={"Authorization": f"Bearer {node['session_token']}"}
        ) as response:
            assert response.status == 200
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "heartbeat", "job_ids": [], "metrics": {"cpu_load": 0.25}})
            await ws.send_json({"type": "bye"})
        rows = await telemetry_rows(edge.settings.effective_database_url, node["node_public_id"], 2)
    assert [
        (r["cpu_load"], r["memory_free"], r["last_job_ms"], r["network_latency_ms"], r["session_id"]) for r in rows
    ] == [
        (1.5, 2_000_000_000, 1234, 17, node["session_id"]),
        (0.25, None, None, None, node["session_id"]),
    ]


async def test_metrics_out_of_range_are_refused_with_a_typed_error(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        url, token = f"{edge.url}/compute/telemetry", node["session_token"]
        await refused(http, url, b'{"metrics": {"cpu_load": 5000}}', token=token, field="metrics.cpu_load")
        await refused(http, url, b'{"metrics": {"memory_free": -1}}', token=token, field="metrics.memory_free")
        await refused(http, url, b'{"metrics": {"last_job_ms": 1e30}}', token=token, field="metrics.last_job_ms")
        await refused(
            http, url, b'{"metrics": {"network_latency_ms": "7"}}', token=token, field="metrics.network_latency_ms"
        )
        await refused(http, url, b'{"metrics": {"gpu": 1}}', token=token, field="metrics.gpu")
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "heartbeat", "job_ids": [], "metrics": {"cpu_load": -0.5}})
            error = await next_frame(ws)
            assert (error["type"], error["code"], error["field"]) == ("error", "bad_input", "metrics.cpu_load")
            # the connection goes on, and a good heartbeat after it is recorded
            await ws.send_json({"type": "heartbeat", "job_ids": [], "metrics": {"cpu_load": 3.0}})
            await ws.send_json({"type": "bye"})
        rows = await telemetry_rows(edge.settings.effective_database_url, node["node_public_id"], 1)
        assert [row["cpu_load"] for row in rows] == [3.0]


def sample(seq: int, seen_at: datetime) -> StoredEvent:
    envelope = Envelope(
        event_id=f"e{seq}",
        type="telemetry.heartbeat",
        schema_version=1,
        aggregate_id="n1",
        occurred_at=seen_at,
        correlation_id="c",
        causation_id=None,
        actor=Actor(kind="node", id="n1"),
        data=HeartbeatSample(node_id="n1", session_id="s1", seen_at=seen_at, metrics=NodeMetrics(cpu_load=1.0)),
    )
    return StoredEvent(seq=seq, subject="ccn.telemetry.n1.heartbeat", data=msgspec.json.encode(envelope), headers={})


async def test_rows_older_than_the_streams_age_are_removed_and_a_replay_writes_none_twice(fresh_database: str) -> None:
    projection = NodeTelemetry(max_age_s=3600)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    conn = await asyncpg.connect(fresh_database)
    try:
        async with conn.transaction():
            await projection.apply(conn, [sample(1, start), sample(2, start + timedelta(minutes=30))])
        async with conn.transaction():
            await projection.apply(conn, [sample(2, start + timedelta(minutes=30))])  # delivered again
        assert await conn.fetchval("SELECT count(*) FROM community_node_telemetry") == 2
        async with conn.transaction():
            await projection.apply(conn, [sample(3, start + timedelta(minutes=75))])
        seqs = [row["stream_seq"] for row in await conn.fetch("SELECT stream_seq FROM community_node_telemetry")]
        assert sorted(seqs) == [2, 3]  # the first sample is past the hour the stream keeps
    finally:
        await conn.close()
