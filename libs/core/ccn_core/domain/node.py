"""The node aggregate: registration, consent, opt-out and sessions, as pure rules.

Secrets never reach this module: the shell parses a bearer token and passes its secret part,
which is compared with the stored hash here, so the rule "a wrong token is refused" is a row
in the decider's tests like every other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import msgspec

from ccn_core.errors import Conflict, Forbidden, Unauthorized, Unprocessable
from ccn_core.ids import token_matches
from ccn_proto.nodes import (
    ConsentRecorded,
    NodeEvent,
    NodeOptedOut,
    NodeRegistered,
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


class Register(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    registered: NodeRegistered


class RecordConsent(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    api_secret: str
    consent_version: str
    consent_hash: str


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


NodeCommand = Register | RecordConsent | OptOut | StartSession | EndSession


def authenticate(state: NodeState, api_secret: str) -> None:
    """A node that does not exist and a wrong secret look alike: neither says which it was."""
    if state.status == "unregistered" or not token_matches(api_secret, state.api_token_hash):
        raise Unauthorized("invalid API token")
    if state.status == "opted_out":
        raise Forbidden("this node has opted out; its tokens are revoked")


def authenticate_session(state: NodeState, session_id: str, session_secret: str) -> None:
    if state.status == "opted_out":
        raise Forbidden("this node has opted out; its tokens are revoked")
    token_hash = state.sessions.get(session_id)
    if token_hash is None or not token_matches(session_secret, token_hash):
        raise Unauthorized("invalid or ended session token")


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
        if state.consent_version == command.consent_version:
            return []
        return [
            ConsentRecorded(
                consent_version=command.consent_version,
                consent_hash=command.consent_hash,
                previous_version=state.consent_version,
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
                )
            case ConsentRecorded():
                return msgspec.structs.replace(
                    state, consent_version=event.consent_version, consent_hash=event.consent_hash
                )
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
