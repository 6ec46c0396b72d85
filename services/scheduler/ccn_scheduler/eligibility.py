"""Whether a node may be handed work now, and of which types: a pure function of the node's
governance state (folded from CCN_NODES by the claim owner's node view), the time and its claims
today.

Three outcomes, so the edge can tell the node what to do:
- refused (Forbidden, 403 / an error frame): banned by an admin or by policy, opted out, its
  consent is not to the current version, or none of the asked job types is in a scope it
  consented to. Nothing it waits for will change that; the node must act (re-consent) or stop.
- withheld (an empty reply saying why, and until when if that is known): draining, offline,
  backed off, or its daily quota is spent. The node asks again later.
- allowed, with the asked job types narrowed to those its consented scopes cover.

A node the view has not seen is allowed: the edge authenticated it against the registry, and the
view follows the node stream a few milliseconds behind, so a node that registered just now
would otherwise be turned away. Job types with no consent scope (a test's own) need none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import msgspec

from ccn_core.domain.governance import is_backed_off
from ccn_core.domain.node import NodeState
from ccn_proto.budgets import JobBudget


class Eligibility(msgspec.Struct, frozen=True, kw_only=True):
    job_types: tuple[str, ...] = ()  # the asked types the node may be offered (allowed only)
    refusal: str | None = None  # why the node is refused (403)
    withheld: str | None = None  # why it gets nothing now
    until: datetime | None = None  # no work before this (backoff, a spent quota)
    draining: bool = False

    @property
    def allowed(self) -> bool:
        return self.refusal is None and self.withheld is None


def next_utc_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def judge(
    node: NodeState | None,
    job_types: Iterable[str],
    now: datetime,
    *,
    consent_version: str,
    scope_of: Mapping[str, str],
    claimed_today: int,
) -> Eligibility:
    asked = tuple(dict.fromkeys(job_types))
    if node is None:
        return Eligibility(job_types=asked)
    if node.status == "opted_out":
        return Eligibility(refusal="this node has opted out")
    refusal = node.refusal()
    if refusal is not None:
        return Eligibility(refusal=refusal)
    if node.consent_version != consent_version:
        had = node.consent_version or "none"
        return Eligibility(refusal=f"consent to version {consent_version} is needed before any new job (has {had})")
    scopes = set(node.consent_scopes)
    types = tuple(t for t in asked if scope_of.get(t) is None or scope_of[t] in scopes)
    if not types:
        wanted = sorted({scope_of[t] for t in asked if t in scope_of})
        return Eligibility(refusal=f"no consent to the scopes of the asked job types ({', '.join(wanted)})")
    if node.draining:
        return Eligibility(
            withheld="this node is draining: it finishes what it holds and gets nothing new", draining=True
        )
    if node.health == "offline":
        return Eligibility(withheld="this node is offline by its telemetry; it gets work once it is heard from again")
    if is_backed_off(node.backoff, now):
        return Eligibility(withheld=f"this node is backed off ({node.backoff_stage})", until=node.backoff_until)
    if claimed_today >= node.daily_quota:
        until = next_utc_midnight(now)
        return Eligibility(withheld=f"this node's daily quota of {node.daily_quota} jobs is spent", until=until)
    return Eligibility(job_types=types)


def job_budget(node: NodeState | None) -> JobBudget | None:
    """The budgets an admin set for the node, as each offer carries them (None: no limits)."""
    budgets = node.budgets if node is not None else None
    if budgets is None:
        return None
    return JobBudget(
        max_cpu_time_s=budgets.max_cpu_time_per_job_s,
        max_memory_mb=budgets.max_memory_mb,
        max_bandwidth_per_min=budgets.max_bandwidth_per_min,
    )
