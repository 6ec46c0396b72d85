"""A budgeted job's limits, and the judgement of how its child ended: pure, so each rule is a
row in a unit test.

An offer with a budget (ccn_proto.budgets.JobBudget, the admin's for this node) runs in a child
forked for the job alone (ccn_cli.node.worker), held by the kernel to:
- CPU time: RLIMIT_CPU at the budget rounded up to a whole second (the kernel counts seconds),
  SIGXCPU past it and SIGKILL a second later; a job that finishes within the rounding but over
  the budget itself is over all the same, judged from its measured CPU time;
- memory: RLIMIT_DATA at what the child holds when it starts plus the budget, so the job may grow
  by its budget (its usage is its peak resident set's growth, ccn_cli.node.usage);
- bandwidth: the fetch meter refuses a document that would take the job past its allowance;
- wall clock: the node's job timeout, after which its worker kills the child.
The node's own limits (JobLimits, set by whoever runs the node) still hold; when one of them is
the tighter, a job stopped by it failed as an `error`, not as over the admin's budget.

Whatever ends the child, its usage is measured (its rusage, the wall clock, the meter), and a
job whose usage is over its budget fails as `budget_exceeded` even if it finished: the
scheduler judges a result's usage by the same rule (over_budget), and would count it as a
misreport."""

from __future__ import annotations

import math
import os
import signal

import msgspec

from ccn_cli.node.config import JobLimits
from ccn_cli.node.execute import WorkFailed, WorkReport, cpu_limit_reason, reason_for_exit
from ccn_proto.budgets import JobBudget, JobUsage, over_budget


class JobAllowance(msgspec.Struct, frozen=True, kw_only=True):
    """What one budgeted job's child is held to (see the module's docstring)."""

    budget: JobBudget
    cpu_rlimit_s: int | None  # RLIMIT_CPU's soft limit; the hard one is a second more
    cpu_from_budget: bool  # the budget set cpu_rlimit_s, not the node's own limit
    memory_growth_mib: int | None  # how far the child may grow its data past its start
    bandwidth_per_min: int | None  # bytes
    wall_s: float


def allowance_for(budget: JobBudget, limits: JobLimits | None, wall_s: float) -> JobAllowance:
    node_cpu = limits.cpu_s if limits is not None else None
    budget_cpu = math.ceil(budget.max_cpu_time_s) if budget.max_cpu_time_s is not None else None
    cpu_from_budget = budget_cpu is not None and (node_cpu is None or budget_cpu <= node_cpu)
    return JobAllowance(
        budget=budget,
        cpu_rlimit_s=budget_cpu if cpu_from_budget else node_cpu,
        cpu_from_budget=cpu_from_budget,
        memory_growth_mib=budget.max_memory_mb,
        bandwidth_per_min=budget.max_bandwidth_per_min,
        wall_s=wall_s,
    )


class ChildEnd(msgspec.Struct, frozen=True, kw_only=True):
    """How a job's child ended: what it reported (None: nothing, it was killed or crashed), its
    exit status as multiprocessing writes it (negative: the signal that ended it), and whether
    the worker killed it at the wall clock."""

    report: WorkReport | None = None
    exit_code: int | None = None
    timed_out: bool = False


def exit_code_of(wait_status: int) -> int | None:
    """os.wait4's status as an exit code (negative: the signal that ended the child)."""
    try:
        return os.waitstatus_to_exitcode(wait_status)
    except ValueError:  # stopped, not ended
        return None


def cpu_budget_reason(budget_s: float) -> str:
    return f"cpu time budget exceeded ({budget_s:g} s)"


def over_budget_reason(over: list[str], usage: JobUsage, budget: JobBudget) -> str:
    """Which of the budget's limits the job went over, with what it used."""
    parts: list[str] = []
    for limit in over:
        match limit:
            case "max_cpu_time_s":
                parts.append(f"cpu time {usage.cpu_time_s:.3f} s of {budget.max_cpu_time_s:g} s")
            case "max_memory_mb":
                parts.append(f"memory {usage.max_memory_mb} MiB of {budget.max_memory_mb} MiB")
            case "max_bandwidth_per_min":
                parts.append(f"{usage.bytes_fetched} bytes fetched of {budget.max_bandwidth_per_min} per minute")
            case _:
                parts.append(limit)
    return "over its budget: " + ", ".join(parts)


def judge(end: ChildEnd, usage: JobUsage, allowance: JobAllowance) -> WorkReport:
    """The job's outcome, with its usage: timed out; over its budget by what it used; what the
    child reported; killed at its CPU limit; or died some other way."""
    if end.timed_out:
        return WorkFailed(reason=f"timed out after {allowance.wall_s:g} s", kind="timeout", usage=usage)
    over = over_budget(usage, allowance.budget)
    if over:
        return WorkFailed(reason=over_budget_reason(over, usage, allowance.budget), kind="budget_exceeded", usage=usage)
    if end.report is not None:
        return msgspec.structs.replace(end.report, usage=usage)
    if end.exit_code is not None and end.exit_code < 0 and _cpu_limit_signal(-end.exit_code, usage, allowance):
        if allowance.cpu_from_budget and allowance.budget.max_cpu_time_s is not None:
            return WorkFailed(
                reason=cpu_budget_reason(allowance.budget.max_cpu_time_s), kind="budget_exceeded", usage=usage
            )
        return WorkFailed(reason=cpu_limit_reason(allowance.cpu_rlimit_s or 0), usage=usage)
    return WorkFailed(reason=reason_for_exit(end.exit_code, None), usage=usage)


def _cpu_limit_signal(signum: int, usage: JobUsage, allowance: JobAllowance) -> bool:
    """SIGXCPU at the soft limit; SIGKILL at the hard one, a second later, if the child caught
    the first."""
    if allowance.cpu_rlimit_s is None:
        return False
    if signum == signal.SIGXCPU:
        return True
    return signum == signal.SIGKILL and usage.cpu_time_s >= allowance.cpu_rlimit_s
