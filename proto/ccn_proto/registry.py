"""Commands the registry answers on ccn.cmd.registry.<name>, and their replies.

Tokens travel inside commands because the registry, not the edge, judges them: the edge
holds no state and never sees a token's hash.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ccn_proto.constraints import Sha256Hex, ShortText, Text, Token, UserAgent, Version


class RegisterNode(msgspec.Struct, gc=False, tag="register", frozen=True, kw_only=True):
    consent_flag: bool = False
    user_agent: UserAgent | None = None
    user_id: ShortText | None = None
    node_version: ShortText | None = None
    ip_hash: str | None = None
    idempotency_key: ShortText | None = None


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


class ConsentReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_public_id: str
    consent_version: str
    consent_hash: str
    previous_version: str | None
    server_time: datetime


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


class HeartbeatReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_public_id: str
    session_id: str
    server_time: datetime


RegistryCommand = RegisterNode | RecordConsent | OptOut | StartSession | EndSession | Heartbeat
