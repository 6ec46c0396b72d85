"""Runs up to `concurrency` jobs at once, off the event loop, each bounded by a timeout.

Each slot is an executor with one worker of its own. With worker processes (the default) a job
that times out, or that the edge takes back, is ended by ending its process: the slot gets a
fresh one and is free at once, and no other job is disturbed. A thread cannot be ended, so with
worker threads such a job's outcome is dropped but its slot stays taken until it returns; the
node never asks for more work than it has idle slots.

Worker processes are also held to CPU-time and memory limits (JobLimits; how, in
ccn_cli.node.execute). A job over one, or one whose worker crashes, fails with a reason that
says which, and its slot gets a fresh worker: the node runs on.

A job whose offer carries a budget runs in a child its worker forks for it, held to the budget
and killed at the wall clock by the worker (ccn_cli.node.worker), which then reports its usage
with its outcome; the runner's own timeout is then a backstop, a little later. Every outcome
carries the usage measured for the job (None only where its worker died with it)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing
import os
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ccn_cli.node.budgets import allowance_for
from ccn_cli.node.config import JobLimits
from ccn_cli.node.decisions import bounded_reason
from ccn_cli.node.execute import (
    WorkDone,
    WorkReport,
    execute_job,
    quiet_job_loggers,
    reason_for_exit,
    start_worker,
)
from ccn_cli.node.worker import run_in_child, run_measured, run_measured_in_thread
from ccn_core.logging import correlation, get_logger
from ccn_proto.budgets import FailureKind, JobUsage
from ccn_proto.node_protocol import JobOffer

log = get_logger("ccn.node.runner")

Execute = Callable[[str, dict[str, Any]], tuple[dict[str, Any], str]]
WorkFuture = concurrent.futures.Future[WorkReport]

# how much longer than the job's wall clock the runner waits for a budgeted job's worker to
# report: the worker kills the child at the wall clock and reports its usage within moments
CHILD_REPORT_GRACE_S = 5.0


class Completed(msgspec.Struct, frozen=True):
    job_id: str
    result: dict[str, Any]
    checksum: str
    usage: JobUsage | None = None


class Failed(msgspec.Struct, frozen=True):
    job_id: str
    reason: str
    kind: FailureKind = "error"
    usage: JobUsage | None = None


Outcome = Completed | Failed
OnOutcome = Callable[[Outcome], None]


class NoFreeSlot(RuntimeError):
    """start() was called with every slot busy: the caller checks free_slots first."""


def make_executor(kind: Literal["process", "thread"], limits: JobLimits | None = None) -> concurrent.futures.Executor:
    """One slot's executor. Processes give CPU-bound jobs real parallelism and can be ended;
    "spawn" because forking a process that runs an event loop and threads can copy a held
    lock into the child. Workers die with the node, even one killed with SIGKILL, and hold to
    the memory limit from their start."""
    if kind == "thread":
        quiet_job_loggers()
        return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ccn-job")
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(os.getpid(), limits.memory_mib if limits is not None else None),
    )


class _Slot:
    """One worker. Its executor is made on first use and replaced when its worker is ended."""

    def __init__(self, new_executor: Callable[[], concurrent.futures.Executor], limits: JobLimits | None) -> None:
        self._new_executor = new_executor
        self._limits = limits
        self._executor: concurrent.futures.Executor | None = None
        self._workers: list[multiprocessing.process.BaseProcess] = []
        self.future: WorkFuture | None = None

    @property
    def busy(self) -> bool:
        return self.future is not None and not self.future.done()

    def submit(self, execute: Execute, offer: JobOffer, wall_s: float) -> WorkFuture:
        if self._executor is None:
            self._executor = self._new_executor()
        work = self._work(execute, offer, wall_s)
        try:
            self.future = self._executor.submit(work, offer.job_type, offer.payload)
        except concurrent.futures.BrokenExecutor:
            # its worker died since the last job (killed, out of memory): start another
            self.end_worker()
            return self.submit(execute, offer, wall_s)
        self._workers = _worker_processes(self._executor)
        return self.future

    def _work(self, execute: Execute, offer: JobOffer, wall_s: float) -> Callable[[str, dict[str, Any]], WorkReport]:
        """What the worker runs: the job measured; in a child of its own when it has a budget."""
        if not isinstance(self._executor, concurrent.futures.ProcessPoolExecutor):
            return functools.partial(run_measured_in_thread, execute, offer.budget)
        if offer.budget is not None:
            return functools.partial(run_in_child, execute, allowance_for(offer.budget, self._limits, wall_s))
        limits = self._limits
        return functools.partial(
            run_measured, execute, limits.cpu_s if limits else None, limits.memory_mib if limits else None
        )

    @property
    def in_process(self) -> bool:
        return isinstance(self._executor, concurrent.futures.ProcessPoolExecutor)

    def worker_gone_reason(self) -> str:
        """Why this slot's worker died under its job, read from the worker's exit status."""
        codes = [process.exitcode for process in self._workers]
        dead = next((code for code in codes if code is not None), None)
        return reason_for_exit(dead, self._limits.cpu_s if self._limits is not None else None)

    def end_worker(self) -> bool:
        """End the job running here, if the worker can be ended; True when the slot is free."""
        executor, self._executor = self._executor, None
        if executor is None:
            return True
        if not isinstance(executor, concurrent.futures.ProcessPoolExecutor):
            self._executor = executor  # a thread runs to its end; the slot stays busy until then
            return not self.busy
        _terminate_workers(executor)
        executor.shutdown(wait=False, cancel_futures=True)
        self.future = None
        self._workers = []
        return True

    def close(self) -> None:
        if self.busy:
            self.end_worker()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class JobRunner:
    def __init__(
        self,
        new_executor: Callable[[], concurrent.futures.Executor],
        *,
        concurrency: int,
        timeout_s: float,
        on_outcome: OnOutcome,
        execute: Execute = execute_job,
        limits: JobLimits | None = None,
    ) -> None:
        self._slots = [_Slot(new_executor, limits) for _ in range(concurrency)]
        self._timeout_s = timeout_s
        self._on_outcome = on_outcome
        self._execute = execute
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slot_of: dict[str, _Slot] = {}

    @property
    def running(self) -> frozenset[str]:
        """Jobs whose outcome will be reported: the ones a heartbeat names."""
        return frozenset(self._tasks)

    @property
    def free_slots(self) -> int:
        return sum(not slot.busy for slot in self._slots)

    def start(self, offer: JobOffer, execute: Execute | None = None) -> None:
        """Run the offer in a free slot; `execute`, when given, instead of the runner's own (the
        node binds one to the job, to fetch the bodies its payload names)."""
        slot = next((slot for slot in self._slots if not slot.busy), None)
        if slot is None:
            raise NoFreeSlot(f"no free slot for job {offer.job_id}")
        with correlation(offer.correlation_id, job_id=offer.job_id):
            log.info("job started", job_type=offer.job_type, attempt=offer.attempt)
            future = slot.submit(execute or self._execute, offer, self._timeout_s)
            self._slot_of[offer.job_id] = slot
            # the task copies this context: every line it logs carries the job's correlation id
            self._tasks[offer.job_id] = asyncio.create_task(self._run(offer, future, slot), name=f"job-{offer.job_id}")

    def stop(self, job_id: str) -> bool:
        """Stop a job and report nothing on it; False if it was not running."""
        task = self._tasks.pop(job_id, None)
        slot = self._slot_of.pop(job_id, None)
        if task is None:
            return False
        task.cancel()
        if slot is not None:
            slot.end_worker()
        return True

    async def wait_idle(self, timeout_s: float) -> None:
        """Until every reported job has finished, or `timeout_s` has passed."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, timeout_s))

    def stop_all(self) -> list[str]:
        job_ids = list(self._tasks)
        for job_id in job_ids:
            self.stop(job_id)
        return job_ids

    def shutdown(self) -> None:
        """Stop every job and end the workers: a job still running is abandoned, not awaited,
        so a stuck handler cannot keep the node from exiting."""
        self.stop_all()
        for slot in self._slots:
            slot.close()

    async def _run(self, offer: JobOffer, future: WorkFuture, slot: _Slot) -> None:
        try:
            outcome = await self._outcome(offer, future, slot)
        except asyncio.CancelledError:
            log.info("job stopped")
            raise
        if self._tasks.get(offer.job_id) is not asyncio.current_task():
            return  # stopped while its outcome was being read
        del self._tasks[offer.job_id]
        self._slot_of.pop(offer.job_id, None)
        if isinstance(outcome, Failed):
            if future.running() or _needs_fresh_worker(future):
                slot.end_worker()  # timed out (the worker is still at it), or out of memory: a fresh worker
            log.warning("job failed", reason=outcome.reason, kind=outcome.kind, usage=outcome.usage)
        else:
            log.info("job done", checksum=outcome.checksum)
        self._on_outcome(outcome)

    async def _outcome(self, offer: JobOffer, future: WorkFuture, slot: _Slot) -> Outcome:
        waiter = asyncio.wrap_future(future)
        waiter.add_done_callback(_consume)
        # a budgeted job's worker ends it at the wall clock itself, and reports what it used
        in_child = offer.budget is not None and slot.in_process
        done, _ = await asyncio.wait({waiter}, timeout=self._timeout_s + (CHILD_REPORT_GRACE_S if in_child else 0.0))
        if not done:
            future.cancel()  # takes effect only if the job has not started
            return Failed(offer.job_id, f"timed out after {self._timeout_s:g} s", kind="timeout")
        if future.cancelled():
            return Failed(offer.job_id, "the job was cancelled before it ran")
        error = future.exception()
        if error is None:
            report = future.result()
            if isinstance(report, WorkDone):
                return Completed(offer.job_id, report.result, report.checksum, report.usage)
            return Failed(offer.job_id, bounded_reason(report.reason), report.kind, report.usage)
        if isinstance(error, concurrent.futures.BrokenExecutor):
            return Failed(offer.job_id, await _when_reaped(slot.worker_gone_reason))
        return Failed(offer.job_id, bounded_reason(f"{type(error).__name__}: {error}"))


def _needs_fresh_worker(future: WorkFuture) -> bool:
    """The worker ran out of memory under the job, and may hold half-built state."""
    if not future.done() or future.cancelled() or future.exception() is not None:
        return False
    report = future.result()
    return not isinstance(report, WorkDone) and report.fresh_worker


_REAP_WAIT_S = 1.0


async def _when_reaped(reason: Callable[[], str]) -> str:
    """The reason, once the dead worker's exit status can be read: the executor may report the
    broken pool a moment before the process has been waited for."""
    deadline = asyncio.get_running_loop().time() + _REAP_WAIT_S
    text = reason()
    while text == reason_for_exit(None, None) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
        text = reason()
    return text


def _worker_processes(executor: concurrent.futures.Executor) -> list[multiprocessing.process.BaseProcess]:
    """A process executor's workers (see _terminate_workers on why `_processes`); none for threads."""
    processes: dict[int, multiprocessing.process.BaseProcess] = getattr(executor, "_processes", None) or {}
    return list(processes.values())


def _consume(waiter: asyncio.Future[Any]) -> None:
    """Read a finished waiter's exception, so that of a job nobody awaits any more (stopped,
    timed out, its worker ended) is not reported as never retrieved."""
    if not waiter.cancelled():
        waiter.exception()


def _terminate_workers(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    """ProcessPoolExecutor gains terminate_workers() only in Python 3.14; until then its
    `_processes` map is the one handle on the worker processes."""
    for process in _worker_processes(executor):
        process.terminate()
