"""Node governance as pure rules: the policies' thresholds on their exact boundaries, and the
node decider's governance commands as a table of (given events, command) → events or error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ccn_core.decider import fold
from ccn_core.domain import governance
from ccn_core.domain.governance import Backoff, HealthInputs, Record
from ccn_core.domain.node import (
    AdminAction,
    ObserveLiveness,
    RecordRateLimited,
    RecordWork,
    SetBudgets,
    StartSession,
    authenticate_session,
)
from ccn_core.errors import CcnError, Forbidden, NotFound
from ccn_proto.nodes import (
    NodeBackoffChanged,
    NodeBanned,
    NodeBudgetsSet,
    NodeDrainRequested,
    NodeEvent,
    NodeHealthChanged,
    NodeRateLimited,
    NodeShadowBanned,
    NodeUnbanned,
    NodeWorkRecorded,
)
from tests.unit.test_node_decider import API_SECRET, NODE, REGISTERED, SESSION_SECRET, decider

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def window(*, completed: int = 0, failed: int = 0, abandoned: int = 0, **more: int) -> NodeWorkRecorded:
    return NodeWorkRecorded(
        window_start=NOW - timedelta(seconds=10),
        window_end=NOW,
        completed=completed,
        failed=failed,
        abandoned=abandoned,
        **more,
    )


def inputs(**given: float) -> HealthInputs:
    values: dict[str, float] = {
        "silent_s": 0.0,
        "outcomes": 0,
        "success_rate": None,  # type: ignore[dict-item]
        "rate_limited_windows": 0,
        "violations": 0,
        "misreports": 0,
    }
    values.update(given)
    return HealthInputs(**values)  # type: ignore[arg-type]


# -- health ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "health"),
    [
        ({}, "healthy"),
        ({"silent_s": governance.UNSTABLE_SILENCE_S - 0.001}, "healthy"),
        ({"silent_s": governance.UNSTABLE_SILENCE_S}, "unstable"),
        ({"silent_s": governance.OFFLINE_SILENCE_S - 0.001}, "unstable"),
        ({"silent_s": governance.OFFLINE_SILENCE_S}, "offline"),
        ({"outcomes": 5, "success_rate": 0.8}, "healthy"),
        ({"outcomes": 5, "success_rate": 0.79}, "unstable"),
        ({"outcomes": 4, "success_rate": 0.0}, "healthy"),  # too few outcomes to judge
        ({"rate_limited_windows": 1}, "healthy"),
        ({"rate_limited_windows": 2}, "unstable"),
        ({"violations": 2}, "healthy"),
        ({"violations": 3}, "unstable"),
        ({"violations": 50}, "unstable"),  # honest reports of jobs killed at their budget
        ({"violations": 9, "misreports": 9}, "unstable"),
        ({"violations": 10, "misreports": 10}, "banned"),
        ({"violations": 10, "misreports": 10, "silent_s": 1000.0}, "banned"),  # the worst finding wins
    ],
)
def test_health_thresholds(given: dict[str, float], health: str) -> None:
    assert governance.assess_health(inputs(**given))[0] == health


def test_health_names_its_reasons() -> None:
    verdict, reasons = governance.assess_health(inputs(silent_s=30.0, outcomes=10, success_rate=0.5))
    assert verdict == "unstable"
    assert reasons == ["no telemetry for 30 s", "success rate 50% over 10 jobs"]


def test_only_recent_windows_count_for_health() -> None:
    old = NodeWorkRecorded(
        window_start=NOW - timedelta(hours=1, seconds=10), window_end=NOW - timedelta(hours=1), failed=9
    )
    recent = governance.remember_work(governance.remember_work(governance.RecentRecord(), old), window(completed=2))
    judged = governance.health_inputs(recent, 0.0, NOW)
    assert (judged.outcomes, judged.success_rate) == (2, 1.0)


def test_the_recent_record_is_bounded() -> None:
    recent = governance.RecentRecord()
    for _ in range(governance.RECENT_WINDOWS_KEPT + 10):
        recent = governance.remember_work(recent, window(completed=1))
        recent = governance.remember_rate_limited(recent, NOW)
    assert len(recent.work) == len(recent.rate_limited_at) == governance.RECENT_WINDOWS_KEPT


# -- backoff --------------------------------------------------------------------------------


def test_backoff_climbs_a_stage_per_strike_and_stays_suspended() -> None:
    backoff = Backoff()
    stages = []
    for _ in range(6):
        backoff, _ = governance.escalate(backoff, "trouble", NOW)
        stages.append((backoff.stage, backoff.until))
    assert stages == [
        ("mild", NOW + timedelta(seconds=30)),
        ("moderate", NOW + timedelta(minutes=2)),
        ("severe", NOW + timedelta(minutes=10)),
        ("suspended", NOW + timedelta(hours=1)),
        ("suspended", NOW + timedelta(hours=1)),
        ("suspended", NOW + timedelta(hours=1)),
    ]


def test_backoff_decays_one_stage_only_after_its_time() -> None:
    moderate = Backoff(stage="moderate", until=NOW + timedelta(minutes=2))
    assert governance.decay(moderate, NOW) is None
    assert governance.decay(moderate, NOW + timedelta(minutes=2)) == Backoff(
        stage="mild", until=NOW + timedelta(minutes=2)
    )
    assert governance.decay(Backoff(stage="mild", until=NOW), NOW) == Backoff(stage="none", until=None)
    assert governance.decay(Backoff(), NOW) is None


@pytest.mark.parametrize(
    ("work", "strike"),
    [
        (window(completed=10, failed=2), None),  # two failures is not a pattern
        (window(completed=3, failed=3), "3 of 6 jobs failed"),  # exactly half
        (window(completed=4, failed=3), None),  # under half
        (window(abandoned=2, budget_exceeded=1), "3 of 3 jobs failed"),
    ],
)
def test_a_work_window_is_a_strike_when_most_of_it_failed(work: NodeWorkRecorded, strike: str | None) -> None:
    assert governance.work_strike(work) == strike


def test_being_backed_off_ends_at_until() -> None:
    backoff = Backoff(stage="mild", until=NOW)
    assert governance.is_backed_off(backoff, NOW - timedelta(microseconds=1))
    assert not governance.is_backed_off(backoff, NOW)


# -- quota ----------------------------------------------------------------------------------


def test_quota_shrinks_on_failures_and_doubles_back_on_clean_work() -> None:
    quota = governance.DAILY_QUOTA_MAX
    quota = governance.next_quota(quota, window(completed=10, failed=2))
    assert quota == governance.DAILY_QUOTA_MAX - 2
    quota = governance.next_quota(quota, window(failed=4))  # a strike: less one each, then halved
    assert quota == (governance.DAILY_QUOTA_MAX - 6) // 2
    for _ in range(20):
        quota = governance.next_quota(quota, window(failed=50))
    assert quota == governance.DAILY_QUOTA_MIN
    quota = governance.next_quota(quota, window(completed=1))
    assert quota == 2 * governance.DAILY_QUOTA_MIN
    assert governance.next_quota(governance.DAILY_QUOTA_MAX, window(completed=1)) == governance.DAILY_QUOTA_MAX
    assert governance.next_quota(77, window()) == 77  # an empty window says nothing


# -- reputation -----------------------------------------------------------------------------


def test_a_new_node_starts_mid_way() -> None:
    assert governance.reputation(Record()).score == 62.5


def test_reputation_rewards_a_good_record_and_punishes_a_bad_one() -> None:
    good = Record(completed=1000, agreed=200, total_job_ms=1000 * 2000)
    bad = Record(completed=10, failed=90, disagreed=20, health_changes=30, rate_limited=500, budget_violations=10)
    assert governance.reputation(good).score > 90
    assert governance.reputation(bad).score < 30
    assert 0 <= governance.reputation(bad).score <= governance.reputation(Record()).score <= 100


def test_reputation_is_the_sum_of_its_components_and_a_function_of_the_record() -> None:
    record = Record(completed=40, failed=3, abandoned=1, agreed=5, disagreed=1, total_job_ms=40 * 30_000)
    scored = governance.reputation(record)
    assert scored == governance.reputation(Record(**{f: getattr(record, f) for f in record.__struct_fields__}))
    assert scored.score == pytest.approx(sum(scored.components.values()), abs=0.01)
    assert set(scored.components) == set(governance.REPUTATION_WEIGHTS)


def test_the_same_history_gives_the_same_reputation() -> None:
    history: list[NodeEvent] = [
        REGISTERED,
        window(completed=8, failed=1, total_job_ms=8 * 500),
        NodeRateLimited(window_start=NOW, window_end=NOW, refused={"claims": 40}),
        NodeHealthChanged(health="unstable", previous="healthy", reasons=["x"]),
        window(completed=3, agreed=2, disagreed=1),
    ]
    first, second = fold(decider, NODE, history), fold(decider, NODE, list(history))
    assert governance.reputation(first.record) == governance.reputation(second.record)
    assert first.record == Record(
        completed=11, failed=1, agreed=2, disagreed=1, total_job_ms=4000, health_changes=1, rate_limited=40
    )


# -- the decider's governance commands ------------------------------------------------------

BAN = AdminAction(action="ban", reason="scraping", by="alice")
BANNED = NodeBanned(reason="scraping", by="alice")
UNBANNED = NodeUnbanned(reason="appeal", by="bob")
SHADOW = NodeShadowBanned(reason="odd results", by="alice")
DRAIN = NodeDrainRequested(reason="maintenance", by="alice")
BUDGETS = NodeBudgetsSet(max_memory_mb=512, max_cpu_time_per_job_s=30.0, by="alice")

CASES: list[tuple[str, list[NodeEvent], object, list[NodeEvent] | type[CcnError]]] = [
    ("ban a node", [REGISTERED], BAN, [BANNED]),
    ("banning a banned node records nothing", [REGISTERED, BANNED], BAN, []),
    ("no node, nothing to ban", [], BAN, NotFound),
    ("unban lifts a ban", [REGISTERED, BANNED], AdminAction(action="unban", reason="appeal", by="bob"), [UNBANNED]),
    ("unban of an ordinary node records nothing", [REGISTERED], AdminAction(action="unban", reason="x", by="b"), []),
    (
        "shadow-ban",
        [REGISTERED],
        AdminAction(action="shadow_ban", reason="odd results", by="alice"),
        [SHADOW],
    ),
    ("drain", [REGISTERED], AdminAction(action="drain", reason="maintenance", by="alice"), [DRAIN]),
    ("draining twice records nothing", [REGISTERED, DRAIN], AdminAction(action="drain", reason="m", by="a"), []),
    ("unban lifts a drain", [REGISTERED, DRAIN], AdminAction(action="unban", reason="appeal", by="bob"), [UNBANNED]),
    ("set budgets", [REGISTERED], SetBudgets(budgets=BUDGETS), [BUDGETS]),
    (
        "the same budgets again record nothing, whoever sets them",
        [REGISTERED, BUDGETS],
        SetBudgets(budgets=NodeBudgetsSet(max_memory_mb=512, max_cpu_time_per_job_s=30.0, by="bob")),
        [],
    ),
    ("a clean window is recorded alone", [REGISTERED], RecordWork(work=window(completed=5)), [window(completed=5)]),
    (
        "a window of failures is a strike: backoff and unstable",
        [REGISTERED],
        RecordWork(work=window(completed=2, failed=4)),
        [
            window(completed=2, failed=4),
            NodeBackoffChanged(
                stage="mild", previous="none", until=NOW + timedelta(seconds=30), cause="4 of 6 jobs failed"
            ),
            NodeHealthChanged(health="unstable", previous="healthy", reasons=["success rate 33% over 6 jobs"]),
        ],
    ),
    (
        "a clean window after the backoff ended decays it",
        [REGISTERED, NodeBackoffChanged(stage="mild", previous="none", until=NOW, cause="x")],
        RecordWork(work=window(completed=5)),
        [
            window(completed=5),
            NodeBackoffChanged(stage="none", previous="mild", until=None, cause="a clean window of work"),
        ],
    ),
    (
        "rate-limit refusals are recorded and back the node off",
        [REGISTERED],
        RecordRateLimited(refused=NodeRateLimited(window_start=NOW, window_end=NOW, refused={"ready": 90})),
        [
            NodeRateLimited(window_start=NOW, window_end=NOW, refused={"ready": 90}),
            NodeBackoffChanged(
                stage="mild",
                previous="none",
                until=NOW + timedelta(seconds=30),
                cause="90 requests over its rate limits",
            ),
        ],
    ),
    (
        "silence goes offline",
        [REGISTERED],
        ObserveLiveness(silent_s=60.0),
        [NodeHealthChanged(health="offline", previous="healthy", reasons=["no telemetry for 60 s"], silent_s=60.0)],
    ),
    (
        "a node heard again is healthy",
        [REGISTERED, NodeHealthChanged(health="offline", previous="healthy", reasons=[], silent_s=60.0)],
        ObserveLiveness(silent_s=1.0),
        [NodeHealthChanged(health="healthy", previous="offline", reasons=[], silent_s=1.0)],
    ),
    (
        "an offline node that records no completions stays offline",
        [REGISTERED, NodeHealthChanged(health="offline", previous="healthy", reasons=[], silent_s=60.0)],
        RecordWork(work=window(abandoned=1)),
        [window(abandoned=1)],
    ),
    ("the same liveness records nothing", [REGISTERED], ObserveLiveness(silent_s=3.0), []),
    (
        "a banned node cannot start a session",
        [REGISTERED, BANNED],
        StartSession(api_secret=API_SECRET, session_id="s9", session_token_hash="h"),
        Forbidden,
    ),
]


@pytest.mark.parametrize(("given", "command", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_governance_rules(given: list[NodeEvent], command: object, expected: list[NodeEvent] | type[CcnError]) -> None:
    state = fold(decider, NODE, given)
    if isinstance(expected, list):
        assert decider.decide(command, state, NOW) == expected  # type: ignore[arg-type]
    else:
        with pytest.raises(expected):
            decider.decide(command, state, NOW)  # type: ignore[arg-type]


def test_a_banned_node_is_refused_on_every_request_and_welcome_after_unban() -> None:
    banned = fold(decider, NODE, [REGISTERED, BANNED])
    with pytest.raises(Forbidden, match="banned: scraping"):
        authenticate_session(banned, "s1", SESSION_SECRET)
    authenticate_session(fold(decider, NODE, [REGISTERED, BANNED, UNBANNED]), "s1", SESSION_SECRET)


def test_too_many_misreported_budgets_ban_by_policy_until_an_admin_unbans() -> None:
    events = decider.decide(RecordWork(work=window(budget_misreported=10)), fold(decider, NODE, [REGISTERED]), NOW)
    health = [e for e in events if isinstance(e, NodeHealthChanged)]
    assert [h.health for h in health] == ["banned"]
    state = fold(decider, NODE, [REGISTERED, *events])
    with pytest.raises(Forbidden, match="banned by policy"):
        authenticate_session(state, "s1", SESSION_SECRET)
    lifted = decider.decide(AdminAction(action="unban", reason="fixed its budgets", by="bob"), state, NOW)
    after = fold(decider, NODE, [REGISTERED, *events, *lifted])
    assert after.health == "healthy" and after.refusal() is None
    assert after.record.budget_violations == 10  # forgiven, not forgotten


def test_governance_state_follows_the_events() -> None:
    state = fold(decider, NODE, [REGISTERED, SHADOW, DRAIN, BUDGETS])
    assert (state.shadow_banned, state.draining, state.budgets) == (True, True, BUDGETS)
    assert state.refusal() is None  # shadow-banned and draining nodes are still served
    lifted = fold(decider, NODE, [REGISTERED, SHADOW, DRAIN, BUDGETS, UNBANNED])
    assert (lifted.shadow_banned, lifted.draining, lifted.budgets) == (False, False, BUDGETS)
