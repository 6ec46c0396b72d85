"""The work itself, as a top-level function a worker process can import and run.

It returns the result as the plain dict the JobResult frame carries, together with its
checksum (sha256 of the canonical JSON, as the scheduler recomputes it), both computed in the
worker so the event loop only moves bytes."""

from __future__ import annotations

import logging
from typing import Any

from ccn_core.domain.job import result_checksum
from ccn_jobs.registry import result_to_builtins, run_job

# trafilatura warns about every page it finds thin or odd; the node reports outcomes itself
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "charset_normalizer")


def quiet_job_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def execute_job(job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(result, checksum); raises what the job type raises (InvalidPayload, UnknownJobType...)."""
    result = result_to_builtins(run_job(job_type, payload))
    return result, result_checksum(result)
