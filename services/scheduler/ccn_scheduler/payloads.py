"""Which job types the scheduler accepts and the schema each one's payload must meet.

The scheduler depends on this mapping only; ccn_jobs (one module per job type, shared with the
reference node and the validation service) supplies it in production, tests may pass their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ccn_core.commands import validation_error
from ccn_core.errors import BadInput, Unprocessable

PayloadTypes = Mapping[str, type[msgspec.Struct]]


def job_type_payloads() -> PayloadTypes:
    """Every job type ccn_jobs defines, with its payload Struct."""
    from ccn_jobs.registry import JOB_TYPES

    return {name: job.payload_type for name, job in JOB_TYPES.items()}


def check_payload(payload_types: PayloadTypes, job_type: str, payload: dict[str, Any], *, field: str) -> None:
    """Refuse a job whose type is unknown (422) or whose payload does not meet its schema (400,
    naming the offending field as `<field>.<path>`)."""
    schema = payload_types.get(job_type)
    if schema is None:
        raise Unprocessable(
            f"unknown job type {job_type!r}; known: {', '.join(sorted(payload_types))}", field="job_type"
        )
    try:
        msgspec.convert(payload, schema)
    except msgspec.ValidationError as exc:
        error = validation_error(exc)
        raise BadInput(
            f"payload is not a valid {job_type} payload: {exc}",
            field=f"{field}.{error.field}" if error.field else field,
        ) from None
