"""Commands the registry answers on ccn.cmd.registry.<name>, and their replies.

Tokens travel inside commands because the registry, not the edge, judges them: the edge
holds no state and never sees a token's hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from ccn_proto.constraints import Sha256Hex, ShortText, Text, Token, UserAgent, Version
from ccn_proto.nodes import (
    BackoffStage,
    ConsentScope,
    Count,
    Health,
    NodeBudgetsSet,
    NodeMetrics,
    NodeWorkRecorded,
)
from ccn_proto.receipts import PublicKey

NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")]


class RegisterNode(msgspec.Struct, gc=False, tag="register", frozen=True, kw_only=True):
    consent_flag: bool = False
    user_agent: UserAgent | None = None
    user_id: ShortText | None = None
    node_version: ShortText | None = None
    ip_hash: str | None = None
    idempotency_key: ShortText | None = None
    public_key: PublicKey | None = None  # the node's Ed25519 key for signing its results


class RegisterNodeReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_public_id: str
    api_token: str
    session_id: str
    session_token: str
    server_time: datetime
    created: bool


class RecordConsent(msgspec.Struct, gc=False, tag="consent", frozen=True, kw_only=True):
    api_token: Token
    consent_version: Version
    consent_hash: Sha256Hex
    scopes: list[ConsentScope] | None = None  # None: every scope


class ConsentReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_public_id: str
    consent_version: str
    consent_hash: str
    previous_version: str | None
    server_time: datetime
    scopes: list[ConsentScope] = msgspec.field(default_factory=list)


class OptOut(msgspec.Struct, gc=False, tag="opt_out", frozen=True, kw_only=True):
    api_token: Token
    reason: Text | None = None


class OptOutReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_public_id: str
    sessions_ended: int
    server_time: datetime


class StartSession(msgspec.Struct, gc=False, tag="start_session", frozen=True, kw_only=True):
    api_token: Token
    user_agent: UserAgent | None = None
    ip_hash: str | None = None


class StartSessionReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_public_id: str
    session_id: str
    session_token: str
    server_time: datetime


class EndSession(msgspec.Struct, gc=False, tag="end_session", frozen=True, kw_only=True):
    session_token: Token
    reason: Text | None = None


class EndSessionReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_public_id: str
    session_id: str
    server_time: datetime


class Heartbeat(msgspec.Struct, gc=False, tag="heartbeat", frozen=True, kw_only=True):
    session_token: Token
    metrics: NodeMetrics | None = None


class HeartbeatReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Who the session token belongs to, and what the edge checks the node's frames by: its
    registered public key (None: it registered none, and its results go unsigned)."""

    node_public_id: str
    session_id: str
    server_time: datetime
    public_key: str | None = None


# -- governance: commands from admins (through the edge's admin API) and from the registry's
# own observer of job outcomes and telemetry. An admin command names the admin (`by`, the admin
# token's name) and a reason: both go into the node's history, and so into the audit trail.


class AdminNodeAction(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: NodeId
    reason: Text
    by: ShortText


class BanNode(AdminNodeAction, tag="ban", frozen=True, kw_only=True, gc=False):
    pass


class UnbanNode(AdminNodeAction, tag="unban", frozen=True, kw_only=True, gc=False):
    pass


class ShadowBanNode(AdminNodeAction, tag="shadow_ban", frozen=True, kw_only=True, gc=False):
    pass


class DrainNode(AdminNodeAction, tag="drain", frozen=True, kw_only=True, gc=False):
    pass


class SetNodeBudgets(msgspec.Struct, gc=False, tag="set_budgets", frozen=True, kw_only=True):
    node_id: NodeId
    budgets: NodeBudgetsSet  # `by` inside


class RecordWork(msgspec.Struct, gc=False, tag="record_work", frozen=True, kw_only=True):
    """From the registry's observer: one window of the node's job outcomes. `key` makes a
    resent window (the observer crashed before its ack) record nothing twice."""

    node_id: NodeId
    work: NodeWorkRecorded
    key: ShortText


class RecordRateLimited(msgspec.Struct, gc=False, tag="record_rate_limited", frozen=True, kw_only=True):
    """From an edge: the requests of one node its limits refused over one window."""

    node_id: NodeId
    window_start: datetime
    window_end: datetime
    refused: dict[ShortText, Count]
    key: ShortText


class ObserveLiveness(msgspec.Struct, gc=False, tag="observe_liveness", frozen=True, kw_only=True):
    """From the registry's observer: how long since the node's last telemetry sample, and the
    sample's metrics (None when it sent none). The health policy decides what follows."""

    node_id: NodeId
    silent_s: Annotated[float, msgspec.Meta(ge=0.0, le=10.0**9)]
    metrics: NodeMetrics | None = None


class NodeActionReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    changed: bool  # False: the node was already so (the command recorded nothing)
    server_time: datetime


class GetNode(msgspec.Struct, gc=False, tag="get_node", frozen=True, kw_only=True):
    node_id: NodeId


class ReputationInputs(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """What a reputation score was computed from: every figure comes from the node's history."""

    completed: int
    failed: int
    abandoned: int
    budget_violations: int
    agreed: int
    disagreed: int
    mean_job_ms: float | None
    health_changes: int
    rate_limited: int
    success_rate: float | None
    agreement_rate: float | None
    consensus_disagreed: int = 0  # results outside a consensus's answer (weighed in the agreement term)


class Reputation(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    score: float  # 0 to 100
    components: dict[str, float]  # each term's share of the score
    inputs: ReputationInputs


class NodeView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """An admin's view of one node: its standing, and the record it was judged on."""

    node_id: str
    status: str  # active, opted_out, unregistered
    banned: bool
    ban_reason: str | None
    shadow_banned: bool
    draining: bool
    health: Health
    backoff_stage: BackoffStage
    backoff_until: datetime | None
    consent_version: str | None
    consent_scopes: list[ConsentScope]
    daily_quota: int
    budgets: NodeBudgetsSet | None
    reputation: Reputation
    active_sessions: int
    server_time: datetime


RegistryCommand = (
    RegisterNode
    | RecordConsent
    | OptOut
    | StartSession
    | EndSession
    | Heartbeat
    | BanNode
    | UnbanNode
    | ShadowBanNode
    | DrainNode
    | SetNodeBudgets
    | RecordWork
    | RecordRateLimited
    | ObserveLiveness
    | GetNode
)
