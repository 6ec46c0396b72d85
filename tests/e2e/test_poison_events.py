"""Poison events appended straight into the streams, past the edge's checks (issue #12 item 2):
every service stays up, every projection and reactor goes on past them, and the dead letter
shows each one, in `ccn deadletter list` and in the orchestrator log."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
import uuid
from typing import Any

import asyncpg
import nats

from ccn_core.topology import JOBS, NODES, TELEMETRY
from tests.e2e.conftest import Stack


def envelope(event_type: str, aggregate_id: str, correlation_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "schema_version": 1,
        "aggregate_id": aggregate_id,
        "occurred_at": "2026-12-06T12:00:00Z",
        "correlation_id": correlation_id,
        "causation_id": None,
        "actor": {"kind": "node", "id": aggregate_id},
        "data": {"type": event_type, **data},
    }


async def append(nc: nats.NATS, subject: str, body: bytes, event_type: str, correlation_id: str) -> int:
    headers = {"Nats-Msg-Id": str(uuid.uuid4()), "ccn-type": event_type, "ccn-correlation-id": correlation_id}
    ack = await nc.jetstream().publish(subject, body, headers=headers)
    return int(ack.seq)


async def append_poison(stack: Stack) -> dict[tuple[str, int], set[str]]:
    """(stream, seq) of each poison event → the consumers that must dead-letter it."""
    nc = await nats.connect(stack.nats_url)
    node, job, broken_job = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    registered = envelope(
        "node.registered",
        node,
        "corr-poison-node",
        {
            "node_id": node,
            "api_token_hash": "0" * 64,
            "session_id": str(uuid.uuid4()),
            "session_token_hash": "1" * 64,
            "consent_flag": True,
            "user_agent": "evil\u0000agent/1.0",
        },
    )
    created = envelope(
        "job.created",
        job,
        "corr-poison-job",
        {"job_type": "poison_probe", "payload": {"text": "fine"}, "dataset_source": "source\u0000x"},
    )
    try:
        node_seq = await append(
            nc, f"ccn.node.{node}.registered", json.dumps(registered).encode(), "node.registered", "corr-poison-node"
        )
        job_seq = await append(
            nc, f"ccn.job.{job}.created", json.dumps(created).encode(), "job.created", "corr-poison-job"
        )
        broken_seq = await append(
            nc, f"ccn.job.{broken_job}.created", b'{"event_id": "x", "type": ', "job.created", "corr-broken-job"
        )
        # undecodable: every consumer of node events decodes it, the release reactor too
        broken_node_seq = await append(
            nc, f"ccn.node.{node}.opted_out", b'{"type": "node.opted_out", [', "node.opted_out", "corr-broken-node"
        )
        beat_seq = await append(
            nc, f"ccn.telemetry.{node}.heartbeat", b"\xff\xfe not json \x00", "telemetry.heartbeat", "corr-beat"
        )
    finally:
        await nc.drain()
    return {
        (NODES.name, node_seq): {"registry_node_read_model", "analytics_audit_log", "analytics_orchestrator_node_log"},
        (JOBS.name, job_seq): {"scheduler_job_read_model", "analytics_orchestrator_log"},
        (JOBS.name, broken_seq): {"scheduler_job_read_model", "analytics_orchestrator_log"},
        (NODES.name, broken_node_seq): {
            "registry_node_read_model",
            "analytics_audit_log",
            "analytics_orchestrator_node_log",
            "scheduler_node_release",
        },
        (TELEMETRY.name, beat_seq): {"registry_session_last_seen"},
    }


REACTORS = frozenset({"scheduler_node_release"})
_LISTED = re.compile(r"^(?P<id>\S+)  (?P<status>\S+)  \S+ \S+  (?P<consumer>\S+)  (?P<stream>\S+)#(?P<seq>\d+)  ")


def listed(stack: Stack) -> dict[tuple[str, str, int], tuple[str, str]]:
    """(consumer, stream, seq) → (dead letter id, status), as `ccn deadletter list` prints them."""
    ran = stack.ccn("deadletter", "list", timeout=60)
    assert ran.returncode == 0, ran.stderr
    found = {}
    for line in ran.stdout.splitlines():
        match = _LISTED.match(line)
        if match:
            key = (match["consumer"], match["stream"], int(match["seq"]))
            found[key] = (match["id"], match["status"])
    return found


def orchestrator_log(stack: Stack, query: str) -> list[dict[str, Any]]:
    url = f"{stack.analytics}/admin/orchestrator-log?{query}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {stack.admin_token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own stack
        entries: list[dict[str, Any]] = json.loads(response.read())["entries"]
        return entries


async def test_poison_events_are_dead_lettered_and_every_service_stays_up(stack: Stack) -> None:
    poison = await append_poison(stack)
    expected = {(consumer, stream, seq) for (stream, seq), consumers in poison.items() for consumer in consumers}

    async with asyncio.timeout(90):
        while not expected <= set(found := listed(stack)):
            await asyncio.sleep(0.5)
    assert {found[key][1] for key in expected} == {"pending"}

    status = stack.ccn("status")
    assert status.returncode == 0, status.stdout + status.stderr

    # every projection went on past its poison event
    conn = await asyncpg.connect(stack.database_url)
    try:
        checkpoints = {
            row["projection"]: row["last_seq"] for row in await conn.fetch("SELECT * FROM projection_checkpoints")
        }
        for consumer, _stream, seq in expected:
            if consumer not in REACTORS:  # a reactor keeps no checkpoint
                assert checkpoints[consumer] >= seq, consumer
        # the dead letters' read model has them too, without the payload
        async with asyncio.timeout(30):
            while await conn.fetchval("SELECT count(*) FROM dead_letters") < len(expected):
                await asyncio.sleep(0.2)
        rows = await conn.fetch("SELECT consumer, stream, stream_seq, error_message FROM dead_letters")
        assert expected <= {(r["consumer"], r["stream"], r["stream_seq"]) for r in rows}
        assert not any("\x00" in r["error_message"] for r in rows)
    finally:
        await conn.close()

    # operators see them in the orchestrator log, on the poison event's own thread
    entries = orchestrator_log(stack, "correlation_id=corr-poison-node")
    dead = [entry for entry in entries if entry["event"] == "event_dead_lettered"]
    registered = min(key for key in poison if key[0] == NODES.name)  # appended first
    assert {entry["details"]["consumer"] for entry in dead} == poison[registered]
    assert all(entry["details"]["replay"].startswith("ccn deadletter replay ") for entry in dead)

    # a replay of an event whose cause is not fixed fails again, and says so
    beat = next(key for key in expected if key[0] == "registry_session_last_seen")
    beat_id = found[beat][0]
    replayed = stack.ccn("deadletter", "replay", beat_id, timeout=60)
    assert replayed.returncode == 1 and f"{beat_id}: failed again" in replayed.stdout, replayed.stdout
    async with asyncio.timeout(30):
        while listed(stack)[beat][1] != "failed_again":
            await asyncio.sleep(0.5)
