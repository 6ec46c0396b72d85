"""The node aggregate's events, and the telemetry samples nodes send.

Events are facts, never edited: a new field is optional with a default, so old events decode.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ccn_proto.constraints import ShortText, Text, UserAgent


class NodeRegistered(msgspec.Struct, gc=False, tag="node.registered", frozen=True, kw_only=True):
    node_id: str
    api_token_hash: str
    session_id: str
    session_token_hash: str
    consent_flag: bool
    user_agent: UserAgent | None = None
    user_id: ShortText | None = None
    node_version: ShortText | None = None
    ip_hash: str | None = None
    # A retried registration is answered from the aggregate; the fingerprint tells a retry
    # (same body) from a different request reusing the key.
    idempotency_key_hash: str | None = None
    request_fingerprint: str | None = None


class ConsentRecorded(msgspec.Struct, gc=False, tag="node.consent_recorded", frozen=True, kw_only=True):
    consent_version: str
    consent_hash: str
    previous_version: str | None = None


class NodeOptedOut(msgspec.Struct, gc=False, tag="node.opted_out", frozen=True, kw_only=True):
    ended_session_ids: list[str]
    reason: Text | None = None


class SessionStarted(msgspec.Struct, gc=False, tag="node.session_started", frozen=True, kw_only=True):
    session_id: str
    session_token_hash: str
    user_agent: UserAgent | None = None
    ip_hash: str | None = None


class SessionEnded(msgspec.Struct, gc=False, tag="node.session_ended", frozen=True, kw_only=True):
    session_id: str
    reason: Text | None = None


NodeEvent = NodeRegistered | ConsentRecorded | NodeOptedOut | SessionStarted | SessionEnded
NODE_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    NodeRegistered,
    ConsentRecorded,
    NodeOptedOut,
    SessionStarted,
    SessionEnded,
)


class HeartbeatSample(msgspec.Struct, gc=False, tag="telemetry.heartbeat", frozen=True, kw_only=True):
    """A liveness sample: goes to CCN_TELEMETRY (age-limited), never to the node's history."""

    node_id: str
    session_id: str
    seen_at: datetime


TelemetrySample = HeartbeatSample
