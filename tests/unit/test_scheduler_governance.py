"""Node governance on the claim path, pure: who may be handed work and of which types, the daily
quota's count, the node view's fold and which changes send a node's leases back, and the board
leaving a job to others once a node's result for it was set aside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ccn_core.consent import consent_catalogue
from ccn_core.domain.governance import DAILY_QUOTA_MAX
from ccn_core.domain.job import JobState
from ccn_core.domain.node import NodeDecider, NodeState
from ccn_core.errors import Forbidden
from ccn_proto.budgets import JobBudget
from ccn_proto.nodes import (
    ConsentRecorded,
    NodeBanned,
    NodeBudgetsSet,
    NodeEvent,
    NodeRegistered,
    NodeShadowBanned,
    NodeUnbanned,
    NodeWorkRecorded,
)
from ccn_proto.scheduler import ClaimJobs
from ccn_scheduler.board import ClaimBoard
from ccn_scheduler.eligibility import Eligibility, judge, next_utc_midnight
from ccn_scheduler.node_governance import DailyClaims, NodeGovernance
from ccn_scheduler.node_view import NodeView, needs_release, scheduling_weight

NOW = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
VERSION = "2026-11-01"
SCOPES = {"crawl_page": "crawl", "extract_text": "documents", "classify_document": "nlp"}
BASE = NodeState(node_id="n1", status="active", consent_version=VERSION, consent_scopes=("crawl", "documents"))


def node(**changes: object) -> NodeState:
    return msgspec.structs.replace(BASE, **changes)


def check(state: NodeState | None, types: tuple[str, ...] = ("crawl_page",), claimed_today: int = 0) -> Eligibility:
    return judge(state, types, NOW, consent_version=VERSION, scope_of=SCOPES, claimed_today=claimed_today)


ALLOWED = Eligibility(job_types=("crawl_page",))
CASES: list[tuple[str, NodeState | None, tuple[str, ...], int, str]] = [
    # (why, node, asked types, claimed today, expected: allowed / refused / withheld / types=...)
    ("an ordinary node", BASE, ("crawl_page",), 0, "allowed"),
    ("a node the view has not seen yet (registered a moment ago)", None, ("classify_document",), 0, "allowed"),
    ("banned by an admin", node(banned=True, ban_reason="abuse"), ("crawl_page",), 0, "refused"),
    ("banned by policy", node(health="banned"), ("crawl_page",), 0, "refused"),
    ("opted out", node(status="opted_out"), ("crawl_page",), 0, "refused"),
    ("never consented", node(consent_version=None), ("crawl_page",), 0, "refused"),
    (
        "consented to an older version: re-consent first",
        node(consent_version="2020-01-01"),
        ("crawl_page",),
        0,
        "refused",
    ),
    ("asks only types outside its scopes", BASE, ("classify_document",), 0, "refused"),
    (
        "asks mixed types: narrowed",
        BASE,
        ("classify_document", "extract_text", "crawl_page"),
        0,
        "types=extract_text,crawl_page",
    ),
    ("a type with no scope needs none", BASE, ("echo",), 0, "types=echo"),
    ("draining", node(draining=True), ("crawl_page",), 0, "withheld"),
    ("offline", node(health="offline"), ("crawl_page",), 0, "withheld"),
    ("unstable nodes are served (offered less)", node(health="unstable"), ("crawl_page",), 0, "allowed"),
    (
        "backed off until later",
        node(backoff_stage="mild", backoff_until=NOW + timedelta(seconds=30)),
        ("crawl_page",),
        0,
        "withheld",
    ),
    (
        "a backoff that has ended",
        node(backoff_stage="mild", backoff_until=NOW - timedelta(seconds=1)),
        ("crawl_page",),
        0,
        "allowed",
    ),
    ("its daily quota spent", node(daily_quota=10), ("crawl_page",), 10, "withheld"),
    ("one job left of its quota", node(daily_quota=10), ("crawl_page",), 9, "allowed"),
    ("shadow-banned nodes keep getting work", node(shadow_banned=True), ("crawl_page",), 0, "allowed"),
]


@pytest.mark.parametrize(("state", "types", "claimed", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_eligibility(state: NodeState | None, types: tuple[str, ...], claimed: int, expected: str) -> None:
    verdict = check(state, types, claimed)
    if expected == "allowed":
        assert verdict.allowed and verdict.job_types == types
    elif expected == "refused":
        assert verdict.refusal and not verdict.job_types
    elif expected == "withheld":
        assert verdict.refusal is None and verdict.withheld and not verdict.job_types
    else:
        assert verdict.allowed and verdict.job_types == tuple(expected.removeprefix("types=").split(","))


def test_withheld_work_says_until_when_and_whether_draining() -> None:
    until = NOW + timedelta(minutes=2)
    backed_off = check(node(backoff_stage="moderate", backoff_until=until))
    assert (backed_off.until, backed_off.draining, backed_off.withheld) == (
        until,
        False,
        "this node is backed off (moderate)",
    )
    assert check(node(draining=True)).draining
    spent = check(node(daily_quota=10), claimed_today=12)
    assert spent.until == datetime(2026, 12, 7, tzinfo=UTC) == next_utc_midnight(NOW)
    assert "re-consent" not in (check(node(consent_version="old")).refusal or "") and "2026-11-01" in (
        check(node(consent_version="old")).refusal or ""
    )


def test_daily_claims_count_the_current_utc_day_only() -> None:
    daily = DailyClaims()
    daily.add("n1", NOW - timedelta(days=1))  # yesterday's, replayed first
    daily.add("n1", NOW, 3)
    daily.add("n1", NOW - timedelta(days=1))  # an earlier day after today's: not today's
    daily.add("n2", NOW)
    assert (daily.count("n1", NOW), daily.count("n2", NOW), daily.count("n3", NOW)) == (3, 1, 0)
    tomorrow = NOW + timedelta(hours=2)
    assert daily.count("n1", tomorrow) == 0
    daily.add("n1", tomorrow)
    assert daily.count("n1", tomorrow) == 1 and daily.count("n2", tomorrow) == 0


def registered(node_id: str) -> list[NodeEvent]:
    return [
        NodeRegistered(node_id=node_id, api_token_hash="h", session_id="s", session_token_hash="sh", consent_flag=True),
        ConsentRecorded(consent_version=VERSION, consent_hash="x", scopes=["crawl"]),
    ]


def test_the_view_folds_governance_with_the_node_decider_and_keeps_states_small() -> None:
    changes: list[tuple[str, str | None]] = []
    view = NodeView(
        NodeDecider(consent_catalogue()),
        max_nodes=10,
        on_change=lambda node_id, before, after: changes.append((node_id, needs_release(before, after))),
    )
    for event in registered("n1"):
        view.apply("n1", event)
    budgets = NodeBudgetsSet(max_cpu_time_per_job_s=5.0, max_memory_mb=256, by="admin")
    view.apply("n1", budgets)
    state = view.get("n1")
    assert state is not None
    assert (state.status, state.consent_version, state.consent_scopes, state.budgets) == (
        "active",
        VERSION,
        ("crawl",),
        budgets,
    )
    assert state.sessions == {} and state.api_token_hash == ""  # what the scheduler never reads
    view.apply("n1", NodeBanned(reason="abuse", by="admin"))
    view.apply("n1", NodeBanned(reason="again", by="admin"))  # already banned: no second release
    view.apply("n1", NodeUnbanned(reason="appeal", by="admin"))
    assert changes == [("n1", None)] * 3 + [("n1", "node banned"), ("n1", None), ("n1", None)]
    assert view.get("n1") == msgspec.structs.replace(state, banned=False, ban_reason=None)


def test_the_view_is_bounded() -> None:
    view = NodeView(NodeDecider(consent_catalogue()), max_nodes=2)
    for node_id in ("a", "b", "c"):
        view.apply(node_id, registered(node_id)[0])
    assert len(view) == 2 and view.get("c") is None
    view.apply("a", NodeShadowBanned(reason="x", by="admin"))  # known nodes still change
    assert view.get("a").shadow_banned  # type: ignore[union-attr]


RELEASES: list[tuple[str, NodeState | None, NodeState, str | None]] = [
    ("admin ban", BASE, node(banned=True), "node banned"),
    ("policy ban", BASE, node(health="banned"), "node banned by policy"),
    ("offline", node(health="unstable"), node(health="offline"), "node offline"),
    ("offline when first seen (takeover)", None, node(health="offline"), "node offline"),
    ("still offline", node(health="offline"), node(health="offline"), None),
    (
        "banned while offline: nothing more to release",
        node(health="offline"),
        node(health="offline", banned=True),
        None,
    ),
    ("unstable keeps its jobs", BASE, node(health="unstable"), None),
    ("draining keeps its jobs", BASE, node(draining=True), None),
    ("shadow-ban keeps its jobs", BASE, node(shadow_banned=True), None),
]


@pytest.mark.parametrize(("before", "after", "expected"), [r[1:] for r in RELEASES], ids=[r[0] for r in RELEASES])
def test_which_changes_send_the_leases_back(before: NodeState | None, after: NodeState, expected: str | None) -> None:
    assert needs_release(before, after) == expected


def test_weight_follows_reputation_and_halves_for_unstable_nodes() -> None:
    decider = NodeDecider(consent_catalogue())
    good = decider.evolve(
        BASE, NodeWorkRecorded(window_start=NOW, window_end=NOW, completed=200, agreed=50, total_job_ms=200_000)
    )
    bad = decider.evolve(BASE, NodeWorkRecorded(window_start=NOW, window_end=NOW, completed=1, failed=60))
    assert scheduling_weight(good) == 1.0  # capped: no node gets more than twice the fair share
    assert 0.5 <= scheduling_weight(bad) < scheduling_weight(BASE) <= 1.0
    unstable = msgspec.structs.replace(good, health="unstable")
    assert scheduling_weight(unstable) == 0.5


def governance_with(*states: NodeState) -> NodeGovernance:
    view = NodeView(NodeDecider(consent_catalogue()), max_nodes=100)
    for state in states:
        view._nodes[state.node_id] = state  # a state as a fold would leave it
    return NodeGovernance(view, consent_version=VERSION, scope_of=SCOPES)


def test_admission_refuses_withholds_caps_by_quota_and_carries_budgets() -> None:
    limited = node(node_id="q", daily_quota=12, budgets=NodeBudgetsSet(max_memory_mb=512, by="admin"))
    governance = governance_with(node(node_id="b", banned=True), node(node_id="d", draining=True), limited)
    ask = ClaimJobs(node_id="b", job_types=["crawl_page"], concurrency=4, slots=4)
    with pytest.raises(Forbidden):
        governance.admit(ask, NOW)
    drained = governance.admit(msgspec.structs.replace(ask, node_id="d"), NOW)
    assert drained.allowance == 0 and drained.eligibility.draining
    governance.claimed("q", 10, NOW)
    assert governance.admit(msgspec.structs.replace(ask, node_id="q"), NOW).allowance == 2  # the quota's rest
    assert governance.budget("q") == JobBudget(max_memory_mb=512)
    assert governance.budget("unknown") is None
    assert BASE.daily_quota == DAILY_QUOTA_MAX


def test_the_board_leaves_a_job_to_others_once_a_nodes_result_was_set_aside() -> None:
    board = ClaimBoard(max_live=10)
    for order, job_id in enumerate(("a", "b"), start=1):
        state = JobState(job_id=job_id, status="queued", job_type="echo")
        if job_id == "a":
            state = msgspec.structs.replace(state, set_aside=(("shadow", "c" * 64),))
        board.add(job_id, state, priority=0, order=order, correlation_id="c", payload=msgspec.Raw(b"{}"))
    assert [card.job_id for card in board.pick("shadow", ["echo"], 4, 4, NOW)] == ["b"]
    assert [card.job_id for card in board.pick("other", ["echo"], 4, 4, NOW)] == ["a"]
