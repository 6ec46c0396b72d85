"""The work itself, as a top-level function a worker process can import and run.

It returns the result as the plain dict the JobResult frame carries, together with its
checksum (sha256 of the canonical JSON, as the scheduler recomputes it), both computed in the
worker so the event loop only moves bytes.

A worker process is held to resource limits (ccn_cli.node.config.JobLimits), set by the kernel
so they hold whatever the handler does, in Python or in C:
- memory: RLIMIT_DATA, set once when the worker starts. An allocation past it fails, Python
  raises MemoryError, and the job fails with the limit as its reason; the worker is then
  replaced, since a process that ran out of memory mid-way may hold half-built state.
- CPU time: RLIMIT_CPU is a limit on the process's total, and a worker runs job after job, so
  before each job its soft limit is set to the CPU time used so far plus the job's allowance
  (the limit is in whole seconds, so the time used is rounded up: up to a second's grace).
  Past it the kernel sends SIGXCPU, whose default action ends the process; the runner reads
  that from the worker's exit status (`reason_for_exit`) and reports the job as over its CPU
  time. A Python handler would be no help: a loop inside a C extension never returns to run it.
Core dumps are off in workers: a job killed for its limits is not worth a core file.
A job with a budget is held to it in a child of the worker (ccn_cli.node.worker)."""

from __future__ import annotations

import ctypes
import logging
import math
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.budgets import FailureKind, JobUsage
from ccn_proto.canonical import result_checksum

# trafilatura warns about every page it finds thin or odd; the node reports outcomes itself
NOISY_LOGGERS = ("trafilatura", "htmldate", "courlan", "charset_normalizer")


def quiet_job_loggers() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PARENT_POLL_S = 1.0


MiB = 1024 * 1024
Execute = Callable[[str, dict[str, Any]], tuple[dict[str, Any], str]]


class ResourceLimitExceeded(Exception):
    """A job went over its budget (BandwidthExceeded, in ccn_cli.node.metering); the message is
    the JobFail reason."""


class WorkDone(msgspec.Struct, frozen=True, tag="done"):
    """A job's result, as its worker reports it (with what the job used, when measured)."""

    result: dict[str, Any]
    checksum: str
    usage: JobUsage | None = None


class WorkFailed(msgspec.Struct, frozen=True, tag="failed"):
    """A job's failure, as its worker reports it. `fresh_worker`: the worker itself may be
    damaged (it ran out of memory mid-way) and is to be replaced."""

    reason: str
    kind: FailureKind = "error"
    usage: JobUsage | None = None
    fresh_worker: bool = False


WorkReport = WorkDone | WorkFailed


def failure_report(error: Exception, memory_reason: str | None) -> WorkFailed:
    """A job's exception as its failure. A bad payload or unknown job type is a ValueError whose
    message is worth sending back; a MemoryError is the memory limit (`memory_reason`), which
    the worker that hit it does not survive; over a budget is the budget's own reason."""
    match error:
        case MemoryError() if memory_reason is not None:
            return WorkFailed(reason=memory_reason, fresh_worker=True)
        case ResourceLimitExceeded():
            return WorkFailed(reason=str(error), kind="budget_exceeded")
        case ValueError():
            return WorkFailed(reason=str(error))
    return WorkFailed(reason=f"{type(error).__name__}: {error}")


def memory_limit_reason(memory_mib: int) -> str:
    return f"memory limit exceeded ({memory_mib} MiB)"


def cpu_limit_reason(cpu_s: int) -> str:
    return f"cpu time limit exceeded ({cpu_s} s)"


def start_worker(parent_pid: int, memory_mib: int | None = None) -> None:
    """A worker process's initializer: quiet loggers, die with the node, and hold to the memory
    limit. A node killed with SIGKILL runs no cleanup, and its workers would run on (each
    holding a job's memory) with nobody to read their results."""
    quiet_job_loggers()
    die_with_parent(parent_pid)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_mib is not None:
        lower_soft_limit(resource.RLIMIT_DATA, memory_mib * MiB)


def limit_cpu_for_next_job(cpu_s: int) -> None:
    """Give this worker `cpu_s` more seconds of CPU time for the job it runs next (see the
    module's docstring)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    lower_soft_limit(resource.RLIMIT_CPU, math.ceil(used.ru_utime + used.ru_stime) + cpu_s, may_raise=True)


def lift_cpu_limit() -> None:
    """No CPU limit on this worker's own time (up to the hard limit): while it waits on a child
    that runs a budgeted job under a limit of its own, the worker runs no job itself, and its own
    time (loading the job libraries, forking) must not run into a limit set for an earlier job."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


def lower_soft_limit(which: int, value: int, *, may_raise: bool = False) -> None:
    """Set the soft limit to `value`, never above the hard limit (which only root may raise)."""
    soft, hard = resource.getrlimit(which)
    target = value if hard == resource.RLIM_INFINITY else min(value, hard)
    if may_raise or soft == resource.RLIM_INFINITY or target < soft:
        resource.setrlimit(which, (target, hard))


def reason_for_exit(exit_code: int | None, cpu_s: int | None) -> str:
    """Why a worker process that ran a job is gone, from its exit status, as a JobFail reason."""
    if exit_code is not None and exit_code < 0:
        number = -exit_code
        if number == signal.SIGXCPU and cpu_s is not None:
            return cpu_limit_reason(cpu_s)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == signal.SIGKILL:
            return f"the worker running the job was killed ({name}; the system may be out of memory)"
        return f"the worker running the job died ({name})"
    if exit_code is not None:
        return f"the worker running the job exited with status {exit_code}"
    return "the worker running the job died"


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


class JobRefused(ValueError):
    """The job type refused the job (a bad payload, an unknown type, an unreadable document);
    the message is the JobFail reason. The job types' own errors take several arguments and do
    not survive the pickling that carries them out of a worker process, and one the node cannot
    unpickle breaks the whole pool: the job would fail as a dead worker, its reason lost."""


def execute_job(
    job_type: str, payload: dict[str, Any], bodies: Mapping[str, bytes] | None = None
) -> tuple[dict[str, Any], str]:
    """(result, checksum); JobRefused with the job type's reason (InvalidPayload, UnknownJobType,
    DocumentRefused...). `bodies`: those the payload names by reference, fetched and checked."""
    try:
        result = result_to_builtins(run_job(job_type, payload, bodies))
    except ValueError as exc:
        raise JobRefused(str(exc)) from None
    return result, result_checksum(result)
