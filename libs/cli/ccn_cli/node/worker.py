"""What a worker runs for each job: the job, measured, its outcome reported as a WorkReport.

- A job without a budget runs in the slot's worker process itself, as it always has (the fast
  path: no process is started for it), under the node's own limits; its usage is measured on
  the worker (its CPU time, its peak resident set since the job started, reset per job).
- A job with a budget runs in a child the worker forks for it alone, held by the kernel to its
  budget (ccn_cli.node.budgets says how), and killed at the wall clock. The worker reads the
  child's report from a pipe and its usage from its rusage, whatever ended it. Forking a worker
  that has loaded the job libraries costs milliseconds, not the second a fresh interpreter
  would, and the child shares the worker's memory until it writes to it.
- With worker threads (a test and debugging mode), nothing can be held by the kernel: the job
  runs, and its usage (CPU time of its thread, not memory: threads share one heap) is judged
  against its budget afterwards."""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import time
from typing import Any

import msgspec

from ccn_cli.node.budgets import ChildEnd, JobAllowance, exit_code_of, judge, over_budget_reason
from ccn_cli.node.execute import (
    Execute,
    MiB,
    WorkDone,
    WorkFailed,
    WorkReport,
    die_with_parent,
    failure_report,
    lift_cpu_limit,
    limit_cpu_for_next_job,
    memory_limit_reason,
)
from ccn_cli.node.metering import FetchMeter, SharedCounter, metering
from ccn_cli.node.usage import maxrss_kib, own_status_kib, reset_peak_rss, usage_of
from ccn_jobs.lazy_imports import load_lazy_imports
from ccn_proto.budgets import FailureKind, JobBudget, over_budget

# a child's report is a result the node will send whole (the node's own result bound is far
# lower, 1 MiB by default); past this the child is killed and the job fails
MAX_REPORT_BYTES = 64 * MiB
_READ_BYTES = 1 * MiB
_report_decoder = msgspec.msgpack.Decoder(WorkReport)


def run_measured(
    execute: Execute, cpu_s: int | None, memory_mib: int | None, job_type: str, payload: dict[str, Any]
) -> WorkReport:
    """In a worker process, the fast path: the job here, within `cpu_s` more CPU seconds (the
    memory limit was set when the worker started), and what it used."""
    if cpu_s is not None:
        limit_cpu_for_next_job(cpu_s)
    meter = FetchMeter()
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    reset_peak_rss()
    start_rss = own_status_kib("VmRSS") or 0
    report = _run(execute, job_type, payload, meter, memory_limit_reason(memory_mib) if memory_mib else "out of memory")
    after = resource.getrusage(resource.RUSAGE_SELF)
    usage = usage_of(
        cpu_s=_cpu_s(after) - _cpu_s(before),
        peak_rss_kib=own_status_kib("VmHWM") or maxrss_kib(after),
        start_rss_kib=start_rss,
        wall_s=time.perf_counter() - started,
        bytes_fetched=meter.fetched,
    )
    return msgspec.structs.replace(report, usage=usage)


def run_measured_in_thread(
    execute: Execute, budget: JobBudget | None, job_type: str, payload: dict[str, Any]
) -> WorkReport:
    """In a worker thread: the job, its thread's CPU time, wall time and bytes; judged against
    its budget once it is done (a thread cannot be held to one, nor ended)."""
    meter = FetchMeter(budget.max_bandwidth_per_min if budget is not None else None)
    started = time.perf_counter()
    cpu_before = time.thread_time()
    report = _run(execute, job_type, payload, meter, None)
    usage = usage_of(  # threads share one heap: no memory of the job's own to measure
        cpu_s=time.thread_time() - cpu_before,
        peak_rss_kib=0,
        start_rss_kib=0,
        wall_s=time.perf_counter() - started,
        bytes_fetched=meter.fetched,
    )
    if budget is not None and (over := over_budget(usage, budget)):
        return WorkFailed(reason=over_budget_reason(over, usage, budget), kind="budget_exceeded", usage=usage)
    return msgspec.structs.replace(report, usage=usage)


def _run(
    execute: Execute, job_type: str, payload: dict[str, Any], meter: FetchMeter, memory_reason: str | None
) -> WorkReport:
    try:
        with metering(meter):
            result, checksum = execute(job_type, payload)
    except Exception as exc:
        return failure_report(exc, memory_reason)
    return WorkDone(result, checksum)


def _cpu_s(usage: resource.struct_rusage) -> float:
    return float(usage.ru_utime + usage.ru_stime)


# --- a budgeted job: a child of its own -----------------------------------------------------


def run_in_child(execute: Execute, allowance: JobAllowance, job_type: str, payload: dict[str, Any]) -> WorkReport:
    """In a worker process: the job in a child forked for it, held to `allowance`, judged."""
    lift_cpu_limit()  # the child gets its own; the next job in the worker itself sets the worker's again
    load_lazy_imports()  # once per worker: every child shares them instead of loading its own
    fetched, start_rss = SharedCounter(), SharedCounter()
    try:
        return _fork_and_judge(execute, allowance, job_type, payload, fetched, start_rss)
    finally:
        fetched.close()
        start_rss.close()


def _fork_and_judge(
    execute: Execute,
    allowance: JobAllowance,
    job_type: str,
    payload: dict[str, Any],
    fetched: SharedCounter,
    start_rss: SharedCounter,
) -> WorkReport:
    read_end, write_end = os.pipe()
    worker = os.getpid()
    started = time.perf_counter()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(execute, allowance, job_type, payload, write_end, fetched, start_rss, worker)
    os.close(write_end)
    try:
        data, timed_out = _read_report(read_end, started + allowance.wall_s)
    finally:
        os.close(read_end)
    if timed_out or data is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status, rusage = os.wait4(pid, 0)
    usage = usage_of(
        cpu_s=_cpu_s(rusage),
        peak_rss_kib=maxrss_kib(rusage),
        start_rss_kib=start_rss.value or maxrss_kib(rusage),
        wall_s=time.perf_counter() - started,
        bytes_fetched=fetched.value,
    )
    report: WorkReport | None = None
    if data:
        try:
            report = _report_decoder.decode(data)
        except msgspec.DecodeError:
            report = WorkFailed(reason="the job's child sent a report that does not decode")
    elif data is None:
        report = WorkFailed(reason=f"the job's report is over {MAX_REPORT_BYTES} bytes")
    return judge(ChildEnd(report=report, exit_code=exit_code_of(status), timed_out=timed_out), usage, allowance)


def _read_report(fd: int, deadline: float) -> tuple[bytes | None, bool]:
    """Everything the child writes until it closes the pipe (it exits), or the deadline:
    (data, timed out); data None when it is past MAX_REPORT_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return b"".join(chunks), True
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, _READ_BYTES)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > MAX_REPORT_BYTES:
            return None, False
        chunks.append(chunk)


def _child(
    execute: Execute,
    allowance: JobAllowance,
    job_type: str,
    payload: dict[str, Any],
    write_end: int,
    fetched: SharedCounter,
    start_rss: SharedCounter,
    worker: int,
) -> None:
    """Hold this process to the allowance, run the job, write the report, exit. Nothing here
    may return into the worker's code: every way out is os._exit."""
    code = 70  # EX_SOFTWARE: something failed before the job could be reported
    try:
        die_with_parent(worker)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        start_rss.value = own_status_kib("VmRSS") or 0
        memory = _hold_memory(allowance)
        _hold_cpu(allowance)
        meter = FetchMeter(allowance.bandwidth_per_min, fetched)
        report = _run(execute, job_type, payload, meter, memory.reason)
        if isinstance(report, WorkFailed) and report.fresh_worker:
            # over its memory: the node's limit again, so that the report can be written
            resource.setrlimit(resource.RLIMIT_DATA, memory.inherited)
            report = msgspec.structs.replace(report, kind=memory.kind, fresh_worker=False)
        data = msgspec.msgpack.encode(report)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
        code = 0
    finally:
        os._exit(code)


class _MemoryHold(msgspec.Struct, frozen=True):
    reason: str  # what a MemoryError is reported as
    kind: FailureKind  # budget_exceeded when the budget's limit is the one that holds
    inherited: tuple[int, int]  # the node's own limit, as the worker had it


def _hold_memory(allowance: JobAllowance) -> _MemoryHold:
    """RLIMIT_DATA at the child's data now plus the budget's growth, unless the node's own limit
    (inherited from the worker) is the tighter."""
    inherited = resource.getrlimit(resource.RLIMIT_DATA)
    soft, hard = inherited
    node = _MemoryHold(
        memory_limit_reason(soft // MiB) if soft != resource.RLIM_INFINITY else "out of memory", "error", inherited
    )
    if allowance.memory_growth_mib is None:
        return node
    target = (own_status_kib("VmData") or 0) * 1024 + allowance.memory_growth_mib * MiB
    if soft != resource.RLIM_INFINITY and soft <= target:
        return node
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (target, hard))
    return _MemoryHold(f"memory budget exceeded ({allowance.memory_growth_mib} MiB)", "budget_exceeded", inherited)


def _hold_cpu(allowance: JobAllowance) -> None:
    """RLIMIT_CPU from zero (a new process's CPU time starts at nothing): SIGXCPU at the limit,
    SIGKILL a second later should the job catch the first."""
    if allowance.cpu_rlimit_s is None:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft_limit = allowance.cpu_rlimit_s
    hard_limit = soft_limit + 1
    if hard != resource.RLIM_INFINITY:
        soft_limit, hard_limit = min(soft_limit, hard), min(hard_limit, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft_limit, hard_limit))
