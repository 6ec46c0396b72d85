"""Resource budgets a job runs under on a node, and what the node says the job used.

An admin sets a node's budgets (node.budgets_set); each offer to the node carries them, and the
reference node runs the job in a child process held to them (rlimits and a wall clock), killing
it when it goes over. Usage comes back with the result or the failure. Usage is the node's own
word, so it is bounded like every untrusted number, and judged against the budget the job ran
under: a result whose usage exceeds its budget is a misreport, counted against the node."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

# why a job failed, as the node reports it: `error` (the handler raised, or the input was bad),
# `budget_exceeded` (killed for going over a resource budget), `timeout` (over its wall clock)
FailureKind = Literal["error", "budget_exceeded", "timeout"]


class JobBudget(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """None: no limit of that kind."""

    max_cpu_time_s: Annotated[float, msgspec.Meta(gt=0.0, le=86_400.0)] | None = None
    max_memory_mb: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] | None = None
    max_bandwidth_per_min: Annotated[int, msgspec.Meta(ge=1, le=2**40)] | None = None  # bytes


class JobUsage(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    cpu_time_s: Annotated[float, msgspec.Meta(ge=0.0, le=7 * 86_400.0)] = 0.0
    max_memory_mb: Annotated[int, msgspec.Meta(ge=0, le=1_048_576)] = 0
    wall_ms: Annotated[int, msgspec.Meta(ge=0, le=7 * 86_400_000)] = 0
    bytes_fetched: Annotated[int, msgspec.Meta(ge=0, le=2**50)] = 0


def over_budget(usage: JobUsage, budget: JobBudget | None) -> list[str]:
    """Which of the budget's limits the usage exceeds (empty when none, or no budget)."""
    if budget is None:
        return []
    over: list[str] = []
    if budget.max_cpu_time_s is not None and usage.cpu_time_s > budget.max_cpu_time_s:
        over.append("max_cpu_time_s")
    if budget.max_memory_mb is not None and usage.max_memory_mb > budget.max_memory_mb:
        over.append("max_memory_mb")
    if budget.max_bandwidth_per_min is not None and usage.wall_ms > 0:
        per_min = usage.bytes_fetched * 60_000 / max(usage.wall_ms, 60_000)
        if per_min > budget.max_bandwidth_per_min:
            over.append("max_bandwidth_per_min")
    return over
