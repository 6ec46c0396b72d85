"""Projection catch-up: events already in the stream, a read model starting from nothing, timed
until its checkpoint reaches the stream's last sequence. Node events (100,000) for the node read
model and the audit log; job lives (created, claimed, completed, with a ~4 kB page as payload and
its extracted text as result) for the job read model and the orchestrator log, with the CPU
each event costs this process and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import psutil
from nats.aio.client import Client as NATS

from bench.measure import Clock, Figure, absolute_target, figure
from ccn_core import ids, subjects
from ccn_core.aggregate import envelope_headers
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.projection import Projection, ProjectionRunner
from ccn_core.topology import JOBS, NODES
from ccn_proto.canonical import result_checksum
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobClaimed, JobCompleted, JobCreated, JobEvent
from ccn_proto.nodes import ConsentRecorded, NodeEvent, NodeRegistered, SessionEnded, SessionStarted


def node_history(node: str) -> list[NodeEvent]:
    """Four events a node typically writes in its first hour."""
    version = current_consent_version()
    second_session = ids.new_public_id()
    return [
        NodeRegistered(
            node_id=node,
            api_token_hash=ids.token_hash(node),
            session_id=ids.new_public_id(),
            session_token_hash=ids.token_hash("s" + node),
            consent_flag=True,
            user_agent="ccn-node/0.1 bench",
        ),
        ConsentRecorded(consent_version=version, consent_hash=consent_catalogue()[version]),
        SessionStarted(session_id=second_session, session_token_hash=ids.token_hash(second_session)),
        SessionEnded(session_id=second_session, reason="bench"),
    ]


async def fill_node_stream(nc: NATS, total_events: int) -> int:
    js = nc.jetstream(publish_async_max_pending=2048)
    now = datetime.now(UTC)
    futures = []
    for _ in range(total_events // 4):
        node = ids.new_public_id()
        for event in node_history(node):
            envelope = Envelope(
                event_id=ids.new_event_id(),
                type=type(event).__struct_config__.tag,  # type: ignore[arg-type]
                schema_version=1,
                aggregate_id=node,
                occurred_at=now,
                correlation_id=ids.new_correlation_id(),
                causation_id=None,
                actor=Actor(kind="node", id=node),
                data=event,
            )
            subject = subjects.node_event(node, envelope.type.split(".", 1)[1])
            futures.append(
                await js.publish_async(subject, msgspec.json.encode(envelope), headers=envelope_headers(envelope))
            )
    await asyncio.gather(*futures)
    info = await js.stream_info(NODES.name)
    return int(info.state.last_seq)


async def _run_until_caught_up(
    nc: NATS, pool: asyncpg.Pool, projection: Projection, last_seq: int, batch_size: int = 2000
) -> tuple[int, float]:
    """Events applied and seconds taken for a runner starting from nothing to reach `last_seq`."""
    runner = ProjectionRunner(nc.jetstream(), pool, projection, batch_size=batch_size)
    with Clock() as clock:
        task = asyncio.create_task(runner.run())
        while runner.position < last_seq:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    runner.stop()
    await task
    return runner.applied, clock.seconds


def _notes(batch_size: int) -> str:
    return f"batch {batch_size:,}, one transaction + checkpoint per batch"


async def catch_up(nc: NATS, dsn: str, projection: Projection, last_seq: int, label: str) -> Figure:
    async with asyncpg.create_pool(dsn, min_size=2, max_size=4) as pool:
        applied, seconds = await _run_until_caught_up(nc, pool, projection, last_seq)
    fig = figure(
        f"projection catch-up: {label}", "projection", applied, seconds, notes=f"{applied:,} events, {_notes(2000)}"
    )
    return absolute_target(fig, 20_000, "events")


def _job_envelope(job: str, event: JobEvent, at: datetime, correlation: str, actor: Actor) -> Envelope[JobEvent]:
    return Envelope(
        event_id=ids.new_event_id(),
        type=type(event).__struct_config__.tag,  # type: ignore[arg-type]
        schema_version=1,
        aggregate_id=job,
        occurred_at=at,
        correlation_id=correlation,
        causation_id=None,
        actor=actor,
        data=event,
    )


def job_life(job: str, payload: dict[str, Any], result: dict[str, Any], checksum: str) -> list[Envelope[JobEvent]]:
    """A job's three events when all goes well: created, claimed, completed."""
    now = datetime.now(UTC)
    node = "bench-node"
    correlation = ids.new_correlation_id()
    scheduler = Actor(kind="service", id="scheduler-bench")
    return [
        _job_envelope(
            job, JobCreated(job_type="extract_text", payload=payload, batch_id="bench"), now, correlation, scheduler
        ),
        _job_envelope(
            job,
            JobClaimed(node_id=node, attempt=1, lease_until=now + timedelta(seconds=60), replica="scheduler-bench"),
            now,
            correlation,
            Actor(kind="node", id=node),
        ),
        _job_envelope(
            job,
            JobCompleted(node_id=node, attempt=1, result=result, checksum=checksum, replica="scheduler-bench"),
            now,
            correlation,
            Actor(kind="node", id=node),
        ),
    ]


async def fill_job_stream(nc: NATS, jobs: int, payload: dict[str, Any], result: dict[str, Any]) -> int:
    """`jobs` jobs' lives in CCN_JOBS, interleaved as a live stream has them: a window of jobs is
    created, then claimed, then completed, so a projection batch holds many jobs at every step."""
    js = nc.jetstream(publish_async_max_pending=2048)
    checksum = result_checksum(result)
    window = 500
    for start in range(0, jobs, window):
        lives = [job_life(str(uuid.uuid4()), payload, result, checksum) for _ in range(min(window, jobs - start))]
        futures = []
        for step in range(3):
            for life in lives:
                envelope = life[step]
                subject = subjects.event("job", envelope.aggregate_id, envelope.type.split(".", 1)[1])
                futures.append(
                    await js.publish_async(subject, msgspec.json.encode(envelope), headers=envelope_headers(envelope))
                )
        await asyncio.gather(*futures)
    info = await js.stream_info(JOBS.name)
    return int(info.state.last_seq)


def _process_tree_cpu_s(root: psutil.Process) -> dict[int, float]:
    """CPU seconds (user + system) of `root` and each of its live children, by pid."""
    seconds: dict[int, float] = {}
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            seconds[process.pid] = times.user + times.system
    return seconds


async def catch_up_with_cpu(
    nc: NATS,
    dsn: str,
    projection: Projection,
    last_seq: int,
    label: str,
    postgres_pid: int | None,
    batch_size: int = 2000,
) -> Figure:
    """catch_up, with the CPU this process and PostgreSQL (its backends and helpers) spent per
    event: PostgreSQL's is read before the pool closes, while its backends still live. A small
    `batch_size` stands for a live projection, whose batches hold what arrived since the last."""
    postgres = psutil.Process(postgres_pid) if postgres_pid else None
    async with asyncpg.create_pool(dsn, min_size=2, max_size=4) as pool:
        pg_before = _process_tree_cpu_s(postgres) if postgres else {}
        python_before = time.process_time()
        applied, seconds = await _run_until_caught_up(nc, pool, projection, last_seq, batch_size)
        python_s = time.process_time() - python_before
        pg_after = _process_tree_cpu_s(postgres) if postgres else {}
    per_event_us = 1e6 / max(applied, 1)
    cpu = f"CPU per event: Python {python_s * per_event_us:.0f} µs"
    if postgres:
        pg_s = sum(after - pg_before.get(pid, 0.0) for pid, after in pg_after.items())
        cpu += f", PostgreSQL {pg_s * per_event_us:.0f} µs"
    notes = f"{applied:,} events, {_notes(batch_size)}; {cpu}"
    return figure(f"projection catch-up: {label}", "projection", applied, seconds, notes=notes)
