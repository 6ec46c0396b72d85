"""Every job type by name, and the checks each side of the system runs against it.

The scheduler decodes a payload before it creates a job (`decode_payload`), a node runs an
offered job (`run_job`), and the validation service decodes a node's result (`decode_result`).
All three accept either JSON bytes or the dict a JSON event carries."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec

from ccn_jobs.errors import InvalidJobData, InvalidPayload, InvalidResult, UnknownJobType
from ccn_jobs.extract_text import EXTRACT_TEXT
from ccn_jobs.job_type import JobType

# Any: each entry has its own payload and result types; callers go through the functions below,
# which check a document against the entry's types before the handler sees it.
JOB_TYPES: Mapping[str, JobType[Any, Any]] = MappingProxyType({job.name: job for job in (EXTRACT_TEXT,)})

RawDocument = bytes | Mapping[str, Any]


def get_job_type(job_type: str) -> JobType[Any, Any]:
    try:
        return JOB_TYPES[job_type]
    except KeyError:
        raise UnknownJobType(job_type, sorted(JOB_TYPES)) from None


def decode_payload(job_type: str, raw: RawDocument) -> msgspec.Struct:
    """The payload as its job type's Struct; UnknownJobType or InvalidPayload otherwise."""
    job = get_job_type(job_type)
    return _decode(job.name, raw, job.payload_type, InvalidPayload)


def decode_result(job_type: str, raw: RawDocument) -> msgspec.Struct:
    """A node's result as its job type's Struct; UnknownJobType or InvalidResult otherwise."""
    job = get_job_type(job_type)
    return _decode(job.name, raw, job.result_type, InvalidResult)


def run_job(job_type: str, raw_payload: RawDocument) -> msgspec.Struct:
    """Decode the payload and run the handler: what a node does with an offered job."""
    job = get_job_type(job_type)
    result: msgspec.Struct = job.handler(decode_payload(job_type, raw_payload))
    return result


def result_to_builtins(result: msgspec.Struct) -> dict[str, Any]:
    """The result as the plain dict that `JobResult.result` carries (and is checksummed)."""
    builtins: dict[str, Any] = msgspec.to_builtins(result)
    return builtins


def _decode(
    job_type: str, raw: RawDocument, struct_type: type[msgspec.Struct], error: type[InvalidJobData]
) -> msgspec.Struct:
    try:
        if isinstance(raw, bytes | bytearray | memoryview):
            return msgspec.json.decode(raw, type=struct_type)
        return msgspec.convert(raw, struct_type)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise error.from_msgspec(job_type, exc) from exc
