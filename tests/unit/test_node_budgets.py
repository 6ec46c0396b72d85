"""The pure parts of running a job under its budget: the limits a budget sets within the node's
own, the judgement of how a job's child ended, usage from what the kernel measured, and the
bandwidth allowance and fetch meter."""

from __future__ import annotations

import os
import signal

import pytest

from ccn_cli.node.budgets import ChildEnd, JobAllowance, allowance_for, exit_code_of, judge
from ccn_cli.node.config import JobLimits
from ccn_cli.node.execute import WorkDone, WorkFailed, failure_report
from ccn_cli.node.metering import BandwidthExceeded, FetchMeter, SharedCounter, bandwidth_allowance
from ccn_cli.node.usage import status_kib, usage_of
from ccn_proto.budgets import JobBudget, JobUsage

NODE = JobLimits(cpu_s=60, memory_mib=1024)


@pytest.mark.parametrize(
    ("budget", "limits", "cpu_rlimit_s", "cpu_from_budget"),
    [
        (JobBudget(max_cpu_time_s=2.5), NODE, 3, True),  # whole seconds, rounded up
        (JobBudget(max_cpu_time_s=60.0), NODE, 60, True),  # a tie: the budget's
        (JobBudget(max_cpu_time_s=90.0), NODE, 60, False),  # the node's own limit is tighter
        (JobBudget(max_memory_mb=64), NODE, 60, False),  # no CPU budget: the node's limit
        (JobBudget(max_cpu_time_s=0.2), None, 1, True),
        (JobBudget(), None, None, False),
    ],
)
def test_the_cpu_limit_is_the_tighter_of_the_budget_and_the_node(
    budget: JobBudget, limits: JobLimits | None, cpu_rlimit_s: int | None, cpu_from_budget: bool
) -> None:
    allowance = allowance_for(budget, limits, wall_s=30.0)
    assert (allowance.cpu_rlimit_s, allowance.cpu_from_budget) == (cpu_rlimit_s, cpu_from_budget)
    assert allowance.wall_s == 30.0 and allowance.budget == budget


def test_memory_and_bandwidth_come_from_the_budget() -> None:
    allowance = allowance_for(JobBudget(max_memory_mb=64, max_bandwidth_per_min=10_000), NODE, 5.0)
    assert (allowance.memory_growth_mib, allowance.bandwidth_per_min) == (64, 10_000)


BUDGET = JobBudget(max_cpu_time_s=1.5, max_memory_mb=64, max_bandwidth_per_min=1000)
ALLOWANCE = allowance_for(BUDGET, NODE, wall_s=10.0)
WITHIN = JobUsage(cpu_time_s=0.4, max_memory_mb=10, wall_ms=500, bytes_fetched=100)
DONE = WorkDone({"ok": True}, "c" * 64)


def test_a_job_within_its_budget_keeps_its_result_with_its_usage() -> None:
    assert judge(ChildEnd(report=DONE, exit_code=0), WITHIN, ALLOWANCE) == WorkDone(
        {"ok": True}, "c" * 64, usage=WITHIN
    )


@pytest.mark.parametrize(
    ("usage", "reason"),
    [
        (
            JobUsage(cpu_time_s=1.9, max_memory_mb=10, wall_ms=2000),
            "over its budget: cpu time 1.900 s of 1.5 s",
        ),
        (JobUsage(cpu_time_s=0.1, max_memory_mb=65, wall_ms=300), "over its budget: memory 65 MiB of 64 MiB"),
        (
            JobUsage(cpu_time_s=0.1, wall_ms=300, bytes_fetched=1001),
            "over its budget: 1001 bytes fetched of 1000 per minute",
        ),
    ],
)
def test_a_job_that_finished_over_its_budget_fails_as_over_it(usage: JobUsage, reason: str) -> None:
    # within the kernel's whole-second rounding, or a few pages past the limit, but over the
    # budget itself: the scheduler would count the result as a misreport
    assert judge(ChildEnd(report=DONE, exit_code=0), usage, ALLOWANCE) == WorkFailed(
        reason=reason, kind="budget_exceeded", usage=usage
    )


def test_a_child_killed_at_its_cpu_limit_is_over_its_budget_or_over_the_nodes_limit() -> None:
    usage = JobUsage(cpu_time_s=1.49, wall_ms=1600)  # the kernel's tick and rusage differ a little
    by_budget = judge(ChildEnd(exit_code=-signal.SIGXCPU), usage, ALLOWANCE)
    assert by_budget == WorkFailed(reason="cpu time budget exceeded (1.5 s)", kind="budget_exceeded", usage=usage)
    caught_the_first = judge(ChildEnd(exit_code=-signal.SIGKILL), JobUsage(cpu_time_s=2.0, wall_ms=2100), ALLOWANCE)
    assert caught_the_first.kind == "budget_exceeded"
    by_node = allowance_for(JobBudget(max_memory_mb=64), JobLimits(cpu_s=1, memory_mib=512), wall_s=10.0)
    assert judge(ChildEnd(exit_code=-signal.SIGXCPU), JobUsage(cpu_time_s=0.99), by_node) == WorkFailed(
        reason="cpu time limit exceeded (1 s)", kind="error", usage=JobUsage(cpu_time_s=0.99)
    )


def test_a_child_killed_at_the_wall_clock_timed_out() -> None:
    usage = JobUsage(cpu_time_s=0.01, wall_ms=10_000)
    assert judge(ChildEnd(report=None, exit_code=-signal.SIGKILL, timed_out=True), usage, ALLOWANCE) == WorkFailed(
        reason="timed out after 10 s", kind="timeout", usage=usage
    )


def test_what_the_child_reported_stands_with_the_usage_measured_from_outside() -> None:
    reported = WorkFailed(reason="memory budget exceeded (64 MiB)", kind="budget_exceeded")
    assert judge(ChildEnd(report=reported, exit_code=0), WITHIN, ALLOWANCE) == WorkFailed(
        reason="memory budget exceeded (64 MiB)", kind="budget_exceeded", usage=WITHIN
    )


def test_a_child_that_died_otherwise_failed_as_an_error_with_its_usage() -> None:
    assert judge(ChildEnd(exit_code=-signal.SIGSEGV), WITHIN, ALLOWANCE) == WorkFailed(
        reason="the worker running the job died (SIGSEGV)", usage=WITHIN
    )
    assert judge(ChildEnd(exit_code=70), WITHIN, ALLOWANCE).reason == (
        "the worker running the job exited with status 70"
    )
    assert judge(ChildEnd(exit_code=-signal.SIGKILL), WITHIN, ALLOWANCE).kind == "error"  # not at the CPU limit


def test_wait_statuses_read_as_exit_codes() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert exit_code_of(status) == 3
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert exit_code_of(status) == -signal.SIGKILL


def test_exceptions_read_as_failures() -> None:
    assert failure_report(MemoryError(), "memory limit exceeded (512 MiB)") == WorkFailed(
        reason="memory limit exceeded (512 MiB)", fresh_worker=True
    )
    assert failure_report(BandwidthExceeded("bandwidth budget exceeded: x"), None) == WorkFailed(
        reason="bandwidth budget exceeded: x", kind="budget_exceeded"
    )
    assert failure_report(ValueError("bad payload"), None) == WorkFailed(reason="bad payload")
    assert failure_report(RuntimeError("boom"), None) == WorkFailed(reason="RuntimeError: boom")
    assert failure_report(MemoryError("x"), None) == WorkFailed(reason="MemoryError: x")


def test_usage_is_growth_over_the_start_rounded_up_and_bounded() -> None:
    usage = usage_of(cpu_s=0.1234567, peak_rss_kib=300_000, start_rss_kib=250_000, wall_s=1.2345, bytes_fetched=7)
    assert usage == JobUsage(cpu_time_s=0.123457, max_memory_mb=49, wall_ms=1234, bytes_fetched=7)
    assert usage_of(cpu_s=0.0, peak_rss_kib=100, start_rss_kib=200, wall_s=0.0, bytes_fetched=0).max_memory_mb == 0
    assert usage_of(cpu_s=0.0, peak_rss_kib=1025, start_rss_kib=0, wall_s=0.0, bytes_fetched=0).max_memory_mb == 2
    huge = usage_of(cpu_s=1e12, peak_rss_kib=2**62, start_rss_kib=0, wall_s=1e12, bytes_fetched=2**60)
    assert huge == JobUsage(
        cpu_time_s=7 * 86_400.0, max_memory_mb=1_048_576, wall_ms=7 * 86_400_000, bytes_fetched=2**50
    )


def test_status_fields_are_read_in_kib() -> None:
    text = "Name:\tpython\nVmHWM:\t  320876 kB\nVmRSS:\t   13672 kB\n"
    assert status_kib(text, "VmRSS") == 13672 and status_kib(text, "VmHWM") == 320876
    assert status_kib(text, "VmData") is None and status_kib("VmRSS:\tlots\n", "VmRSS") is None


def test_the_bandwidth_allowance_is_a_minutes_worth_at_once_then_grows() -> None:
    assert bandwidth_allowance(1000, 0.0) == 1000
    assert bandwidth_allowance(1000, 59.0) == 1000
    assert bandwidth_allowance(1000, 90.0) == 1500


def test_the_fetch_meter_refuses_a_fetch_past_the_allowance_before_it_starts() -> None:
    now = [0.0]
    counter = SharedCounter()
    meter = FetchMeter(1000, counter, clock=lambda: now[0])
    meter.admit(600)
    meter.count(600)
    with pytest.raises(BandwidthExceeded, match="1001 bytes to fetch, over the 1000 bytes allowed"):
        meter.admit(401)
    meter.admit(400)
    now[0] = 120.0  # two minutes in: two minutes' worth
    meter.admit(1400)
    assert meter.fetched == 600 and counter.value == 600
    counter.close()
    unlimited = FetchMeter()
    unlimited.admit(2**40)
    unlimited.count(5)
    assert unlimited.fetched == 5


def test_a_shared_counter_is_read_by_the_parent_after_its_child_is_gone() -> None:
    counter = SharedCounter()
    pid = os.fork()
    if pid == 0:
        counter.value = 12345
        os._exit(0)
    os.waitpid(pid, 0)
    assert counter.value == 12345
    counter.close()


def test_an_allowance_is_plain_data() -> None:
    assert isinstance(ALLOWANCE, JobAllowance) and ALLOWANCE.cpu_rlimit_s == 2
