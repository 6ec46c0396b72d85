"""The orchestrator log's mapping as a table: each job event and each node event → its lifecycle
steps, the replica that handled it, and details that never carry a payload, a result or a secret."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from ccn_analytics.orchestrator_api import lifecycle_event
from ccn_analytics.orchestrator_node_projection import (
    NodeLogProjection,
    decode_node_event,
    node_log_rows,
    node_steps,
    orchestrator_log_projections,
)
from ccn_analytics.orchestrator_projection import (
    LIFECYCLE_EVENTS,
    LogRow,
    OrchestratorLogProjection,
    Step,
    decode_job_event,
    lifecycle_steps,
    log_rows,
)
from ccn_core.errors import BadInput
from ccn_core.eventstore import StoredEvent
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import (
    JobAbandoned,
    JobCancelled,
    JobClaimed,
    JobCompleted,
    JobCreated,
    JobDead,
    JobEvent,
    JobFailed,
    JobReleased,
    JobResultRejected,
    JobResultSetAside,
    JobResultSubmitted,
    LeaseRenewed,
)
from ccn_proto.nodes import (
    ConsentRecorded,
    NodeBackoffChanged,
    NodeBanned,
    NodeBudgetsSet,
    NodeDrainRequested,
    NodeEvent,
    NodeHealthChanged,
    NodeOptedOut,
    NodeRateLimited,
    NodeRegistered,
    NodeShadowBanned,
    NodeUnbanned,
    NodeWorkRecorded,
    SessionEnded,
    SessionStarted,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RETRY = T0 + timedelta(seconds=4)
LEASE = T0 + timedelta(seconds=60)
NODE = "node-7"
CHECKSUM = "a" * 64

CREATED = JobCreated(
    job_type="extract_text",
    payload={"html": "<p>secret grant text</p>"},
    priority=1,
    max_retries=2,
    lease_s=60.0,
    batch_id="batch-1",
    dataset_version="v3",
    idempotency_key_hash="f" * 64,
    request_fingerprint="e" * 64,
)

STEPS: list[tuple[JobEvent, list[Step]]] = [
    (
        CREATED,
        [
            Step(
                event="job_created",
                details={
                    "job_type": "extract_text",
                    "priority": 1,
                    "max_retries": 2,
                    "lease_s": 60.0,
                    "batch_id": "batch-1",
                    "dataset_version": "v3",
                },
            )
        ],
    ),
    (
        JobClaimed(node_id=NODE, attempt=1, lease_until=LEASE, replica="scheduler-0"),
        [Step(event="job_claimed", node_id=NODE, attempt=1, details={"lease_until": LEASE})],
    ),
    (
        JobClaimed(node_id=NODE, attempt=2, lease_until=LEASE),
        [Step(event="job_reassigned", node_id=NODE, attempt=2, details={"lease_until": LEASE})],
    ),
    (LeaseRenewed(node_id=NODE, lease_until=LEASE), []),
    (
        JobResultSubmitted(
            node_id=NODE, attempt=1, job_type="extract_text", result={"text": "the whole result"}, checksum=CHECKSUM
        ),
        [Step(event="job_result_submitted", node_id=NODE, attempt=1, details={"checksum": CHECKSUM})],
    ),
    (
        JobResultRejected(node_id=NODE, attempt=1, checksum=CHECKSUM, reason="schema: no text", retry_at=LEASE),
        [
            Step(
                event="job_result_rejected",
                node_id=NODE,
                attempt=1,
                details={"reason": "schema: no text", "retry_at": LEASE},
            ),
            Step(event="job_retried", attempt=2, details={"retry_at": LEASE}),
        ],
    ),
    (
        JobCompleted(node_id=NODE, attempt=1, result={"text": "the whole result"}, checksum=CHECKSUM),
        [Step(event="job_completed", node_id=NODE, attempt=1, details={"checksum": CHECKSUM})],
    ),
    (
        JobCompleted(node_id=NODE, attempt=1, result={}, checksum=CHECKSUM, released_by="admin-1"),
        [
            Step(
                event="job_completed", node_id=NODE, attempt=1, details={"checksum": CHECKSUM, "released_by": "admin-1"}
            )
        ],
    ),
    (
        JobReleased(node_id=NODE, attempt=1, reason="the node left before the offer reached it"),
        [
            Step(
                event="job_released",
                node_id=NODE,
                attempt=1,
                details={"reason": "the node left before the offer reached it"},
            )
        ],
    ),
    (
        JobResultSetAside(node_id=NODE, attempt=2, checksum="c" * 64, reason="the node is shadow-banned"),
        [
            Step(
                event="job_result_set_aside",
                node_id=NODE,
                attempt=2,
                details={"reason": "the node is shadow-banned", "checksum": "c" * 64},
            )
        ],
    ),
    (
        JobFailed(node_id=NODE, attempt=1, reason="over its memory budget", retry_at=None, kind="budget_exceeded"),
        [
            Step(
                event="job_failed",
                node_id=NODE,
                attempt=1,
                details={"reason": "over its memory budget", "kind": "budget_exceeded"},
            )
        ],
    ),
    (
        JobFailed(node_id=NODE, attempt=1, reason="parser crashed", retry_at=RETRY),
        [
            Step(event="job_failed", node_id=NODE, attempt=1, details={"reason": "parser crashed", "retry_at": RETRY}),
            Step(event="job_retried", attempt=2, details={"retry_at": RETRY}),
        ],
    ),
    (
        JobFailed(node_id=NODE, attempt=3, reason="parser crashed", retry_at=None),
        [Step(event="job_failed", node_id=NODE, attempt=3, details={"reason": "parser crashed"})],
    ),
    (
        JobAbandoned(node_id=NODE, attempt=1, reason="lease expired", retry_at=RETRY),
        [
            Step(
                event="job_abandoned", node_id=NODE, attempt=1, details={"reason": "lease expired", "retry_at": RETRY}
            ),
            Step(event="job_retried", attempt=2, details={"retry_at": RETRY}),
        ],
    ),
    (
        JobAbandoned(node_id=NODE, attempt=3, reason="node opted out", retry_at=None),
        [Step(event="job_abandoned", node_id=NODE, attempt=3, details={"reason": "node opted out"})],
    ),
    (
        JobDead(attempts=3, reason="lease expired"),
        [Step(event="job_dead", attempt=3, details={"reason": "lease expired"})],
    ),
    (JobCancelled(reason="operator"), [Step(event="job_cancelled", details={"reason": "operator"})]),
    (JobCancelled(), [Step(event="job_cancelled")]),
]


@pytest.mark.parametrize(
    ("event", "expected"), STEPS, ids=lambda v: type(v).__name__ if isinstance(v, msgspec.Struct) else ""
)
def test_each_job_event_records_its_lifecycle_steps(event: JobEvent, expected: list[Step]) -> None:
    assert lifecycle_steps(event) == expected


REGISTERED = NodeRegistered(
    node_id=NODE,
    api_token_hash="h" * 64,
    session_id="s-1",
    session_token_hash="t" * 64,
    consent_flag=True,
    user_agent="ccn-node/1.0",
    user_id="volunteer@example.org",
    node_version="1.0.0",
    ip_hash="i" * 64,
    idempotency_key_hash="f" * 64,
    request_fingerprint="e" * 64,
)

NODE_STEPS: list[tuple[NodeEvent, list[Step]]] = [
    (
        NodeBanned(reason="scraping", by="ops"),
        [Step(event="node_banned", node_id=NODE, details={"reason": "scraping", "by": "ops"})],
    ),
    (
        NodeShadowBanned(reason="odd", by="ops"),
        [Step(event="node_shadow_banned", node_id=NODE, details={"reason": "odd", "by": "ops"})],
    ),
    (
        NodeDrainRequested(reason="m", by="ops"),
        [Step(event="node_drain_requested", node_id=NODE, details={"reason": "m", "by": "ops"})],
    ),
    (
        NodeUnbanned(reason="appeal", by="ops"),
        [Step(event="node_unbanned", node_id=NODE, details={"reason": "appeal", "by": "ops"})],
    ),
    (
        NodeBudgetsSet(max_memory_mb=256, by="ops"),
        [Step(event="node_budgets_set", node_id=NODE, details={"max_memory_mb": 256, "by": "ops"})],
    ),
    (
        NodeRateLimited(window_start=T0, window_end=T0, refused={"ready": 9}),
        [
            Step(
                event="node_rate_limited",
                node_id=NODE,
                details={"refused": {"ready": 9}, "window_start": T0, "window_end": T0},
            )
        ],
    ),
    (
        NodeHealthChanged(health="offline", previous="healthy", reasons=["no telemetry for 50 s"], silent_s=50.0),
        [
            Step(
                event="node_health_changed",
                node_id=NODE,
                details={"health": "offline", "previous": "healthy", "reasons": ["no telemetry for 50 s"]},
            )
        ],
    ),
    (
        NodeBackoffChanged(stage="mild", previous="none", until=T0, cause="3 of 3 jobs failed"),
        [
            Step(
                event="node_backoff_changed",
                node_id=NODE,
                details={"stage": "mild", "previous": "none", "until": T0, "cause": "3 of 3 jobs failed"},
            )
        ],
    ),
    (NodeWorkRecorded(window_start=T0, window_end=T0, completed=3), []),
    (
        REGISTERED,
        [
            Step(
                event="node_registered",
                node_id=NODE,
                details={
                    "consent_flag": True,
                    "session_id": "s-1",
                    "user_agent": "ccn-node/1.0",
                    "node_version": "1.0.0",
                },
            )
        ],
    ),
    (
        ConsentRecorded(consent_version="2026-11-01", consent_hash="c" * 64, previous_version="2026-01-01"),
        [
            Step(
                event="node_consent_recorded",
                node_id=NODE,
                details={"consent_version": "2026-11-01", "previous_version": "2026-01-01"},
            )
        ],
    ),
    (
        SessionStarted(session_id="s-2", session_token_hash="t" * 64, ip_hash="i" * 64),
        [Step(event="node_session_started", node_id=NODE, details={"session_id": "s-2"})],
    ),
    (
        SessionEnded(session_id="s-2", reason="bye"),
        [Step(event="node_session_ended", node_id=NODE, details={"session_id": "s-2", "reason": "bye"})],
    ),
    (
        NodeOptedOut(ended_session_ids=["s-1"], reason="moving house"),
        [
            Step(
                event="node_opted_out",
                node_id=NODE,
                details={"reason": "moving house", "ended_session_ids": ["s-1"]},
            )
        ],
    ),
]


@pytest.mark.parametrize(
    ("event", "expected"), NODE_STEPS, ids=lambda v: type(v).__name__ if isinstance(v, msgspec.Struct) else ""
)
def test_each_node_event_records_its_lifecycle_step(event: NodeEvent, expected: list[Step]) -> None:
    assert node_steps(NODE, event) == expected


def test_every_lifecycle_event_is_recorded_by_some_job_node_or_dead_letter_event() -> None:
    recorded = {step.event for event, _ in STEPS for step in lifecycle_steps(event)}
    recorded |= {step.event for event, _ in NODE_STEPS for step in node_steps(NODE, event)}
    recorded |= {"event_dead_lettered", "dead_letter_replayed", "dead_letter_replay_failed"}  # test_dead_letter_pure
    recorded |= {"domain_breaker_changed", "domain_limit_alert"}  # test_crawl_stats
    assert recorded == set(LIFECYCLE_EVENTS)


def envelope(
    data: JobEvent | NodeEvent, actor: Actor, *, causation_id: str | None = None, aggregate_id: str = "job-42"
) -> Envelope[Any]:
    tag = type(data).__struct_config__.tag
    assert isinstance(tag, str)
    return Envelope(
        event_id="01938a6e-0000-7000-8000-000000000001",
        type=tag,
        schema_version=1,
        aggregate_id=aggregate_id,
        occurred_at=T0,
        correlation_id="corr-1",
        causation_id=causation_id,
        actor=actor,
        data=data,
    )


def test_rows_carry_the_envelope_and_one_row_per_step() -> None:
    completed = JobCompleted(node_id=NODE, attempt=2, result={"text": "x"}, checksum=CHECKSUM)
    rows = log_rows(envelope(completed, Actor(kind="node", id=NODE)), "CCN_JOBS", 17)
    common: dict[str, Any] = {
        "event_id": "01938a6e-0000-7000-8000-000000000001",
        "stream": "CCN_JOBS",
        "stream_seq": 17,
        "occurred_at": T0,
        "event_type": "job.completed",
        "job_id": "job-42",
        "node_id": NODE,
        "replica": None,  # the node asked; no replica is named by the event
        "actor_kind": "node",
        "actor_id": NODE,
        "correlation_id": "corr-1",
        "causation_id": None,
        "attempt": 2,
    }
    assert rows == [LogRow(step=0, event="job_completed", details={"checksum": CHECKSUM}, **common)]


@pytest.mark.parametrize(
    ("data", "actor", "replica"),
    [
        # a claim names the scheduler replica that decided it; the node is the actor
        (
            JobClaimed(node_id=NODE, attempt=1, lease_until=LEASE, replica="scheduler-2"),
            Actor("node", NODE),
            "scheduler-2",
        ),
        (JobClaimed(node_id=NODE, attempt=1, lease_until=LEASE), Actor("node", NODE), None),
        # creation, cancellation, expiry and release are decided by a scheduler replica as actor
        (CREATED, Actor("service", "scheduler-1"), "scheduler-1"),
        (
            JobAbandoned(node_id=NODE, attempt=1, reason="node opted out", retry_at=RETRY),
            Actor("service", "s-0"),
            "s-0",
        ),
        (JobCancelled(), Actor("admin", "admin-1"), None),
        # a node's request names the replica that decided it on its events
        (
            JobCompleted(node_id=NODE, attempt=1, result={}, checksum=CHECKSUM, replica="scheduler-1"),
            Actor("node", NODE),
            "scheduler-1",
        ),
        (
            JobFailed(node_id=NODE, attempt=1, reason="x", retry_at=RETRY, replica="scheduler-0"),
            Actor("node", NODE),
            "scheduler-0",
        ),
        (JobReleased(node_id=NODE, attempt=1, reason="x", replica="scheduler-2"), Actor("node", NODE), "scheduler-2"),
        (JobDead(attempts=2, reason="x", replica="scheduler-0"), Actor("node", NODE), "scheduler-0"),
        # such an event written before it named its replica: the node acted, no replica is known
        (JobFailed(node_id=NODE, attempt=1, reason="x", retry_at=RETRY), Actor("node", NODE), None),
        (JobCompleted(node_id=NODE, attempt=1, result={}, checksum=CHECKSUM), Actor("node", NODE), None),
    ],
)
def test_the_handling_replica_comes_from_the_event_or_a_service_actor(
    data: JobEvent, actor: Actor, replica: str | None
) -> None:
    rows = log_rows(envelope(data, actor, causation_id="cause-1"), "CCN_JOBS", 3)
    assert rows and {row.replica for row in rows} == {replica}
    assert {(row.actor_kind, row.actor_id, row.causation_id) for row in rows} == {(actor.kind, actor.id, "cause-1")}


def stored(data: JobEvent, seq: int = 5) -> StoredEvent:
    body = msgspec.json.encode(envelope(data, Actor(kind="service", id="scheduler-0")))
    tag = type(data).__struct_config__.tag
    return StoredEvent(seq=seq, subject=f"ccn.job.job-42.{str(tag).split('.')[1]}", data=body, headers={})


def test_details_never_hold_payloads_results_or_hashes() -> None:
    projection = OrchestratorLogProjection()
    rows = [
        row
        for data in (
            CREATED,
            JobCompleted(node_id=NODE, attempt=1, result={"text": "the whole result"}, checksum=CHECKSUM),
        )
        for row in projection.rows(stored(data))
    ]
    written = msgspec.json.encode([row.details for row in rows]).decode()
    for secret in ("secret grant text", "the whole result", "f" * 64, "e" * 64, "payload", 'result"'):
        assert secret not in written


def test_decoding_round_trips_and_skips_event_types_it_does_not_know() -> None:
    claimed = JobClaimed(node_id=NODE, attempt=1, lease_until=LEASE, replica="scheduler-0")
    decoded = decode_job_event(stored(claimed).data)
    assert decoded is not None and decoded.data == claimed and decoded.type == "job.claimed"
    newer = msgspec.json.encode(
        {**msgspec.to_builtins(envelope(JobCancelled(), Actor("service", "s"))), "type": "job.validated", "data": {}}
    )
    assert decode_job_event(newer) is None
    projection = OrchestratorLogProjection()
    assert projection.rows(StoredEvent(seq=9, subject="ccn.job.j.validated", data=newer, headers={})) == []
    assert [row.event for row in projection.rows(stored(claimed, seq=10))] == ["job_claimed"]


def test_the_api_takes_only_lifecycle_event_names() -> None:
    assert lifecycle_event("job_reassigned") == "job_reassigned"
    assert lifecycle_event("node_opted_out") == "node_opted_out"
    with pytest.raises(BadInput) as refused:
        lifecycle_event("job_lease_renewed")
    assert refused.value.field == "event"


def test_node_rows_name_the_node_and_no_job_and_carry_the_thread() -> None:
    opted_out = NodeOptedOut(ended_session_ids=["s-1"], reason="moving house")
    event = envelope(opted_out, Actor(kind="node", id=NODE), causation_id="cause-9", aggregate_id=NODE)
    assert node_log_rows(event, "CCN_NODES", 21) == [
        LogRow(
            event_id="01938a6e-0000-7000-8000-000000000001",
            step=0,
            stream="CCN_NODES",
            stream_seq=21,
            occurred_at=T0,
            event="node_opted_out",
            event_type="node.opted_out",
            job_id=None,
            node_id=NODE,
            replica=None,  # the node asked; a service actor would be named here
            actor_kind="node",
            actor_id=NODE,
            correlation_id="corr-1",
            causation_id="cause-9",
            attempt=None,
            details={"reason": "moving house", "ended_session_ids": ["s-1"]},
        )
    ]


def stored_node(data: NodeEvent, seq: int = 4) -> StoredEvent:
    body = msgspec.json.encode(envelope(data, Actor(kind="node", id=NODE), aggregate_id=NODE))
    tag = type(data).__struct_config__.tag
    return StoredEvent(seq=seq, subject=f"ccn.node.{NODE}.{str(tag).split('.')[1]}", data=body, headers={})


def test_node_details_never_hold_token_or_ip_hashes_user_ids_or_fingerprints() -> None:
    projection = NodeLogProjection()
    sessions = SessionStarted(session_id="s-2", session_token_hash="t" * 64, ip_hash="i" * 64)
    rows = [row for data in (REGISTERED, sessions) for row in projection.rows(stored_node(data))]
    assert [row.event for row in rows] == ["node_registered", "node_session_started"]
    written = msgspec.json.encode([row.details for row in rows]).decode()
    for secret in ("h" * 64, "t" * 64, "i" * 64, "f" * 64, "e" * 64, "volunteer@example.org", "hash"):
        assert secret not in written


def test_node_events_of_unknown_types_are_skipped() -> None:
    newer = msgspec.json.encode(
        {
            **msgspec.to_builtins(envelope(SessionEnded(session_id="s"), Actor("node", NODE), aggregate_id=NODE)),
            "type": "node.of_a_later_release",
            "data": {},
        }
    )
    assert decode_node_event(newer) is None
    projection = NodeLogProjection()
    assert (
        projection.rows(StoredEvent(seq=9, subject=f"ccn.node.{NODE}.of_a_later_release", data=newer, headers={})) == []
    )
    decoded = decode_node_event(stored_node(REGISTERED).data)
    assert decoded is not None and decoded.data == REGISTERED


def test_the_log_is_projected_from_the_job_node_dead_letter_and_fetch_streams_into_one_table() -> None:
    projections = orchestrator_log_projections()
    assert {(p.spec.stream, p.tables) for p in projections} == {
        ("CCN_JOBS", ("orchestrator_log",)),
        ("CCN_NODES", ("orchestrator_log",)),
        ("CCN_DEADLETTER", ("orchestrator_log",)),
        ("CCN_FETCH", ("orchestrator_log",)),
    }
    assert len({p.spec.durable for p in projections}) == 4
