"""The registry's command handlers: parse tokens, mint secrets, let the node decider rule."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from ccn_core import ids, subjects
from ccn_core.aggregate import AggregateRepository, EventMeta, envelope_headers
from ccn_core.commands import CommandContext, CommandServer
from ccn_core.domain.node import (
    EndSession as EndSessionCommand,
)
from ccn_core.domain.node import (
    NodeCommand,
    NodeState,
    Register,
    authenticate_session,
)
from ccn_core.domain.node import (
    OptOut as OptOutCommand,
)
from ccn_core.domain.node import (
    RecordConsent as RecordConsentCommand,
)
from ccn_core.domain.node import (
    StartSession as StartSessionCommand,
)
from ccn_core.errors import BadInput
from ccn_core.eventstore import EventStore, OutgoingEvent
from ccn_core.receipts import valid_public_key
from ccn_core.tokens import format_api_token, format_session_token, parse_api_token, parse_session_token
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.nodes import (
    CONSENT_SCOPES,
    ConsentRecorded,
    HeartbeatSample,
    NodeEvent,
    NodeOptedOut,
    NodeRegistered,
)
from ccn_proto.registry import (
    ConsentReply,
    EndSession,
    EndSessionReply,
    Heartbeat,
    HeartbeatReply,
    OptOut,
    OptOutReply,
    RecordConsent,
    RegisterNode,
    RegisterNodeReply,
    StartSession,
    StartSessionReply,
)

NodeRepository = AggregateRepository[NodeCommand, NodeState, NodeEvent]
MIN_IDEMPOTENCY_KEY_LENGTH = 16


def request_fingerprint(command: RegisterNode) -> str:
    """What makes two registrations the same request: the body, not where it came from."""
    body = msgspec.structs.replace(command, ip_hash=None, idempotency_key=None)
    return hashlib.sha256(msgspec.json.encode(body)).hexdigest()


class RegistryHandlers:
    def __init__(
        self,
        repository: NodeRepository,
        store: EventStore,
        token_secret: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not token_secret:
            raise ValueError("CCN_TOKEN_SECRET is required: it keys the secrets of idempotent registrations")
        self._nodes = repository
        self._store = store
        self._key = token_secret
        self._clock = clock

    def register_all(self, server: CommandServer) -> None:
        server.register("register", RegisterNode, self.register)
        server.register("consent", RecordConsent, self.consent)
        server.register("opt_out", OptOut, self.opt_out)
        server.register("start_session", StartSession, self.start_session)
        server.register("end_session", EndSession, self.end_session)
        server.register("heartbeat", Heartbeat, self.heartbeat)

    async def register(self, command: RegisterNode, ctx: CommandContext) -> RegisterNodeReply:
        if command.public_key is not None and not valid_public_key(command.public_key):
            raise BadInput("public_key is not an Ed25519 public key", field="public_key")
        key = command.idempotency_key
        if key is not None:
            if len(key) < MIN_IDEMPOTENCY_KEY_LENGTH:
                raise BadInput(
                    f"Idempotency-Key must be at least {MIN_IDEMPOTENCY_KEY_LENGTH} characters (use a UUID): "
                    "a registration retried with it returns the same credentials",
                    field="Idempotency-Key",
                )
            # Retrying under the same key must return the same credentials, yet only hashes are
            # stored: so they are derived from the key with the server's secret, not drawn at random.
            node_id = str(ids.keyed_uuid4(self._key, "node", key))
            session_id = str(ids.keyed_uuid4(self._key, "session", key))
            api_secret = ids.keyed_secret(self._key, "api-token", key)
            session_secret = ids.keyed_secret(self._key, "session-token", key)
        else:
            node_id, session_id = ids.new_public_id(), ids.new_public_id()
            api_secret, session_secret = ids.new_secret(), ids.new_secret()
        registered = NodeRegistered(
            node_id=node_id,
            api_token_hash=ids.token_hash(api_secret),
            session_id=session_id,
            session_token_hash=ids.token_hash(session_secret),
            consent_flag=command.consent_flag,
            user_agent=command.user_agent,
            user_id=command.user_id,
            node_version=command.node_version,
            ip_hash=command.ip_hash,
            idempotency_key_hash=ids.token_hash(key) if key else None,
            request_fingerprint=request_fingerprint(command) if key else None,
            public_key=command.public_key,
        )
        executed = await self._nodes.execute(
            node_id, Register(registered=registered), self._meta(ctx, node_id, key and f"register:{key}")
        )
        return RegisterNodeReply(
            node_public_id=node_id,
            api_token=format_api_token(node_id, api_secret),
            session_id=session_id,
            session_token=format_session_token(node_id, session_id, session_secret),
            server_time=self._clock(),
            created=bool(executed.events),
        )

    async def consent(self, command: RecordConsent, ctx: CommandContext) -> ConsentReply:
        token = parse_api_token(command.api_token)
        decision = RecordConsentCommand(
            api_secret=token.secret,
            consent_version=command.consent_version,
            consent_hash=command.consent_hash,
            scopes=CONSENT_SCOPES if command.scopes is None else tuple(command.scopes),
        )
        executed = await self._nodes.execute(token.node_id, decision, self._meta(ctx, token.node_id))
        recorded = executed.events[0].data if executed.events else None
        previous = recorded.previous_version if isinstance(recorded, ConsentRecorded) else None
        return ConsentReply(
            node_public_id=token.node_id,
            consent_version=command.consent_version,
            consent_hash=command.consent_hash,
            previous_version=previous,
            server_time=self._clock(),
            scopes=list(executed.state.consent_scopes),
        )

    async def opt_out(self, command: OptOut, ctx: CommandContext) -> OptOutReply:
        token = parse_api_token(command.api_token)
        executed = await self._nodes.execute(
            token.node_id, OptOutCommand(api_secret=token.secret, reason=command.reason), self._meta(ctx, token.node_id)
        )
        opted_out = executed.events[0].data if executed.events else None
        ended = opted_out.ended_session_ids if isinstance(opted_out, NodeOptedOut) else []
        return OptOutReply(node_public_id=token.node_id, sessions_ended=len(ended), server_time=self._clock())

    async def start_session(self, command: StartSession, ctx: CommandContext) -> StartSessionReply:
        token = parse_api_token(command.api_token)
        session_id, secret = ids.new_public_id(), ids.new_secret()
        decision = StartSessionCommand(
            api_secret=token.secret,
            session_id=session_id,
            session_token_hash=ids.token_hash(secret),
            user_agent=command.user_agent,
            ip_hash=command.ip_hash,
        )
        await self._nodes.execute(token.node_id, decision, self._meta(ctx, token.node_id))
        return StartSessionReply(
            node_public_id=token.node_id,
            session_id=session_id,
            session_token=format_session_token(token.node_id, session_id, secret),
            server_time=self._clock(),
        )

    async def end_session(self, command: EndSession, ctx: CommandContext) -> EndSessionReply:
        token = parse_session_token(command.session_token)
        decision = EndSessionCommand(session_id=token.session_id, session_secret=token.secret, reason=command.reason)
        await self._nodes.execute(token.node_id, decision, self._meta(ctx, token.node_id))
        return EndSessionReply(node_public_id=token.node_id, session_id=token.session_id, server_time=self._clock())

    async def heartbeat(self, command: Heartbeat, ctx: CommandContext) -> HeartbeatReply:
        """A heartbeat changes no decision, so it is a telemetry sample, not a node event: the
        node's history stays small and the sample stream ages out."""
        token = parse_session_token(command.session_token)
        loaded = await self._nodes.load(token.node_id, fresh=True)
        authenticate_session(loaded.state, token.session_id, token.secret)
        now = self._clock()
        envelope = Envelope(
            event_id=ids.new_event_id(),
            type="telemetry.heartbeat",
            schema_version=1,
            aggregate_id=token.node_id,
            occurred_at=now,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            actor=Actor(kind="node", id=token.node_id),
            data=HeartbeatSample(
                node_id=token.node_id, session_id=token.session_id, seen_at=now, metrics=command.metrics
            ),
        )
        await self._store.append(
            OutgoingEvent(
                subject=subjects.telemetry(token.node_id, "heartbeat"),
                data=msgspec.json.encode(envelope),
                headers=envelope_headers(envelope),
            )
        )
        return HeartbeatReply(
            node_public_id=token.node_id,
            session_id=token.session_id,
            server_time=now,
            public_key=loaded.state.public_key,
        )

    def _meta(self, ctx: CommandContext, node_id: str, idempotency_key: str | None = None) -> EventMeta:
        return EventMeta(
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            actor=Actor(kind="node", id=node_id),
            idempotency_key=idempotency_key or None,
        )
