"""The orchestrator log's node steps (CC-22): node events → orchestrator_log rows, job_id NULL.

A node's life (registered, consent recorded, sessions started and ended, opted out) beside the
steps of the jobs it ran, so `?node_id=` shows both interleaved. A second projection into the
table of orchestrator_projection, on its own durable consumer of CCN_NODES: the two streams have
their own sequences and checkpoints, and the rows of one never touch the other's. Rebuild both
together (`orchestrator_log_projections`): a rebuild empties the whole table.

`details` is built field by field, as for jobs: token hashes, ip hashes, user ids and
idempotency fingerprints never reach the log.
"""

from __future__ import annotations

from ccn_analytics.crawl_projection import FetchLogProjection
from ccn_analytics.dead_letter_projection import DeadLetterLogProjection
from ccn_analytics.orchestrator_projection import (
    LogRow,
    OrchestratorLogProjection,
    Step,
    StreamLogProjection,
    actor_replica,
    data_decoders,
    decode_known,
    present,
    step_rows,
)
from ccn_core.eventstore import StoredEvent
from ccn_core.projection import Projection
from ccn_core.topology import ORCHESTRATOR_NODE_LOG, ConsumerSpec
from ccn_proto.envelope import Envelope
from ccn_proto.nodes import (
    NODE_EVENT_TYPES,
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


def node_steps(node_id: str, event: NodeEvent) -> list[Step]:
    """The lifecycle step one event of node `node_id` (its aggregate id) records."""
    match event:
        case NodeRegistered():
            facts = present(
                consent_flag=event.consent_flag,
                session_id=event.session_id,
                user_agent=event.user_agent,
                node_version=event.node_version,
            )
            return [Step(event="node_registered", node_id=node_id, details=facts)]
        case ConsentRecorded():
            facts = present(
                consent_version=event.consent_version, previous_version=event.previous_version, scopes=event.scopes
            )
            return [Step(event="node_consent_recorded", node_id=node_id, details=facts)]
        case SessionStarted():
            facts = present(session_id=event.session_id, user_agent=event.user_agent)
            return [Step(event="node_session_started", node_id=node_id, details=facts)]
        case SessionEnded():
            facts = present(session_id=event.session_id, reason=event.reason)
            return [Step(event="node_session_ended", node_id=node_id, details=facts)]
        case NodeOptedOut():
            # its sessions end with it, in this one event
            facts = present(reason=event.reason, ended_session_ids=event.ended_session_ids)
            return [Step(event="node_opted_out", node_id=node_id, details=facts)]
        case NodeBanned() | NodeShadowBanned() | NodeDrainRequested() | NodeUnbanned():
            return [
                Step(
                    event=_ADMIN_STEPS[type(event)], node_id=node_id, details=present(reason=event.reason, by=event.by)
                )
            ]
        case NodeBudgetsSet():
            facts = present(
                max_bandwidth_per_min=event.max_bandwidth_per_min,
                max_cpu_time_per_job_s=event.max_cpu_time_per_job_s,
                max_memory_mb=event.max_memory_mb,
                by=event.by,
            )
            return [Step(event="node_budgets_set", node_id=node_id, details=facts)]
        case NodeRateLimited():
            facts = present(refused=event.refused, window_start=event.window_start, window_end=event.window_end)
            return [Step(event="node_rate_limited", node_id=node_id, details=facts)]
        case NodeHealthChanged():
            facts = present(health=event.health, previous=event.previous, reasons=event.reasons)
            return [Step(event="node_health_changed", node_id=node_id, details=facts)]
        case NodeBackoffChanged():
            facts = present(stage=event.stage, previous=event.previous, until=event.until, cause=event.cause)
            return [Step(event="node_backoff_changed", node_id=node_id, details=facts)]
        case NodeWorkRecorded():
            # a summary of job steps the log already has, one row each: the node's record, not a step
            return []
    raise TypeError(f"not a node event: {event!r}")


_ADMIN_STEPS: dict[type[NodeEvent], str] = {
    NodeBanned: "node_banned",
    NodeShadowBanned: "node_shadow_banned",
    NodeDrainRequested: "node_drain_requested",
    NodeUnbanned: "node_unbanned",
}


def node_log_rows(envelope: Envelope[NodeEvent], stream: str, seq: int) -> list[LogRow]:
    steps = node_steps(envelope.aggregate_id, envelope.data)
    return step_rows(envelope, stream, seq, steps, job_id=None, replica=actor_replica(envelope))


_NODE_DECODERS = data_decoders(NODE_EVENT_TYPES)


def decode_node_event(data: bytes) -> Envelope[NodeEvent] | None:
    """The node event, or None when its type is one this log does not know yet."""
    return decode_known(data, _NODE_DECODERS)


class NodeLogProjection(StreamLogProjection):
    """The node steps: CCN_NODES into orchestrator_log."""

    def __init__(self, spec: ConsumerSpec = ORCHESTRATOR_NODE_LOG) -> None:
        super().__init__(spec)

    def event_rows(self, stored: StoredEvent) -> list[LogRow] | None:
        envelope = decode_node_event(stored.data)
        return None if envelope is None else node_log_rows(envelope, self.spec.stream, stored.seq)


def orchestrator_log_projections() -> tuple[Projection, ...]:
    """Every projection into orchestrator_log: run them all, and rebuild them together."""
    return (OrchestratorLogProjection(), NodeLogProjection(), DeadLetterLogProjection(), FetchLogProjection())
