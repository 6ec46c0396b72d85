"""What one job leaves in CCN_JOBS, for a job that ran 1 s beside one that held its lease and
heartbeated for 10 minutes (issue #13: events and bytes per job must not grow with how long a
job runs). Measured, not assumed: whatever the scheduler appends per renewal shows up here.

The 10-minute job is not waited out. The node sends the heartbeats a 10-minute job sends at the
edge's 10-second interval (60 of them, each naming the job, so each renews its lease), 50 ms
apart, then its result. A scheduler that decides what to write by the wall clock between
renewals (rather than per renewal) would be undercounted by this; today's and the planned
design write per renewal or not at all."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import msgspec
import nats

from bench.lifecycle_bench import PAYLOAD, Stack, change_rate_limits, precomputed_result, register_nodes
from bench.measure import Figure, figure
from ccn_core.eventstore import EventStore, StoredEvent
from ccn_core.topology import JOBS
from ccn_proto.canonical import result_checksum
from ccn_proto.node_protocol import MIN_NODE_VERSION, PROTOCOL_VERSION

HEARTBEAT_INTERVAL_S = 10.0  # the edge's (ccn_edge.node_socket.HEARTBEAT_INTERVAL_S)
LONG_JOB_S = 600.0
RENEWAL_GAP_S = 0.05


class JobFootprint(msgspec.Struct, frozen=True):
    label: str
    job_id: str
    events: int  # on the job's own subjects, ccn.job.<id>.*
    event_types: dict[str, int]
    stored_bytes: int  # body, subject and headers of those events
    # a claim handed back before this node's (released, or abandoned by a node that left) is a
    # hand-off between claims, whatever the job's duration: a claim left waiting by a node of an
    # earlier row can take the job first and give it back. What the duration adds is the rest.
    handoff_events: int
    handoff_bytes: int

    @property
    def duration_events(self) -> int:
        return self.events - self.handoff_events

    @property
    def duration_bytes(self) -> int:
        return self.stored_bytes - self.handoff_bytes


async def _frame(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = await ws.receive_json(timeout=30)
        if frame["type"] == wanted:
            return frame
        if frame["type"] == "error":
            raise RuntimeError(f"the edge refused: {frame}")


async def _one_job(
    http: aiohttp.ClientSession,
    stack: Stack,
    ws: aiohttp.ClientWebSocketResponse,
    store: EventStore,
    label: str,
    renewals: int,
    hold_s: float,
) -> JobFootprint:
    async with http.post(
        f"{stack.edge}/jobs",
        json={"job_type": "extract_text", "payload": PAYLOAD},
        headers={"Authorization": f"Bearer {stack.admin_token}", "X-Correlation-ID": f"footprint-{uuid.uuid4()}"},
    ) as response:
        assert response.status == 201, await response.text()
    await ws.send_json({"type": "ready", "slots": 1})
    offer = await _frame(ws, "job_offer")
    job_id = str(offer["job_id"])
    await asyncio.sleep(hold_s)
    for _ in range(renewals):
        await ws.send_json({"type": "heartbeat", "job_ids": [job_id]})
        await asyncio.sleep(RENEWAL_GAP_S)
    result = precomputed_result()
    await ws.send_json({"type": "result", "job_id": job_id, "result": result, "checksum": result_checksum(result)})
    await _frame(ws, "ack")
    events = await _settled_history(store, job_id)
    types: dict[str, int] = {}
    sizes: list[int] = []
    last_claim = 0
    for index, event in enumerate(events):
        kind = event.subject.rsplit(".", 1)[-1]
        types[kind] = types.get(kind, 0) + 1
        sizes.append(len(event.data) + len(event.subject) + sum(len(k) + len(v) for k, v in event.headers.items()))
        if kind == "claimed":
            last_claim = index
    # the claims before this node's and their ends (released, or abandoned by a node gone)
    handoffs = range(1, last_claim)
    return JobFootprint(
        label=label,
        job_id=job_id,
        events=len(events),
        event_types=types,
        stored_bytes=sum(sizes),
        handoff_events=len(handoffs),
        handoff_bytes=sum(sizes[index] for index in handoffs),
    )


# a job's history ends here once its result is judged (ADR 0024): the ack says only `validating`
_SETTLED = frozenset({"completed", "dead", "cancelled"})
SETTLE_WAIT_S = 30.0


async def _settled_history(store: EventStore, job_id: str) -> list[StoredEvent]:
    """The job's events once the validation service has settled its result, and a moment more
    for anything a reactor appends after (none today); a RuntimeError if it never settles."""
    deadline = time.perf_counter() + SETTLE_WAIT_S
    while time.perf_counter() < deadline:
        events = await store.read(JOBS.name, f"ccn.job.{job_id}.*")
        if any(event.subject.rsplit(".", 1)[-1] in _SETTLED for event in events):
            await asyncio.sleep(0.5)
            return await store.read(JOBS.name, f"ccn.job.{job_id}.*")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"job {job_id} was not settled within {SETTLE_WAIT_S:.0f} s of its result")


def kinds(footprint: JobFootprint) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in footprint.event_types.items())


def lift_heartbeat_limit(limits: dict[str, Any]) -> dict[str, Any]:
    """A 10-minute job's renewals are sent here back to back, not one per heartbeat interval:
    the heartbeat rate limit, meant for a node's pace, is raised for the measurement."""
    limits["per_node"]["ws.heartbeat"] = {"rate": 10_000, "period_s": 1.0, "burst": 10_000}
    return limits


async def job_footprints(stack: Stack, nats_url: str) -> list[Figure]:
    renewals = int(LONG_JOB_S / HEARTBEAT_INTERVAL_S)
    nc = await nats.connect(nats_url)
    store = EventStore(nc, timeout=30)
    await store.start()
    try:
        async with aiohttp.ClientSession() as http:
            await change_rate_limits(stack, lift_heartbeat_limit)
            (token,) = await register_nodes(http, stack.edge, 1)
            async with http.ws_connect(f"{stack.edge.replace('http', 'ws')}/ws", max_msg_size=0) as ws:
                await ws.send_json(
                    {
                        "type": "hello",
                        "session_token": token,
                        "node_version": MIN_NODE_VERSION,
                        "protocol_version": PROTOCOL_VERSION,
                        "capabilities": {"job_types": ["extract_text"], "concurrency": 1},
                    }
                )
                await _frame(ws, "welcome")
                started = time.perf_counter()
                short = await _one_job(http, stack, ws, store, "a 1-second job", 0, 1.0)
                long = await _one_job(http, stack, ws, store, "a 10-minute job", renewals, 0.0)
                seconds = time.perf_counter() - started
    finally:
        await store.close()
        await nc.close()
    figures = []
    for footprint in (short, long):
        fig = figure(
            f"CCN_JOBS per job: {footprint.label}",
            "job lifecycle",
            footprint.events,
            seconds,
            notes=f"{footprint.events} events on ccn.job.<id>.* ({kinds(footprint)}), "
            f"{footprint.stored_bytes:,} bytes (body + subject + headers); less hand-offs (claims before "
            f"this node's and their ends): {footprint.duration_events} events, {footprint.duration_bytes:,} bytes"
            + (
                f"; {renewals} heartbeats naming it (a 10-min job at the 10-s interval), "
                f"sent {RENEWAL_GAP_S * 1000:.0f} ms apart"
                if footprint is long
                else "; held 1 s, no heartbeat due"
            )
            + "; ops = events",
        )
        figures.append(fig)
    long_fig = figures[1]
    long_fig.target = "events and bytes as the 1-s job's (less hand-offs)"
    long_fig.meets_target = (
        long.duration_events == short.duration_events and long.duration_bytes <= short.duration_bytes * 1.05
    )
    return figures
