"""The node aggregate: registration, consent, opt-out, sessions and governance, as pure rules.

Governance: admins ban, shadow-ban, drain and unban a node and set its budgets; the registry's
observer records its work, its rate-limit refusals and its liveness, from which the policies in
ccn_core.domain.governance decide its health, backoff and daily quota. Each verdict that
changes is an event on the node, so its history says why it was treated as it was.

Secrets never reach this module: the shell parses a bearer token and passes its secret part,
which is compared with the stored hash here, so the rule "a wrong token is refused" is a row
in the decider's tests like every other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import msgspec

from ccn_core.domain import governance
from ccn_core.domain.governance import Backoff, RecentRecord, Record
from ccn_core.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from ccn_core.ids import token_matches
from ccn_proto.nodes import (
    CONSENT_SCOPES,
    BackoffStage,
    ConsentRecorded,
    ConsentScope,
    Health,
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

MAX_ACTIVE_SESSIONS = 8
NodeStatus = Literal["unregistered", "active", "opted_out"]


class NodeState(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    status: NodeStatus = "unregistered"
    api_token_hash: str = ""
    consent_version: str | None = None
    consent_hash: str | None = None
    # active sessions only, oldest first: session id → token hash
    sessions: dict[str, str] = msgspec.field(default_factory=dict)
    idempotency_key_hash: str | None = None
    request_fingerprint: str | None = None
    public_key: str | None = None  # the key its results are signed with; None: it signs none
    consent_scopes: tuple[ConsentScope, ...] = ()
    # governance: what admins decided
    banned: bool = False
    ban_reason: str | None = None
    shadow_banned: bool = False
    draining: bool = False
    budgets: NodeBudgetsSet | None = None
    # governance: what the policies concluded from the node's record
    health: Health = "healthy"
    silent_s: float = 0.0  # the telemetry silence its last health verdict saw
    backoff_stage: BackoffStage = "none"
    backoff_until: datetime | None = None
    daily_quota: int = governance.DAILY_QUOTA_MAX
    record: Record = msgspec.field(default_factory=Record)
    recent: RecentRecord = msgspec.field(default_factory=RecentRecord)

    @property
    def backoff(self) -> Backoff:
        return Backoff(stage=self.backoff_stage, until=self.backoff_until)

    def refusal(self) -> str | None:
        """Why every request of this node is refused now (403), or None."""
        if self.banned:
            return f"this node is banned: {self.ban_reason or 'no reason given'}"
        if self.health == "banned":
            return "this node is banned by policy: its results claim more than their budgets allowed"
        return None


class Register(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    registered: NodeRegistered


class RecordConsent(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    api_secret: str
    consent_version: str
    consent_hash: str
    scopes: tuple[ConsentScope, ...] = CONSENT_SCOPES


class OptOut(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    api_secret: str
    reason: str | None = None


class StartSession(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    api_secret: str
    session_id: str
    session_token_hash: str
    user_agent: str | None = None
    ip_hash: str | None = None


class EndSession(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    session_id: str
    session_secret: str
    reason: str | None = None


class AdminAction(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    action: Literal["ban", "unban", "shadow_ban", "drain"]
    reason: str
    by: str


class SetBudgets(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    budgets: NodeBudgetsSet


class RecordWork(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    work: NodeWorkRecorded


class RecordRateLimited(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    refused: NodeRateLimited


class ObserveLiveness(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    silent_s: float


NodeCommand = (
    Register
    | RecordConsent
    | OptOut
    | StartSession
    | EndSession
    | AdminAction
    | SetBudgets
    | RecordWork
    | RecordRateLimited
    | ObserveLiveness
)


def authenticate(state: NodeState, api_secret: str) -> None:
    """A node that does not exist and a wrong secret look alike: neither says which it was."""
    if state.status == "unregistered" or not token_matches(api_secret, state.api_token_hash):
        raise Unauthorized("invalid API token")
    if state.status == "opted_out":
        raise Forbidden("this node has opted out; its tokens are revoked")
    refusal = state.refusal()
    if refusal is not None:
        raise Forbidden(refusal)


def authenticate_session(state: NodeState, session_id: str, session_secret: str) -> None:
    if state.status == "opted_out":
        raise Forbidden("this node has opted out; its tokens are revoked")
    token_hash = state.sessions.get(session_id)
    if token_hash is None or not token_matches(session_secret, token_hash):
        raise Unauthorized("invalid or ended session token")
    refusal = state.refusal()
    if refusal is not None:
        raise Forbidden(refusal)


class NodeDecider:
    aggregate = "node"

    def __init__(self, consent_catalogue: Mapping[str, str]) -> None:
        self._consent = consent_catalogue

    def initial_state(self, aggregate_id: str) -> NodeState:
        return NodeState(node_id=aggregate_id)

    def decide(self, command: NodeCommand, state: NodeState, now: datetime) -> list[NodeEvent]:
        match command:
            case Register(registered=event):
                return self._register(event, state)
            case RecordConsent():
                authenticate(state, command.api_secret)
                return self._consent_decision(command, state)
            case OptOut():
                authenticate(state, command.api_secret)
                return [NodeOptedOut(ended_session_ids=list(state.sessions), reason=command.reason)]
            case StartSession():
                authenticate(state, command.api_secret)
                if command.session_id in state.sessions:
                    return []
                events: list[NodeEvent] = []
                if len(state.sessions) >= MAX_ACTIVE_SESSIONS:
                    # a node that crashed never ended its sessions; the oldest gives way
                    oldest = next(iter(state.sessions))
                    events.append(SessionEnded(session_id=oldest, reason="superseded by a newer session"))
                events.append(
                    SessionStarted(
                        session_id=command.session_id,
                        session_token_hash=command.session_token_hash,
                        user_agent=command.user_agent,
                        ip_hash=command.ip_hash,
                    )
                )
                return events
            case EndSession():
                authenticate_session(state, command.session_id, command.session_secret)
                return [SessionEnded(session_id=command.session_id, reason=command.reason)]
            case AdminAction():
                _require_registered(state)
                return _admin_decision(command, state)
            case SetBudgets(budgets=budgets):
                _require_registered(state)
                same = state.budgets is not None and _budget_limits(state.budgets) == _budget_limits(budgets)
                return [] if same else [budgets]
            case RecordWork(work=work):
                _require_registered(state)
                return _work_decision(work, state, now)
            case RecordRateLimited(refused=refused):
                _require_registered(state)
                return _rate_limited_decision(refused, state, now)
            case ObserveLiveness(silent_s=silent_s):
                _require_registered(state)
                return _health_change(state, silent_s, now, state.recent)
        raise TypeError(f"not a node command: {command!r}")

    def _register(self, event: NodeRegistered, state: NodeState) -> list[NodeEvent]:
        if state.status == "unregistered":
            return [event]
        same_key = event.idempotency_key_hash is not None and event.idempotency_key_hash == state.idempotency_key_hash
        if same_key and state.status == "opted_out":
            raise Forbidden("this node has opted out; its tokens are revoked")
        if same_key and event.request_fingerprint == state.request_fingerprint:
            return []  # a retry: the first registration stands and is answered again
        if same_key:
            raise Conflict("this Idempotency-Key was used for a different registration request")
        raise Conflict(f"node {state.node_id} is already registered")

    def _consent_decision(self, command: RecordConsent, state: NodeState) -> list[NodeEvent]:
        known_hash = self._consent.get(command.consent_version)
        if known_hash is None:
            raise Unprocessable(
                f"unknown consent version {command.consent_version!r}; known: {', '.join(sorted(self._consent))}",
                field="consent_version",
            )
        if command.consent_hash != known_hash:
            raise Unprocessable(
                f"consent_hash does not match consent version {command.consent_version}", field="consent_hash"
            )
        scopes = _ordered_scopes(command.scopes)
        if state.consent_version == command.consent_version and state.consent_scopes == scopes:
            return []
        return [
            ConsentRecorded(
                consent_version=command.consent_version,
                consent_hash=command.consent_hash,
                previous_version=state.consent_version,
                scopes=list(scopes),
            )
        ]

    def evolve(self, state: NodeState, event: NodeEvent) -> NodeState:
        match event:
            case NodeRegistered():
                return msgspec.structs.replace(
                    state,
                    status="active",
                    api_token_hash=event.api_token_hash,
                    sessions={event.session_id: event.session_token_hash},
                    idempotency_key_hash=event.idempotency_key_hash,
                    request_fingerprint=event.request_fingerprint,
                    public_key=event.public_key,
                )
            case ConsentRecorded():
                scopes = CONSENT_SCOPES if event.scopes is None else _ordered_scopes(event.scopes)
                return msgspec.structs.replace(
                    state, consent_version=event.consent_version, consent_hash=event.consent_hash, consent_scopes=scopes
                )
            case NodeBanned():
                return msgspec.structs.replace(state, banned=True, ban_reason=event.reason)
            case NodeShadowBanned():
                return msgspec.structs.replace(state, shadow_banned=True)
            case NodeDrainRequested():
                return msgspec.structs.replace(state, draining=True)
            case NodeUnbanned():
                # a policy ban is lifted with the admin's: its violations are forgiven, not forgotten
                # (the record keeps them, and so does the reputation)
                recent = msgspec.structs.replace(state.recent, work=())
                health: Health = "healthy" if state.health == "banned" else state.health
                return msgspec.structs.replace(
                    state,
                    banned=False,
                    ban_reason=None,
                    shadow_banned=False,
                    draining=False,
                    health=health,
                    recent=recent if state.health == "banned" else state.recent,
                )
            case NodeBudgetsSet():
                return msgspec.structs.replace(state, budgets=event)
            case NodeWorkRecorded():
                return msgspec.structs.replace(
                    state,
                    record=governance.add_work(state.record, event),
                    recent=governance.remember_work(state.recent, event),
                    daily_quota=governance.next_quota(state.daily_quota, event),
                )
            case NodeRateLimited():
                record = msgspec.structs.replace(
                    state.record, rate_limited=state.record.rate_limited + sum(event.refused.values())
                )
                recent = governance.remember_rate_limited(state.recent, event.window_end)
                return msgspec.structs.replace(state, record=record, recent=recent)
            case NodeHealthChanged():
                worse = event.health != "healthy"
                record = msgspec.structs.replace(
                    state.record, health_changes=state.record.health_changes + (1 if worse else 0)
                )
                return msgspec.structs.replace(state, health=event.health, silent_s=event.silent_s, record=record)
            case NodeBackoffChanged():
                return msgspec.structs.replace(state, backoff_stage=event.stage, backoff_until=event.until)
            case NodeOptedOut():
                return msgspec.structs.replace(state, status="opted_out", sessions={})
            case SessionStarted():
                return msgspec.structs.replace(
                    state, sessions={**state.sessions, event.session_id: event.session_token_hash}
                )
            case SessionEnded():
                sessions = {k: v for k, v in state.sessions.items() if k != event.session_id}
                return msgspec.structs.replace(state, sessions=sessions)
        raise TypeError(f"not a node event: {event!r}")


def _require_registered(state: NodeState) -> None:
    if state.status == "unregistered":
        raise NotFound(f"no node {state.node_id}")


def _ordered_scopes(scopes: tuple[ConsentScope, ...] | list[ConsentScope]) -> tuple[ConsentScope, ...]:
    chosen = set(scopes)
    return tuple(scope for scope in CONSENT_SCOPES if scope in chosen)


def _budget_limits(budgets: NodeBudgetsSet) -> tuple[int | None, float | None, int | None]:
    return budgets.max_bandwidth_per_min, budgets.max_cpu_time_per_job_s, budgets.max_memory_mb


def _admin_decision(command: AdminAction, state: NodeState) -> list[NodeEvent]:
    """An action that would change nothing records nothing (the reply says so)."""
    match command.action:
        case "ban":
            return [] if state.banned else [NodeBanned(reason=command.reason, by=command.by)]
        case "shadow_ban":
            return [] if state.shadow_banned else [NodeShadowBanned(reason=command.reason, by=command.by)]
        case "drain":
            return [] if state.draining else [NodeDrainRequested(reason=command.reason, by=command.by)]
        case "unban":
            lifted = state.banned or state.shadow_banned or state.draining or state.health == "banned"
            return [NodeUnbanned(reason=command.reason, by=command.by)] if lifted else []
    raise TypeError(f"not an admin action: {command.action!r}")


def _work_decision(work: NodeWorkRecorded, state: NodeState, now: datetime) -> list[NodeEvent]:
    events: list[NodeEvent] = [work]
    recent = governance.remember_work(state.recent, work)
    strike = governance.work_strike(work)
    if strike is not None:
        events.append(_backoff_event(state, *governance.escalate(state.backoff, strike, now)))
    elif governance.is_clean(work):
        decayed = governance.decay(state.backoff, now)
        if decayed is not None:
            events.append(_backoff_event(state, decayed, "a clean window of work"))
    # a node that just returned results is not silent, whatever the last observation said
    events.extend(_health_change(state, 0.0 if work.completed else state.silent_s, now, recent))
    return events


def _rate_limited_decision(refused: NodeRateLimited, state: NodeState, now: datetime) -> list[NodeEvent]:
    events: list[NodeEvent] = [refused]
    recent = governance.remember_rate_limited(state.recent, refused.window_end)
    total = sum(refused.refused.values())
    events.append(
        _backoff_event(state, *governance.escalate(state.backoff, f"{total} requests over its rate limits", now))
    )
    events.extend(_health_change(state, state.silent_s, now, recent))
    return events


def _health_change(state: NodeState, silent_s: float, now: datetime, recent: RecentRecord) -> list[NodeEvent]:
    health, reasons = governance.assess_health(governance.health_inputs(recent, silent_s, now))
    if health == state.health:
        return []
    return [NodeHealthChanged(health=health, previous=state.health, reasons=reasons, silent_s=silent_s)]


def _backoff_event(state: NodeState, backoff: Backoff, cause: str) -> NodeBackoffChanged:
    return NodeBackoffChanged(stage=backoff.stage, previous=state.backoff_stage, until=backoff.until, cause=cause)
