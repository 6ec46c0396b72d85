"""Jobs whose offers carry a budget run in a child their worker forks for each: one over its
memory or CPU budget is killed and fails as budget_exceeded with the usage measured, one past
the wall clock fails as timeout, and the worker runs the next job. Every outcome carries usage.
The work here stands in for a handler (importable by name, as "spawn" requires)."""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec
import pytest

from ccn_cli.node.budgets import allowance_for
from ccn_cli.node.config import JobLimits
from ccn_cli.node.execute import WorkDone, WorkFailed
from ccn_cli.node.runner import Completed, Failed, JobRunner, Outcome, make_executor
from ccn_cli.node.worker import run_in_child, run_measured_in_thread
from ccn_proto.budgets import JobBudget
from tests.unit.test_node_runner import offer, settle

pytestmark = pytest.mark.timeout(90)

MiB = 1024 * 1024
BUDGET = JobBudget(max_cpu_time_s=1.0, max_memory_mb=64)


def hog(job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Says which process ran it, and under which parent; or misbehaves as asked."""
    match payload.get("do"):
        case "allocate":  # one allocation far past the budget
            block = bytearray(512 * MiB)
            return {"size": len(block)}, "c" * 64
        case "touch":  # memory written page by page, past the budget
            pages = [bytearray(b"x" * (4 * MiB)) for _ in range(40)]
            return {"pages": len(pages)}, "c" * 64
        case "spin":  # pure CPU, never yielding, far past the budget
            deadline = time.process_time() + 30
            while time.process_time() < deadline:
                pass
            return {"spun": True}, "c" * 64
        case "sleep":
            time.sleep(payload["s"])
        case "burn":  # a little CPU, as any real job uses
            deadline = time.process_time() + 0.05
            while time.process_time() < deadline:
                pass
            return {"pid": os.getpid(), "parent": os.getppid()}, "c" * 64
    return {"pid": os.getpid(), "parent": os.getppid()}, "c" * 64


def budgeted_runner(outcomes: list[Outcome], timeout_s: float = 25.0, limits: JobLimits | None = None) -> JobRunner:
    return JobRunner(
        lambda: make_executor("process", limits),
        concurrency=1,
        timeout_s=timeout_s,
        on_outcome=outcomes.append,
        execute=hog,
        limits=limits,
    )


async def run_one(
    runner: JobRunner, outcomes: list[Outcome], job_id: str, payload: dict[str, Any], budget: JobBudget | None = BUDGET
) -> Outcome:
    runner.start(msgspec.structs.replace(offer(job_id, payload), budget=budget))
    await settle(outcomes, len(outcomes) + 1)
    return outcomes[-1]


async def test_jobs_over_their_memory_or_cpu_budget_are_killed_and_reported_and_the_worker_runs_on() -> None:
    outcomes: list[Outcome] = []
    runner = budgeted_runner(outcomes)
    try:
        first = await run_one(runner, outcomes, "first", {})
        assert isinstance(first, Completed), first
        worker = first.result["parent"]
        assert first.result["pid"] != worker  # a child of the worker's, for this job alone
        assert first.usage is not None and first.usage.wall_ms > 0 and first.usage.max_memory_mb < 64

        allocated = await run_one(runner, outcomes, "allocate", {"do": "allocate"})
        assert isinstance(allocated, Failed) and allocated.kind == "budget_exceeded", allocated
        assert allocated.reason == "memory budget exceeded (64 MiB)" and allocated.usage is not None

        touched = await run_one(runner, outcomes, "touch", {"do": "touch"})
        assert isinstance(touched, Failed) and touched.kind == "budget_exceeded", touched
        assert touched.usage is not None and 32 <= touched.usage.max_memory_mb <= 80  # it got that far

        spun = await run_one(runner, outcomes, "spin", {"do": "spin"})
        assert isinstance(spun, Failed) and spun.kind == "budget_exceeded", spun
        assert spun.reason in ("cpu time budget exceeded (1 s)",) or spun.reason.startswith("over its budget: cpu")
        assert spun.usage is not None and 0.9 <= spun.usage.cpu_time_s < 3.0

        after = await run_one(runner, outcomes, "after", {})
        assert isinstance(after, Completed) and after.result["parent"] == worker  # the same worker, still up
        assert runner.free_slots == 1 and runner.running == frozenset()
    finally:
        runner.shutdown()


async def test_a_budgeted_job_past_the_wall_clock_is_killed_by_its_worker_and_reported_with_usage() -> None:
    outcomes: list[Outcome] = []
    runner = budgeted_runner(outcomes, timeout_s=4.0)
    try:
        # the worker starts, and loads the job libraries, within the first job's time and the grace
        first = await run_one(runner, outcomes, "first", {})
        assert isinstance(first, Completed), first
        slept = await run_one(runner, outcomes, "sleep", {"do": "sleep", "s": 60})
        assert isinstance(slept, Failed) and slept.kind == "timeout" and slept.reason == "timed out after 4 s"
        assert slept.usage is not None and slept.usage.wall_ms >= 4000 and slept.usage.cpu_time_s < 1.0
        after = await run_one(runner, outcomes, "after", {})
        assert isinstance(after, Completed) and after.result["parent"] == first.result["parent"]
    finally:
        runner.shutdown()


async def test_the_nodes_own_limit_still_holds_under_a_looser_budget_and_fails_as_an_error_not_the_worker() -> None:
    outcomes: list[Outcome] = []
    runner = budgeted_runner(outcomes, limits=JobLimits(cpu_s=1, memory_mib=4096))
    try:
        # a job in the worker itself sets the worker's own CPU limit a second past its time so
        # far; loading the job libraries for the first budgeted job takes longer than that
        plain = await run_one(runner, outcomes, "plain", {"do": "burn"}, budget=None)
        assert isinstance(plain, Completed), plain
        budgeted = await run_one(runner, outcomes, "budgeted", {"do": "burn"}, budget=JobBudget(max_cpu_time_s=600.0))
        assert isinstance(budgeted, Completed) and budgeted.result["parent"] == plain.result["pid"], budgeted
        spun = await run_one(runner, outcomes, "spin", {"do": "spin"}, budget=JobBudget(max_cpu_time_s=600.0))
        assert spun == Failed("spin", "cpu time limit exceeded (1 s)", "error", spun.usage)
        assert spun.usage is not None
    finally:
        runner.shutdown()


async def test_a_job_without_a_budget_runs_in_the_worker_itself_and_its_result_carries_usage() -> None:
    outcomes: list[Outcome] = []
    runner = budgeted_runner(outcomes, limits=JobLimits(cpu_s=60, memory_mib=4096))
    try:
        done = await run_one(runner, outcomes, "plain", {}, budget=None)
        assert isinstance(done, Completed), done
        assert done.result["parent"] == os.getpid()  # the worker is the node's child: no child of its own
        assert done.usage is not None and done.usage.wall_ms >= 0 and done.usage.bytes_fetched == 0
        touched = await run_one(runner, outcomes, "touch", {"do": "touch"}, budget=None)
        assert isinstance(touched, Completed) and touched.usage is not None
        assert touched.usage.max_memory_mb >= 150  # 160 MiB written, measured for this job alone
    finally:
        runner.shutdown()


def big_result(job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    return {"text": "x" * payload["size"]}, "c" * 64


def test_a_childs_report_past_its_bound_fails_the_job_and_the_child_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ccn_cli.node.worker.load_lazy_imports", lambda: None)
    monkeypatch.setattr("ccn_cli.node.worker.MAX_REPORT_BYTES", 10_000)
    allowance = allowance_for(JobBudget(max_memory_mb=64), None, wall_s=20.0)
    within = run_in_child(big_result, allowance, "x", {"size": 100})
    assert isinstance(within, WorkDone) and within.result == {"text": "x" * 100} and within.usage is not None
    over = run_in_child(big_result, allowance, "x", {"size": 50_000})
    assert isinstance(over, WorkFailed) and over.reason == "the job's report is over 10000 bytes"
    assert over.usage is not None


def test_in_a_worker_thread_a_job_is_judged_against_its_budget_once_done() -> None:
    over = run_measured_in_thread(hog, JobBudget(max_cpu_time_s=0.001), "x", {"do": "burn"})
    assert isinstance(over, WorkFailed) and over.kind == "budget_exceeded", over
    assert over.reason.startswith("over its budget: cpu time") and over.usage is not None
    within = run_measured_in_thread(hog, JobBudget(max_cpu_time_s=60.0), "x", {})
    assert isinstance(within, WorkDone) and within.usage is not None and within.usage.max_memory_mb == 0
