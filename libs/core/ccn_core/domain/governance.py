"""What a node's record says about it: health, backoff, daily quota and reputation, as pure
functions of the node's history and the time.

Thresholds are named here, with why each is what it is, and nowhere else: the node decider
applies them when it records the node's work, its rate-limit refusals and its liveness; the
claim owner reads the results off the node's state (ccn_core.domain.node).

Inputs come only from the node's own history (node.work_recorded windows, node.rate_limited
windows, the liveness the registry observed), so the same history always gives the same
verdicts: an analyst replaying CCN_NODES gets the scores the system acted on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from ccn_proto.nodes import BackoffStage, Health, NodeWorkRecorded

# -- health -------------------------------------------------------------------------------------

# Nodes heartbeat every 10 s (ccn_edge.node_socket.HEARTBEAT_INTERVAL_S). Two missed beats is a
# blip worth noting; past four and a half, the edge has hung up on the socket anyway (its idle
# timeout is four beats), so the node is gone and its leases should go back.
UNSTABLE_SILENCE_S: Final = 25.0
OFFLINE_SILENCE_S: Final = 45.0
# the record that counts as "recent" for health: ten minutes of windows
RECENT: Final = timedelta(minutes=10)
# a success rate is judged once there are this many outcomes to judge: one failure of a new
# node's first job says little
MIN_OUTCOMES: Final = 5
UNSTABLE_SUCCESS_RATE: Final = 0.8
# two windows with refused requests in ten minutes: not a burst, a habit
UNSTABLE_RATE_LIMITED_WINDOWS: Final = 2
# budget violations (over, or misreported) in ten minutes make a node unstable. Only lying bans
# it: a node that kills its jobs at a badly sized budget reports honestly, and is backed off and
# scored down, not banned; a node whose results claim more than their budget allowed, ten times
# in ten minutes, ignores its budgets or misreports them
UNSTABLE_VIOLATIONS: Final = 3
BANNED_MISREPORTS: Final = 10
RECENT_WINDOWS_KEPT: Final = 32  # bounds what a node's state carries


class RecentRecord(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """The node's windows of the last few minutes (at most RECENT_WINDOWS_KEPT of each)."""

    work: tuple[NodeWorkRecorded, ...] = ()
    rate_limited_at: tuple[datetime, ...] = ()  # window ends of node.rate_limited events


def remember_work(recent: RecentRecord, work: NodeWorkRecorded) -> RecentRecord:
    kept = (*recent.work, work)[-RECENT_WINDOWS_KEPT:]
    return msgspec.structs.replace(recent, work=kept)


def remember_rate_limited(recent: RecentRecord, window_end: datetime) -> RecentRecord:
    kept = (*recent.rate_limited_at, window_end)[-RECENT_WINDOWS_KEPT:]
    return msgspec.structs.replace(recent, rate_limited_at=kept)


class HealthInputs(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    silent_s: float
    outcomes: int
    success_rate: float | None
    rate_limited_windows: int
    violations: int
    misreports: int


def health_inputs(recent: RecentRecord, silent_s: float, now: datetime) -> HealthInputs:
    since = now - RECENT
    work = [window for window in recent.work if window.window_end >= since]
    completed = sum(window.completed for window in work)
    failed = sum(window.failed + window.abandoned for window in work)
    outcomes = completed + failed
    return HealthInputs(
        silent_s=silent_s,
        outcomes=outcomes,
        success_rate=completed / outcomes if outcomes else None,
        rate_limited_windows=sum(1 for end in recent.rate_limited_at if end >= since),
        violations=sum(window.budget_exceeded + window.budget_misreported for window in work),
        misreports=sum(window.budget_misreported for window in work),
    )


def assess_health(inputs: HealthInputs) -> tuple[Health, list[str]]:
    """The node's health and why; the worst finding wins (banned, offline, unstable)."""
    if inputs.misreports >= BANNED_MISREPORTS:
        return "banned", [f"{inputs.misreports} results over their budgets in {_minutes(RECENT)}"]
    if inputs.silent_s >= OFFLINE_SILENCE_S:
        return "offline", [f"no telemetry for {inputs.silent_s:.0f} s"]
    reasons: list[str] = []
    if inputs.silent_s >= UNSTABLE_SILENCE_S:
        reasons.append(f"no telemetry for {inputs.silent_s:.0f} s")
    rate = inputs.success_rate
    if rate is not None and inputs.outcomes >= MIN_OUTCOMES and rate < UNSTABLE_SUCCESS_RATE:
        reasons.append(f"success rate {rate:.0%} over {inputs.outcomes} jobs")
    if inputs.rate_limited_windows >= UNSTABLE_RATE_LIMITED_WINDOWS:
        reasons.append(f"rate-limited in {inputs.rate_limited_windows} windows")
    if inputs.violations >= UNSTABLE_VIOLATIONS:
        reasons.append(f"{inputs.violations} budget violations")
    return ("unstable", reasons) if reasons else ("healthy", [])


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:.0f} min"


# -- backoff --------------------------------------------------------------------------------

# How long each stage keeps a node from new work. Each repeat of trouble while the last stage's
# memory lasts climbs one stage; a stage decays one step per clean window after it ended.
BACKOFF_FOR: Final[dict[BackoffStage, timedelta]] = {
    "none": timedelta(0),
    "mild": timedelta(seconds=30),
    "moderate": timedelta(minutes=2),
    "severe": timedelta(minutes=10),
    "suspended": timedelta(hours=1),
}
STAGES: Final[tuple[BackoffStage, ...]] = ("none", "mild", "moderate", "severe", "suspended")
# a work window is trouble when at least this many of its jobs failed, and at least this share
FAILURES_FOR_STRIKE: Final = 3
FAILURE_SHARE_FOR_STRIKE: Final = 0.5


class Backoff(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    stage: BackoffStage = "none"
    until: datetime | None = None


def work_strike(work: NodeWorkRecorded) -> str | None:
    """Why this window is trouble, or None."""
    failed = work.failed + work.abandoned + work.budget_exceeded + work.budget_misreported
    total = failed + work.completed
    if failed >= FAILURES_FOR_STRIKE and failed >= FAILURE_SHARE_FOR_STRIKE * total:
        return f"{failed} of {total} jobs failed"
    return None


def is_clean(work: NodeWorkRecorded) -> bool:
    return work.completed > 0 and work_strike(work) is None and work.budget_misreported == 0


def escalate(current: Backoff, cause: str, now: datetime) -> tuple[Backoff, str]:
    """One stage up (suspended stays suspended, its hour restarted)."""
    index = STAGES.index(current.stage)
    stage = STAGES[min(index + 1, len(STAGES) - 1)]
    return Backoff(stage=stage, until=now + BACKOFF_FOR[stage]), cause


def decay(current: Backoff, now: datetime) -> Backoff | None:
    """One stage down after good behaviour, once the current stage's time has passed; None when
    nothing changes."""
    if current.stage == "none" or (current.until is not None and current.until > now):
        return None
    stage = STAGES[STAGES.index(current.stage) - 1]
    return Backoff(stage=stage, until=None if stage == "none" else now)


def is_backed_off(backoff: Backoff, now: datetime) -> bool:
    return backoff.until is not None and backoff.until > now


# -- daily quota (BOINC's rule) ------------------------------------------------------------------

# A node starts trusted with the full quota; each failure takes one job off it, a window where
# most jobs failed halves it, and a clean window doubles it back (BOINC's max_jobs_per_day).
DAILY_QUOTA_MAX: Final = 20_000
DAILY_QUOTA_MIN: Final = 10


def next_quota(quota: int, work: NodeWorkRecorded) -> int:
    failed = work.failed + work.abandoned + work.budget_exceeded + work.budget_misreported
    if failed:
        quota -= failed
        if work_strike(work) is not None:
            quota //= 2
        return max(DAILY_QUOTA_MIN, quota)
    if work.completed:
        return min(DAILY_QUOTA_MAX, quota * 2)
    return quota


# -- reputation ---------------------------------------------------------------------------------


class Record(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """The node's whole record, summed over its history: what its reputation is computed from."""

    completed: int = 0
    failed: int = 0
    abandoned: int = 0
    budget_violations: int = 0
    agreed: int = 0
    disagreed: int = 0
    consensus_disagreed: int = 0  # results outside the agreed answer of a consensus (consensus.node_disagreed)
    total_job_ms: int = 0
    health_changes: int = 0  # moves to unstable, offline or banned
    rate_limited: int = 0  # requests refused by rate limits


def add_work(record: Record, work: NodeWorkRecorded) -> Record:
    return msgspec.structs.replace(
        record,
        completed=record.completed + work.completed,
        failed=record.failed + work.failed,
        abandoned=record.abandoned + work.abandoned,
        budget_violations=record.budget_violations + work.budget_exceeded + work.budget_misreported,
        agreed=record.agreed + work.agreed,
        disagreed=record.disagreed + work.disagreed,
        consensus_disagreed=record.consensus_disagreed + work.consensus_disagreed,
        total_job_ms=record.total_job_ms + work.total_job_ms,
    )


# Each term is a share of 100. Rates are smoothed (Laplace: one success and one failure assumed)
# so a new node starts mid-way rather than at 0 or 100, and one outcome moves it a little.
REPUTATION_WEIGHTS: Final[dict[str, float]] = {
    "success": 40.0,
    "agreement": 25.0,
    "latency": 10.0,
    "stability": 15.0,
    "conduct": 10.0,
}
# A result outside a consensus's answer counts against the agreement term as this many
# disagreements: a quorum of independent nodes outvoted it, which says more than a checksum that
# differed from one other node's (`disagreed`)
CONSENSUS_DISAGREEMENT_WEIGHT: Final = 2.0
# a job taking this long on average halves the latency term
LATENCY_HALF_MS: Final = 60_000.0
# this many health downgrades halve the stability term
STABILITY_HALF_CHANGES: Final = 10.0
# this many refused requests (a budget violation counts as five) halve the conduct term
CONDUCT_HALF: Final = 50.0


class ReputationScore(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    score: float
    components: dict[str, float]


def reputation(record: Record) -> ReputationScore:
    outcomes = record.completed + record.failed + record.abandoned + record.budget_violations
    success = (record.completed + 1) / (outcomes + 2)
    disagreements = record.disagreed + CONSENSUS_DISAGREEMENT_WEIGHT * record.consensus_disagreed
    agreement = (record.agreed + 1) / (record.agreed + disagreements + 2)
    mean_ms = record.total_job_ms / record.completed if record.completed else None
    latency = 0.5 if mean_ms is None else 1 / (1 + mean_ms / LATENCY_HALF_MS)
    stability = 1 / (1 + record.health_changes / STABILITY_HALF_CHANGES)
    conduct = 1 / (1 + (record.rate_limited + 5 * record.budget_violations) / CONDUCT_HALF)
    shares = {
        "success": success,
        "agreement": agreement,
        "latency": latency,
        "stability": stability,
        "conduct": conduct,
    }
    components = {name: round(REPUTATION_WEIGHTS[name] * share, 3) for name, share in shares.items()}
    return ReputationScore(score=round(min(100.0, max(0.0, sum(components.values()))), 2), components=components)
