"""The pass-through readings of job.created and job.completed keep every field of the events
they read, with the document left as bytes: a field added to one must be added to the other."""

from __future__ import annotations

import msgspec

from ccn_proto.jobs import JobCompleted, JobCompletedBytes, JobCreated, JobCreatedBytes


def fields(struct: type[msgspec.Struct]) -> dict[str, object]:
    return {field.name: field.default for field in msgspec.structs.fields(struct)}


def test_the_bytes_twins_have_the_same_fields_and_defaults() -> None:
    assert fields(JobCreatedBytes) == fields(JobCreated)
    assert fields(JobCompletedBytes) == fields(JobCompleted)


def test_an_event_read_as_bytes_keeps_its_document_byte_for_byte() -> None:
    created = JobCreated(job_type="extract_text", payload={"html": "<p>é\u2028</p>", "n": [1, 2]}, priority=3)
    encoded = msgspec.json.encode(created)
    read = msgspec.json.decode(encoded, type=JobCreatedBytes)
    assert msgspec.json.decode(read.payload) == created.payload and read.priority == 3
    assert bytes(read.payload) == msgspec.json.encode(created.payload)
