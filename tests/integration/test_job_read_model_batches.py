"""The job read model writes a batch as one statement per (layer, SQL) over arrays: a batch of
many jobs' interleaved lives must leave exactly the rows that the same events leave one by one,
and a payload or result is stored as the JSON the event carried."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from ccn_core import ids, subjects
from ccn_core.dead_letter import is_poison
from ccn_core.eventstore import StoredEvent
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import (
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobCreated,
    JobDead,
    JobEvent,
    JobFailed,
    JobReleased,
    LeaseRenewed,
)
from ccn_scheduler.read_model import JobReadModel

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CHECKSUM = "ab" * 32
JOBS_QUERY = "SELECT * FROM community_jobs ORDER BY job_id"
RESULTS_QUERY = "SELECT * FROM community_job_results ORDER BY job_id"


def _stored(seq: int, job: str, event: JobEvent, minute: int) -> StoredEvent:
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    envelope = Envelope(
        event_id=ids.new_event_id(),
        type=tag,
        schema_version=1,
        aggregate_id=job,
        occurred_at=T0 + timedelta(minutes=minute),
        correlation_id=f"corr-{job[:8]}",
        causation_id=None,
        actor=Actor(kind="service", id="scheduler-1"),
        data=event,
    )
    subject = subjects.event("job", job, tag.split(".", 1)[1])
    return StoredEvent(seq=seq, subject=subject, data=msgspec.json.encode(envelope), headers={})


def _claimed(attempt: int, minute: int) -> JobClaimed:
    return JobClaimed(node_id="n1", attempt=attempt, lease_until=T0 + timedelta(minutes=minute + 1), replica="r1")


def _lives() -> dict[str, list[JobEvent]]:
    """Jobs living every path the read model knows, several steps each."""
    created = JobCreated(job_type="extract_text", payload={"html": '<p>é \\ "x" 😀</p>', "n": [1, 2.5, None]})
    return {
        "completed": [
            created,
            _claimed(1, 1),
            JobCompleted(node_id="n1", attempt=1, result={"text": "ü", "k": {"a": 1}}, checksum=CHECKSUM),
        ],
        "retried then completed": [
            JobCreated(job_type="echo", payload={"text": "b"}, priority=5, max_retries=2, lease_s=30.0, batch_id="b1"),
            _claimed(1, 1),
            LeaseRenewed(node_id="n1", lease_until=T0 + timedelta(minutes=9)),
            JobFailed(node_id="n1", attempt=1, reason="bad page", retry_at=T0 + timedelta(minutes=3)),
            _claimed(2, 4),
            JobCompleted(node_id="n1", attempt=2, result={"ok": True}, checksum=CHECKSUM, replica="r2"),
        ],
        "released then dead": [
            JobCreated(job_type="echo", payload={}, dataset_source="src", dataset_version="v1"),
            _claimed(1, 1),
            JobReleased(node_id="n1", attempt=1, reason="node left"),
            _claimed(1, 2),
            JobFailed(node_id="n1", attempt=1, reason="boom", retry_at=None),
            JobDead(attempts=1, reason="boom"),
        ],
        "cancelled": [JobCreated(job_type="echo", payload={"c": 1}), JobCancelled(reason="dup")],
        "cancelled without a reason": [
            JobCreated(job_type="echo", payload={"c": 2}),
            _claimed(1, 1),
            JobFailed(node_id="n1", attempt=1, reason="first", retry_at=T0 + timedelta(minutes=2)),
            JobCancelled(),
        ],
    }


def _interleaved(lives: dict[str, list[JobEvent]]) -> tuple[dict[str, str], list[StoredEvent]]:
    """Each job's events in order, the jobs' steps interleaved round-robin as a live stream has them."""
    names = {name: str(ids.uuid7()) for name in lives}
    events: list[StoredEvent] = []
    for step in range(max(len(life) for life in lives.values())):
        for name, life in lives.items():
            if step < len(life):
                events.append(_stored(len(events) + 1, names[name], life[step], step))
    return names, events


async def _tables(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    return await conn.fetch(JOBS_QUERY), await conn.fetch(RESULTS_QUERY)


async def test_a_batch_of_interleaved_lives_leaves_the_rows_the_events_leave_one_by_one(fresh_database: str) -> None:
    lives = _lives()
    names, events = _interleaved(lives)
    model = JobReadModel()
    conn = await asyncpg.connect(fresh_database)
    try:
        for event in events:
            async with conn.transaction():
                await model.apply(conn, [event])
        one_by_one = await _tables(conn)
        await conn.execute("TRUNCATE community_job_results, community_jobs")
        async with conn.transaction():
            await model.apply(conn, events)
        assert await _tables(conn) == one_by_one
    finally:
        await conn.close()

    jobs = {str(row["job_id"]): row for row in one_by_one[0]}
    status = {name: jobs[job]["status"] for name, job in names.items()}
    assert status == {
        "completed": "completed",
        "retried then completed": "completed",
        "released then dead": "dead",
        "cancelled": "cancelled",
        "cancelled without a reason": "cancelled",
    }
    retried = jobs[names["retried then completed"]]
    assert (retried["attempt"], retried["retry_count"], retried["last_error"]) == (2, 1, "bad page")
    assert (retried["priority"], retried["max_retries"], retried["lease_s"], retried["batch_id"]) == (5, 2, 30.0, "b1")
    assert jobs[names["released then dead"]]["attempt"] == 1
    assert jobs[names["released then dead"]]["dataset_version"] == "v1"
    assert jobs[names["cancelled without a reason"]]["last_error"] == "first"
    assert jobs[names["cancelled"]]["last_error"] == "dup"
    # stored as the JSON the events carried: non-ASCII, escapes and nesting intact
    first = lives["completed"]
    assert isinstance(first[0], JobCreated) and isinstance(first[2], JobCompleted)
    assert json.loads(jobs[names["completed"]]["payload_json"]) == first[0].payload
    results = {str(row["job_id"]): row for row in one_by_one[1]}
    assert set(results) == {names["completed"], names["retried then completed"]}
    assert json.loads(results[names["completed"]]["result_json"]) == first[2].result
    assert results[names["retried then completed"]]["attempt"] == 2


def _raw_event(job: str, data: dict[str, Any], event_type: str) -> StoredEvent:
    envelope = {
        "event_id": ids.new_event_id(),
        "type": event_type,
        "schema_version": 1,
        "aggregate_id": job,
        "occurred_at": T0.isoformat(),
        "correlation_id": "c",
        "causation_id": None,
        "actor": {"kind": "service", "id": "s"},
        "data": {"type": event_type, **data},
    }
    return StoredEvent(seq=1, subject=f"ccn.job.{job}.x", data=msgspec.json.encode(envelope), headers={})


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("job.created", {"job_type": "echo", "payload": [1, 2]}),
        ("job.created", {"job_type": "echo", "payload": "text"}),
        ("job.created", {"job_type": "echo", "payload": None}),
        ("job.completed", {"node_id": "n", "attempt": 1, "result": 7, "checksum": CHECKSUM}),
    ],
)
async def test_a_payload_or_result_that_is_not_an_object_is_the_events_fault(
    fresh_database: str, event_type: str, data: dict[str, Any]
) -> None:
    conn = await asyncpg.connect(fresh_database)
    try:
        with pytest.raises(msgspec.ValidationError) as refused:
            await JobReadModel().apply(conn, [_raw_event(str(ids.uuid7()), data, event_type)])
        assert is_poison(refused.value)
        assert await conn.fetchval("SELECT count(*) FROM community_jobs") == 0
    finally:
        await conn.close()
