"""The JSON Schema families of the job types: one per type, `job_<name>`, holding its payload and
its result, written next to the protocol's schemas in proto/schema/ by `ccn schema export`.

Derived from the registry, so a job type registered in JOB_TYPES has its schema exported (and
checked for drift) with no entry of its own to keep."""

from __future__ import annotations

from typing import Any

from ccn_jobs.registry import JOB_TYPES


def job_families() -> dict[str, tuple[Any, ...]]:
    return {f"job_{name}": (job.payload_type, job.result_type) for name, job in sorted(JOB_TYPES.items())}
