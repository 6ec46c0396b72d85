"""Projections the registry owns: node events → community_nodes / community_node_sessions, and
heartbeats → last_seen_at."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.projection import Statement, execute_per_key
from ccn_core.topology import NODE_READ_MODEL, SESSION_LAST_SEEN
from ccn_proto.envelope import Envelope
from ccn_proto.nodes import (
    ConsentRecorded,
    HeartbeatSample,
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

_decode_node_event = msgspec.json.Decoder(Envelope[NodeEvent]).decode
_decode_heartbeat = msgspec.json.Decoder(Envelope[HeartbeatSample]).decode

_INSERT_NODE = """
INSERT INTO community_nodes (node_public_id, api_token_hash, consent_flag, user_id, user_agent, node_version,
                             created_at, updated_at, last_seen_at, correlation_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7,
        GREATEST($7, (SELECT max(last_seen_at) FROM community_node_liveness WHERE node_id = $1)), $8)"""
_INSERT_SESSION = """
INSERT INTO community_node_sessions (session_id, node_id, session_token_hash, created_at, last_seen_at,
                                     user_agent, ip_hash)
VALUES ($1, $2, $3, $4, GREATEST($4, (SELECT last_seen_at FROM community_node_liveness WHERE session_id = $1)),
        $5, $6)"""
_CONSENT = """
UPDATE community_nodes SET consent_version = $2, consent_hash = $3, consent_recorded_at = $4, updated_at = $4,
                           consent_scopes = $5
WHERE node_public_id = $1"""
_BANNED = "UPDATE community_nodes SET is_banned = true, ban_reason = $3, updated_at = $2 WHERE node_public_id = $1"
_SHADOW_BANNED = "UPDATE community_nodes SET is_shadow_banned = true, updated_at = $2 WHERE node_public_id = $1"
_DRAINING = "UPDATE community_nodes SET is_draining = true, updated_at = $2 WHERE node_public_id = $1"
# an unban lifts a policy ban with the admin's (as the node decider does)
_UNBANNED = """
UPDATE community_nodes SET is_banned = false, ban_reason = NULL, is_shadow_banned = false, is_draining = false,
                           health = CASE WHEN health = 'banned' THEN 'healthy' ELSE health END, updated_at = $2
WHERE node_public_id = $1"""
_BUDGETS = "UPDATE community_nodes SET budgets = $3::jsonb, updated_at = $2 WHERE node_public_id = $1"
_HEALTH = "UPDATE community_nodes SET health = $3, updated_at = $2 WHERE node_public_id = $1"
_BACKOFF = (
    "UPDATE community_nodes SET backoff_stage = $3, backoff_until = $4, updated_at = $2 WHERE node_public_id = $1"
)
_WORK = """
UPDATE community_nodes SET jobs_completed = jobs_completed + $3, jobs_failed = jobs_failed + $4, updated_at = $2
WHERE node_public_id = $1"""
_REFUSED = """
UPDATE community_nodes SET requests_refused = requests_refused + $3, updated_at = $2 WHERE node_public_id = $1"""
_OPT_OUT = """
UPDATE community_nodes SET is_active = false, opted_out_at = $2, opt_out_reason = $3, updated_at = $2
WHERE node_public_id = $1"""
_END_ALL_SESSIONS = """
UPDATE community_node_sessions SET is_active = false, ended_at = $2, end_reason = 'node opted out'
WHERE node_id = $1 AND is_active"""
_END_SESSION = """
UPDATE community_node_sessions SET is_active = false, ended_at = $2, end_reason = $3
WHERE session_id = $1 AND is_active"""
_TOUCH_NODE = "UPDATE community_nodes SET updated_at = $2 WHERE node_public_id = $1"


def node_statements(envelope: Envelope[NodeEvent]) -> list[Statement]:
    at = envelope.occurred_at
    node = envelope.aggregate_id
    match envelope.data:
        case NodeRegistered() as e:
            return [
                (
                    _INSERT_NODE,
                    (
                        node,
                        e.api_token_hash,
                        e.consent_flag,
                        e.user_id,
                        e.user_agent,
                        e.node_version,
                        at,
                        envelope.correlation_id,
                    ),
                ),
                (_INSERT_SESSION, (e.session_id, node, e.session_token_hash, at, e.user_agent, e.ip_hash)),
            ]
        case ConsentRecorded() as e:
            return [(_CONSENT, (node, e.consent_version, e.consent_hash, at, e.scopes))]
        case NodeBanned() as e:
            return [(_BANNED, (node, at, e.reason))]
        case NodeShadowBanned():
            return [(_SHADOW_BANNED, (node, at))]
        case NodeDrainRequested():
            return [(_DRAINING, (node, at))]
        case NodeUnbanned():
            return [(_UNBANNED, (node, at))]
        case NodeBudgetsSet() as e:
            limits = {
                "max_bandwidth_per_min": e.max_bandwidth_per_min,
                "max_cpu_time_per_job_s": e.max_cpu_time_per_job_s,
                "max_memory_mb": e.max_memory_mb,
            }
            return [(_BUDGETS, (node, at, msgspec.json.encode(limits).decode()))]
        case NodeHealthChanged() as e:
            return [(_HEALTH, (node, at, e.health))]
        case NodeBackoffChanged() as e:
            return [(_BACKOFF, (node, at, e.stage, e.until))]
        case NodeWorkRecorded() as e:
            failed = e.failed + e.abandoned + e.budget_exceeded
            return [(_WORK, (node, at, e.completed, failed))]
        case NodeRateLimited() as e:
            return [(_REFUSED, (node, at, sum(e.refused.values())))]
        case NodeOptedOut() as e:
            return [(_OPT_OUT, (node, at, e.reason)), (_END_ALL_SESSIONS, (node, at))]
        case SessionStarted() as e:
            return [
                (_INSERT_SESSION, (e.session_id, node, e.session_token_hash, at, e.user_agent, e.ip_hash)),
                (_TOUCH_NODE, (node, at)),
            ]
        case SessionEnded() as e:
            return [(_END_SESSION, (e.session_id, at, e.reason)), (_TOUCH_NODE, (node, at))]
    raise TypeError(f"unhandled node event {envelope.type}")


# Both projections below write a session's last_seen_at: one inserts the session reading the
# liveness the other has recorded, the other updates the session if it exists. Run concurrently
# under READ COMMITTED, a heartbeat landing while its session is being inserted is lost; one
# transaction-scoped lock between them makes each see the other's committed work.
_SESSION_WRITERS_LOCK = 0x5345_5353_494F_4E53  # "SESSIONS"


async def _serialise_with_the_other_session_projection(conn: Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _SESSION_WRITERS_LOCK)


class NodeReadModel:
    spec = NODE_READ_MODEL
    tables = ("community_node_sessions", "community_nodes")

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        await _serialise_with_the_other_session_projection(conn)
        # every statement of a node event touches only that node's rows
        keyed: list[tuple[str, Statement]] = []
        for stored in events:
            envelope = _decode_node_event(stored.data)
            keyed.extend((envelope.aggregate_id, statement) for statement in node_statements(envelope))
        await execute_per_key(conn, keyed)


_UPSERT_LIVENESS = """
INSERT INTO community_node_liveness (session_id, node_id, last_seen_at) VALUES ($1, $2, $3)
ON CONFLICT (session_id) DO UPDATE SET last_seen_at = GREATEST(community_node_liveness.last_seen_at,
                                                               EXCLUDED.last_seen_at)"""
_SEEN_SESSION = """
UPDATE community_node_sessions SET last_seen_at = GREATEST(last_seen_at, $2) WHERE session_id = $1"""
_SEEN_NODE = """
UPDATE community_nodes SET last_seen_at = GREATEST(last_seen_at, $2) WHERE node_public_id = $1"""


class SessionLastSeen:
    spec = SESSION_LAST_SEEN
    tables = ("community_node_liveness",)

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        await _serialise_with_the_other_session_projection(conn)
        # a batch holds many beats per session: write each session's latest once
        latest: dict[str, tuple[str, datetime]] = {}
        for stored in events:
            sample = _decode_heartbeat(stored.data).data
            seen = latest.get(sample.session_id)
            if seen is None or sample.seen_at > seen[1]:
                latest[sample.session_id] = (sample.node_id, sample.seen_at)
        nodes: dict[str, datetime] = {}
        for node_id, seen_at in latest.values():
            nodes[node_id] = max(seen_at, nodes.get(node_id, seen_at))
        await conn.executemany(_UPSERT_LIVENESS, [(s, n, at) for s, (n, at) in latest.items()])
        await conn.executemany(_SEEN_SESSION, [(s, at) for s, (_, at) in latest.items()])
        await conn.executemany(_SEEN_NODE, list(nodes.items()))
