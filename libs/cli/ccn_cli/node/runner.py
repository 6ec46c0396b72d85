"""Runs up to `concurrency` jobs at once in an executor, off the event loop, each bounded by a
timeout.

A worker cannot be interrupted mid-job, so a job that timed out or was stopped still holds its
worker until it returns: its outcome is dropped, but its slot stays taken, and the node asks
for no more work than it has idle workers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ccn_cli.node.decisions import bounded_reason
from ccn_cli.node.execute import execute_job, quiet_job_loggers
from ccn_core.logging import correlation, get_logger
from ccn_proto.node_protocol import JobOffer

log = get_logger("ccn.node.runner")

Execute = Callable[[str, dict[str, Any]], tuple[dict[str, Any], str]]


class Completed(msgspec.Struct, frozen=True):
    job_id: str
    result: dict[str, Any]
    checksum: str


class Failed(msgspec.Struct, frozen=True):
    job_id: str
    reason: str


Outcome = Completed | Failed
OnOutcome = Callable[[Outcome], None]


def make_executor(kind: Literal["process", "thread"], workers: int) -> concurrent.futures.Executor:
    """Processes give CPU-bound jobs real parallelism; "spawn" because forking a process that
    runs an event loop and threads can copy a held lock into the child."""
    if kind == "thread":
        quiet_job_loggers()
        return concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ccn-job")
    return concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=quiet_job_loggers
    )


class JobRunner:
    def __init__(
        self,
        new_executor: Callable[[], concurrent.futures.Executor],
        *,
        concurrency: int,
        timeout_s: float,
        on_outcome: OnOutcome,
        execute: Execute = execute_job,
    ) -> None:
        self._new_executor = new_executor
        self._executor = new_executor()
        self._concurrency = concurrency
        self._timeout_s = timeout_s
        self._on_outcome = on_outcome
        self._execute = execute
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._working: set[concurrent.futures.Future[tuple[dict[str, Any], str]]] = set()

    @property
    def running(self) -> frozenset[str]:
        """Jobs whose outcome will be reported: the ones a heartbeat names."""
        return frozenset(self._tasks)

    @property
    def free_slots(self) -> int:
        self._working = {future for future in self._working if not future.done()}
        return self._concurrency - max(len(self._tasks), len(self._working))

    def start(self, offer: JobOffer) -> None:
        with correlation(offer.correlation_id, job_id=offer.job_id):
            # the task copies this context: every line it logs carries the job's correlation id
            self._tasks[offer.job_id] = asyncio.create_task(self._run(offer), name=f"job-{offer.job_id}")

    def stop(self, job_id: str) -> bool:
        """Stop reporting on a job (its worker finishes regardless); False if it was not running."""
        task = self._tasks.pop(job_id, None)
        if task is None:
            return False
        task.cancel()
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
        busy = self.free_slots < self._concurrency
        self._executor.shutdown(wait=False, cancel_futures=True)
        if busy:
            _terminate_workers(self._executor)

    async def _run(self, offer: JobOffer) -> None:
        log.info("job started", job_type=offer.job_type, attempt=offer.attempt)
        try:
            outcome = await self._outcome(offer)
        except asyncio.CancelledError:
            log.info("job stopped")
            raise
        if self._tasks.get(offer.job_id) is not asyncio.current_task():
            return  # stopped while its outcome was being read
        del self._tasks[offer.job_id]
        if isinstance(outcome, Failed):
            log.warning("job failed", reason=outcome.reason)
        else:
            log.info("job done", checksum=outcome.checksum)
        self._on_outcome(outcome)

    async def _outcome(self, offer: JobOffer) -> Outcome:
        executor = self._executor
        try:
            future = executor.submit(self._execute, offer.job_type, offer.payload)
        except concurrent.futures.BrokenExecutor:
            self._replace_executor(executor)
            executor = self._executor
            future = executor.submit(self._execute, offer.job_type, offer.payload)
        self._working.add(future)
        try:
            done, _ = await asyncio.wait({asyncio.wrap_future(future)}, timeout=self._timeout_s)
        except asyncio.CancelledError:
            future.cancel()  # takes effect only if the job has not started yet
            raise
        if not done:
            future.cancel()
            return Failed(offer.job_id, f"timed out after {self._timeout_s:g} s")
        error = future.exception()
        if error is None:
            result, checksum = future.result()
            return Completed(offer.job_id, result, checksum)
        if isinstance(error, concurrent.futures.BrokenExecutor):
            # a worker died (killed, out of memory): the pool is unusable, start a new one
            self._replace_executor(executor)
            return Failed(offer.job_id, "the worker running the job died")
        # a bad payload or unknown job type is a ValueError whose message is worth sending back
        detail = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        return Failed(offer.job_id, bounded_reason(detail))

    def _replace_executor(self, broken: concurrent.futures.Executor) -> None:
        if broken is not self._executor:
            return  # another job already replaced it
        log.warning("worker pool broken; starting a new one")
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()
        self._working.clear()


def _terminate_workers(executor: concurrent.futures.Executor) -> None:
    """ProcessPoolExecutor gains terminate_workers() only in Python 3.14; until then its
    `_processes` map is the one handle on the worker processes. Threads cannot be ended: a
    thread pool's jobs run to their end."""
    processes: dict[int, multiprocessing.process.BaseProcess] = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
