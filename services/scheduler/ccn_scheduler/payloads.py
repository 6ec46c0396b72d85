"""Which job types the scheduler accepts, and the check it runs before creating a job.

The scheduler depends on this mapping only; ccn_jobs (one module per job type, shared with the
reference node, the edge and the validation service) supplies it in production, tests may pass
their own. The check itself is ccn_jobs.registry's, the same one the edge and the CLI run on a
batch before sending any of it.
"""

from __future__ import annotations

from typing import Any

from ccn_core.commands import raise_command_error
from ccn_jobs.registry import PAYLOAD_TYPES, PayloadTypes, payload_refusal

__all__ = ["PayloadTypes", "check_payload", "job_type_payloads"]


def job_type_payloads() -> PayloadTypes:
    """Every job type ccn_jobs defines, with its payload Struct."""
    return PAYLOAD_TYPES


def check_payload(payload_types: PayloadTypes, job_type: str, payload: dict[str, Any], *, field: str) -> None:
    """Refuse a job whose type is unknown (422) or whose payload does not meet its schema (400,
    naming the offending field as `<field>.<path>`)."""
    refusal = payload_refusal(job_type, payload, field=field, payload_types=payload_types)
    if refusal is not None:
        raise_command_error(refusal)
