"""The work itself, as a top-level function a worker process can import and run.

It returns the result as the plain dict the JobResult frame carries, together with its
checksum (sha256 of the canonical JSON, as the scheduler recomputes it), both computed in the
worker so the event loop only moves bytes."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from ccn_core.domain.job import result_checksum
from ccn_jobs.registry import result_to_builtins, run_job

# trafilatura warns about every page it finds thin or odd; the node reports outcomes itself
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "charset_normalizer")


def quiet_job_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PARENT_POLL_S = 1.0


def start_worker(parent_pid: int) -> None:
    """A worker process's initializer: quiet loggers, and die with the node. A node killed with
    SIGKILL runs no cleanup, and its workers would run on (each holding a job's memory) with
    nobody to read their results."""
    quiet_job_loggers()
    die_with_parent(parent_pid)


def die_with_parent(parent_pid: int) -> None:
    """The kernel sends SIGKILL when the parent dies (Linux); elsewhere a daemon thread watches.
    Either way, a parent gone before this ran is caught by comparing the parent pid."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            _watch_parent(parent_pid)
    else:
        _watch_parent(parent_pid)
    if os.getppid() != parent_pid:
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="ccn-parent-watch", daemon=True).start()


def execute_job(job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(result, checksum); raises what the job type raises (InvalidPayload, UnknownJobType...)."""
    result = result_to_builtins(run_job(job_type, payload))
    return result, result_checksum(result)
