"""What the claim owner applies of node governance on the claim path: eligibility (bans, drain,
health, backoff, consent and its scopes, the daily quota), fair shares, the budgets offers carry,
and whether a node's results are set aside (shadow-ban).

Synchronous and in memory: the node view (ccn_scheduler.node_view) is the owner's own fold of
CCN_NODES, the claims counted today and the fair-share window are the owner's own record of the
claims it decided (rebuilt from CCN_JOBS at takeover). A claim costs a few dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from ccn_core.errors import Forbidden
from ccn_proto.budgets import JobBudget
from ccn_proto.scheduler import ClaimJobs
from ccn_scheduler.eligibility import Eligibility, job_budget, judge
from ccn_scheduler.fair_share import FairShare
from ccn_scheduler.node_view import NodeView


class DailyClaims:
    """Jobs claimed per node on the current UTC day. Rebuilt at takeover from the day's
    job.claimed events; reset when the day turns."""

    def __init__(self) -> None:
        self._day: date | None = None
        self._counts: dict[str, int] = {}

    def add(self, node_id: str, at: datetime, count: int = 1) -> None:
        day = at.astimezone(UTC).date()
        if self._day is None or day > self._day:
            self._day, self._counts = day, {}
        elif day < self._day:
            return  # an earlier day's claim (a replay's): today's quota does not count it
        self._counts[node_id] = self._counts.get(node_id, 0) + count

    def count(self, node_id: str, now: datetime) -> int:
        if self._day != now.astimezone(UTC).date():
            return 0
        return self._counts.get(node_id, 0)


@dataclass(frozen=True, slots=True)
class Admission:
    eligibility: Eligibility
    allowance: int  # how many jobs the node may take now (its fair share's room)


class NodeGovernance:
    def __init__(
        self,
        view: NodeView,
        *,
        consent_version: str,
        scope_of: Mapping[str, str],
        fair_share: FairShare | None = None,
    ) -> None:
        self.view = view
        self.daily = DailyClaims()
        self.fair_share = fair_share or FairShare()
        self._consent_version = consent_version
        self._scope_of = scope_of

    def admit(self, command: ClaimJobs, now: datetime) -> Admission:
        """Raises Forbidden when the node may not be served at all."""
        node_id = command.node_id
        node = self.view.get(node_id)
        eligibility = judge(
            node,
            command.job_types,
            now,
            consent_version=self._consent_version,
            scope_of=self._scope_of,
            claimed_today=self.daily.count(node_id, now),
        )
        if eligibility.refusal is not None:
            raise Forbidden(eligibility.refusal)
        if not eligibility.allowed:
            return Admission(eligibility=eligibility, allowance=0)
        self.fair_share.asked(node_id, now, self.view.weight(node_id))
        allowance = self.fair_share.allowance(node_id, now, floor=command.concurrency)
        if node is not None:
            allowance = min(allowance, max(0, node.daily_quota - self.daily.count(node_id, now)))
        return Admission(eligibility=eligibility, allowance=allowance)

    def claimed(self, node_id: str, count: int, now: datetime) -> None:
        self.daily.add(node_id, now, count)
        self.fair_share.took(node_id, count, now)

    def budget(self, node_id: str) -> JobBudget | None:
        return job_budget(self.view.get(node_id))

    def shadow_banned(self, node_id: str) -> bool:
        node = self.view.get(node_id)
        return node is not None and node.shadow_banned
