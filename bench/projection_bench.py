"""Projection catch-up: 100,000 node events already in the stream, a read model starting from
nothing, timed until its checkpoint reaches the stream's last sequence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import msgspec
from nats.aio.client import Client as NATS

from bench.measure import Clock, Figure, absolute_target, figure
from ccn_core import ids, subjects
from ccn_core.aggregate import envelope_headers
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.projection import Projection, ProjectionRunner
from ccn_core.topology import NODES
from ccn_proto.envelope import Actor, Envelope
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


async def catch_up(nc: NATS, dsn: str, projection: Projection, last_seq: int, label: str) -> Figure:
    async with asyncpg.create_pool(dsn, min_size=2, max_size=4) as pool:
        runner = ProjectionRunner(nc.jetstream(), pool, projection, batch_size=2000)
        with Clock() as clock:
            task = asyncio.create_task(runner.run())
            while runner.position < last_seq:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        runner.stop()
        await task
    fig = figure(
        f"projection catch-up: {label}",
        "projection",
        runner.applied,
        clock.seconds,
        notes=f"{runner.applied:,} events, batch 2,000, one transaction + checkpoint per batch",
    )
    return absolute_target(fig, 20_000, "events")
