"""A job's ready entry, built from its creation: what the create handler, the ready feed (new
and retried jobs) and a release put in the ready queue. The entry carries the job's own
correlation id, whoever caused it to be put, so every claim joins the job's thread."""

from __future__ import annotations

import msgspec

from ccn_core import subjects
from ccn_core.errors import NotFound
from ccn_core.eventstore import EventStore
from ccn_core.topology import JOBS
from ccn_proto.envelope import Envelope
from ccn_proto.jobs import JobCreated
from ccn_scheduler.ready_queue import ReadyEntry

_decode_creation = msgspec.json.Decoder(Envelope[JobCreated]).decode


def ready_entry_id(event_id: str) -> str:
    """The entry id of the put an event causes: whoever puts it (the handler that appended the
    event, the ready feed, a redelivery), the stream stores it once."""
    return f"ready:{event_id}"


def ready_entry(job_id: str, created: JobCreated, correlation_id: str) -> ReadyEntry:
    return ReadyEntry(
        job_id=job_id,
        job_type=created.job_type,
        payload=created.payload,
        correlation_id=correlation_id,
        priority=created.priority,
    )


async def creation(store: EventStore, job_id: str) -> Envelope[JobCreated]:
    """The job's job.created event (one direct get): its type, payload, priority and thread."""
    stored = await store.read(JOBS.name, subjects.event("job", job_id, "created"))
    if not stored:
        raise NotFound(f"job {job_id} does not exist")
    return _decode_creation(stored[0].data)


async def stored_ready_entry(store: EventStore, job_id: str) -> ReadyEntry:
    """The entry a job's creation implies, read from the stream."""
    created = await creation(store, job_id)
    return ready_entry(job_id, created.data, created.correlation_id)
