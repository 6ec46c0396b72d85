"""The node aggregate's events, and the telemetry samples nodes send.

Events are facts, never edited: a new field is optional with a default, so old events decode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ccn_proto.constraints import ShortText, Text, UserAgent

# What a node may consent to run, by kind of work: every job type belongs to one scope
# (ccn_jobs.registry says which). A node that consents to none of a job's scope is never offered it.
ConsentScope = Literal["crawl", "documents", "nlp", "enrichment", "graph", "datasets"]
CONSENT_SCOPES: tuple[ConsentScope, ...] = ("crawl", "documents", "nlp", "enrichment", "graph", "datasets")
# healthy: offered work as usual; unstable: offered less; offline: offered none and its leases
# go back; banned: every request refused (the policy's verdict, apart from an admin's ban)
Health = Literal["healthy", "unstable", "offline", "banned"]
BackoffStage = Literal["none", "mild", "moderate", "severe", "suspended"]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]


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
    # the node's Ed25519 public key (ccn_proto.receipts): its results must carry its signature;
    # None (a node without one, or an event from before keys): its results go unsigned
    public_key: str | None = None


class ConsentRecorded(msgspec.Struct, gc=False, tag="node.consent_recorded", frozen=True, kw_only=True):
    consent_version: str
    consent_hash: str
    previous_version: str | None = None
    # the kinds of work consented to; None (events from before per-scope consent): every scope
    scopes: list[ConsentScope] | None = None


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


# -- governance: what admins decided, and what the policies concluded from the node's record --


class NodeBanned(msgspec.Struct, gc=False, tag="node.banned", frozen=True, kw_only=True):
    """Every request of the node is refused (403) until an unban; its leases go back."""

    reason: Text
    by: ShortText  # the admin token's name


class NodeShadowBanned(msgspec.Struct, gc=False, tag="node.shadow_banned", frozen=True, kw_only=True):
    """The node keeps getting work, but no result of its completes a job: each is set aside and
    the job offered to another node."""

    reason: Text
    by: ShortText


class NodeDrainRequested(msgspec.Struct, gc=False, tag="node.drain_requested", frozen=True, kw_only=True):
    """The node finishes what it holds, gets nothing new, and is then told bye."""

    reason: Text
    by: ShortText


class NodeUnbanned(msgspec.Struct, gc=False, tag="node.unbanned", frozen=True, kw_only=True):
    """Lifts a ban, a shadow-ban and a drain: the node is an ordinary node again. The record
    it earned (reputation, quota, backoff) stays."""

    reason: Text
    by: ShortText


class NodeBudgetsSet(msgspec.Struct, gc=False, tag="node.budgets_set", frozen=True, kw_only=True):
    """Resource budgets an admin set for the node; None: no limit of that kind. Offers carry
    them and the reference node enforces them on each job's child process."""

    max_bandwidth_per_min: Annotated[int, msgspec.Meta(ge=1, le=2**40)] | None = None  # bytes
    max_cpu_time_per_job_s: Annotated[float, msgspec.Meta(gt=0.0, le=86_400.0)] | None = None
    max_memory_mb: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] | None = None
    by: ShortText


class NodeWorkRecorded(msgspec.Struct, gc=False, tag="node.work_recorded", frozen=True, kw_only=True):
    """What the node's jobs came to over one window (the job stream's facts, summed per node):
    the node's record, from which its reputation, quota, backoff and health are folded. One
    event per node per window at most, so the record costs the node's history little."""

    window_start: datetime
    window_end: datetime
    completed: Count = 0
    failed: Count = 0
    abandoned: Count = 0  # leases that ran out
    budget_exceeded: Count = 0  # failures the node reported as over a resource budget
    budget_misreported: Count = 0  # results whose reported usage exceeds the budget they ran under
    agreed: Count = 0  # results whose checksum agreed with another node's for the same job
    disagreed: Count = 0
    # results outside the answer a consensus agreed on (consensus.node_disagreed, CCN_RESULTS)
    consensus_disagreed: Count = 0
    total_job_ms: Annotated[int, msgspec.Meta(ge=0, le=2**62)] = 0  # claim to result, summed over completed


class NodeRateLimited(msgspec.Struct, gc=False, tag="node.rate_limited", frozen=True, kw_only=True):
    """Requests refused by rate limits over one window, counted per limit: a flood makes one
    event per window, not one per request."""

    window_start: datetime
    window_end: datetime
    refused: dict[ShortText, Count]  # limit name → requests refused


class NodeHealthChanged(msgspec.Struct, gc=False, tag="node.health_changed", frozen=True, kw_only=True):
    health: Health
    previous: Health
    reasons: list[Text]
    silent_s: float = 0.0  # the node's telemetry silence the verdict saw


class NodeBackoffChanged(msgspec.Struct, gc=False, tag="node.backoff_changed", frozen=True, kw_only=True):
    """The node gets no work before `until` (None: no backoff). Escalates on repeated trouble,
    decays with good behaviour."""

    stage: BackoffStage
    previous: BackoffStage
    until: datetime | None
    cause: Text


NodeEvent = (
    NodeRegistered
    | ConsentRecorded
    | NodeOptedOut
    | SessionStarted
    | SessionEnded
    | NodeBanned
    | NodeShadowBanned
    | NodeDrainRequested
    | NodeUnbanned
    | NodeBudgetsSet
    | NodeWorkRecorded
    | NodeRateLimited
    | NodeHealthChanged
    | NodeBackoffChanged
)
NODE_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    NodeRegistered,
    ConsentRecorded,
    NodeOptedOut,
    SessionStarted,
    SessionEnded,
    NodeBanned,
    NodeShadowBanned,
    NodeDrainRequested,
    NodeUnbanned,
    NodeBudgetsSet,
    NodeWorkRecorded,
    NodeRateLimited,
    NodeHealthChanged,
    NodeBackoffChanged,
)
# the events that change what a node may be offered or whether it is served: the claim owner
# and the edge fold these (and only these) into their view of each node
GOVERNANCE_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    NodeRegistered,
    ConsentRecorded,
    NodeOptedOut,
    NodeBanned,
    NodeShadowBanned,
    NodeDrainRequested,
    NodeUnbanned,
    NodeBudgetsSet,
    NodeWorkRecorded,
    NodeHealthChanged,
    NodeBackoffChanged,
)


class NodeMetrics(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a node says of itself with a heartbeat. Untrusted: each is bounded, and a value out
    of range is refused with a typed error, never clamped."""

    cpu_load: Annotated[float, msgspec.Meta(ge=0.0, le=1024.0)] | None = None  # 1-minute load average
    memory_free: Annotated[int, msgspec.Meta(ge=0, le=2**50)] | None = None  # bytes
    last_job_ms: Annotated[int, msgspec.Meta(ge=0, le=7 * 86_400_000)] | None = None
    network_latency_ms: Annotated[int, msgspec.Meta(ge=0, le=600_000)] | None = None


class HeartbeatSample(msgspec.Struct, gc=False, tag="telemetry.heartbeat", frozen=True, kw_only=True):
    """A liveness sample: goes to CCN_TELEMETRY (age-limited), never to the node's history."""

    node_id: str
    session_id: str
    seen_at: datetime
    metrics: NodeMetrics | None = None


TelemetrySample = HeartbeatSample
