"""Job worker processes are held to CPU-time and memory limits: a job over one, or one whose
worker crashes, fails with a reason naming it, its slot gets a fresh worker, and the runner runs on.
The work here stands in for a handler (importable by name, as "spawn" requires)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from ccn_cli.node.config import JobLimits
from ccn_cli.node.execute import reason_for_exit
from ccn_cli.node.runner import Completed, Failed, JobRunner, Outcome, make_executor
from tests.unit.test_node_runner import offer, settle, unmeasured

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024
LIMITS = JobLimits(cpu_s=1, memory_mib=384)


def misbehave(job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    match payload.get("do"):
        case "allocate":  # one allocation far past the limit
            block = bytearray(2048 * MiB)
            return {"size": len(block)}, "c" * 64
        case "grow":  # many small ones, as a parser building a huge tree would
            chunks = [bytes(64 * 1024) for _ in range(100_000)]
            return {"chunks": len(chunks)}, "c" * 64
        case "spin":  # pure CPU, never yielding, far longer than the CPU allowance
            deadline = time.process_time() + 30
            while time.process_time() < deadline:
                pass
            return {"spun": True}, "c" * 64
        case "burn":  # CPU within the allowance
            deadline = time.process_time() + payload["s"]
            while time.process_time() < deadline:
                pass
            return {"burnt": payload["s"], "pid": os.getpid()}, "c" * 64
        case "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
    return {"pid": os.getpid()}, "c" * 64


def limited_runner(outcomes: list[Outcome], limits: JobLimits = LIMITS) -> JobRunner:
    return JobRunner(
        lambda: make_executor("process", limits),
        concurrency=1,
        timeout_s=25.0,  # the wall clock is not what ends these jobs
        on_outcome=outcomes.append,
        execute=misbehave,
        limits=limits,
    )


async def run_one(runner: JobRunner, outcomes: list[Outcome], job_id: str, payload: dict[str, Any]) -> Outcome:
    runner.start(offer(job_id, payload))
    await settle(outcomes, len(outcomes) + 1)
    return outcomes[-1]


async def test_jobs_over_their_limits_fail_with_the_limit_named_and_the_runner_runs_on() -> None:
    outcomes: list[Outcome] = []
    runner = limited_runner(outcomes)
    try:
        first = await run_one(runner, outcomes, "warm-up", {})
        assert isinstance(first, Completed)
        assert unmeasured(await run_one(runner, outcomes, "allocate", {"do": "allocate"})) == Failed(
            "allocate", "memory limit exceeded (384 MiB)"
        )
        after_memory = await run_one(runner, outcomes, "after-memory", {})
        assert isinstance(after_memory, Completed)
        assert after_memory.result["pid"] != first.result["pid"]  # a fresh worker
        assert unmeasured(await run_one(runner, outcomes, "grow", {"do": "grow"})) == Failed(
            "grow", "memory limit exceeded (384 MiB)"
        )
        assert await run_one(runner, outcomes, "spin", {"do": "spin"}) == Failed(
            "spin", "cpu time limit exceeded (1 s)"
        )
        assert isinstance(await run_one(runner, outcomes, "after-cpu", {}), Completed)
        crashed = await run_one(runner, outcomes, "crash", {"do": "crash"})
        assert crashed == Failed("crash", "the worker running the job died (SIGSEGV)")
        assert isinstance(await run_one(runner, outcomes, "after-crash", {}), Completed)
        assert runner.free_slots == 1 and runner.running == frozenset()
    finally:
        runner.shutdown()


async def test_the_cpu_allowance_is_per_job_not_per_worker() -> None:
    outcomes: list[Outcome] = []
    runner = limited_runner(outcomes, JobLimits(cpu_s=1, memory_mib=512))
    try:
        pids = set()
        for n in range(2):  # with the worker's start, over 1 s in all; within 1 s each
            outcome = await run_one(runner, outcomes, f"burn-{n}", {"do": "burn", "s": 0.6})
            assert isinstance(outcome, Completed), outcome
            pids.add(outcome.result["pid"])
        assert len(pids) == 1
    finally:
        runner.shutdown()


def test_exit_statuses_read_as_reasons() -> None:
    assert reason_for_exit(-signal.SIGXCPU, 60) == "cpu time limit exceeded (60 s)"
    assert reason_for_exit(-signal.SIGKILL, 60).startswith("the worker running the job was killed (SIGKILL")
    assert reason_for_exit(-signal.SIGABRT, None) == "the worker running the job died (SIGABRT)"
    assert reason_for_exit(3, None) == "the worker running the job exited with status 3"
    assert reason_for_exit(None, None) == "the worker running the job died"


async def test_a_thread_runner_ignores_the_limits() -> None:
    # limits are a process's; with worker threads they would bind the node itself
    outcomes: list[Outcome] = []
    runner = JobRunner(
        lambda: make_executor("thread", LIMITS),
        concurrency=1,
        timeout_s=5,
        on_outcome=outcomes.append,
        execute=misbehave,
        limits=LIMITS,
    )
    try:
        outcome = await run_one(runner, outcomes, "burn", {"do": "burn", "s": 0.01})
        assert isinstance(outcome, Completed)
    finally:
        runner.shutdown()
    await asyncio.sleep(0)
