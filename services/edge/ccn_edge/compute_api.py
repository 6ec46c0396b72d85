"""The node-facing HTTP API, /compute/*: each request becomes one registry command.

The edge holds no state and judges no token: it checks the shape of what arrives, hashes the
caller's IP (the raw address goes no further), and forwards the command with the request's
correlation id. The registry's typed error comes back as the matching HTTP status.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import HeaderParameter, JSONBody

from ccn_core.errors import Unauthorized
from ccn_core.tokens import parse_api_token, parse_session_token
from ccn_edge.context import EdgeContext
from ccn_proto.compute_api import (
    ConsentRequest,
    EndSessionRequest,
    OptOutRequest,
    RegisterNodeRequest,
    StartSessionRequest,
    TelemetryRequest,
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

MAX_TOKEN_LENGTH = 512
_API_TOKEN: list[dict[str, list[str]]] = [{"NodeApiToken": []}]
_SESSION_TOKEN: list[dict[str, list[str]]] = [{"NodeSessionToken": []}]


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The token of `Authorization: Bearer <token>`; 401 when absent or absurd. Whether it is
    valid is the registry's call."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send the node's token as `Authorization: Bearer <token>`")
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("not a valid token")
    return token


def requires_api_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guards run before the body is parsed: a caller without a well-formed token gets 401 and
    learns nothing about what a valid body looks like. The registry still judges the secret."""
    parse_api_token(bearer_token(connection))


def requires_session_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    parse_session_token(bearer_token(connection))


class ComputeController(Controller):
    path = "/compute"
    tags = ["nodes"]

    @post(
        "/register-node",
        summary="Register a node",
        description="Returns the node's public id, its API token and a first session token (each shown once) "
        "and the server time. 201 when a node was created; 200 when `Idempotency-Key` names a registration "
        "already made with the same body (the same credentials come back); 409 if the body differs.",
        status_code=201,
    )
    async def register_node(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[RegisterNodeRequest],
        edge: NamedDependency[EdgeContext],
        idempotency_key: Annotated[
            str | None,
            HeaderParameter(
                name="Idempotency-Key",
                description="A UUID the client keeps for retries of this registration.",
                min_length=16,
                max_length=128,
            ),
        ] = None,
    ) -> Response[RegisterNodeReply]:
        command = RegisterNode(
            consent_flag=data.consent_flag,
            user_agent=data.user_agent,
            user_id=data.user_id,
            node_version=data.node_version,
            ip_hash=edge.caller_ip_hash(request),
            idempotency_key=idempotency_key,
        )
        reply: RegisterNodeReply = await edge.registry(request, "register", command, RegisterNodeReply)
        return Response(reply, status_code=201 if reply.created else 200)

    @post(
        "/consent",
        summary="Record consent",
        description="Records the node's consent to a version of the terms (GET the catalogue from the docs); "
        "422 for a version or hash the server does not know.",
        status_code=200,
        security=_API_TOKEN,
        guards=[requires_api_token],
    )
    async def consent(
        self, request: Request[Any, Any, Any], data: JSONBody[ConsentRequest], edge: NamedDependency[EdgeContext]
    ) -> ConsentReply:
        command = RecordConsent(
            api_token=bearer_token(request), consent_version=data.consent_version, consent_hash=data.consent_hash
        )
        reply: ConsentReply = await edge.registry(request, "consent", command, ConsentReply)
        return reply

    @post(
        "/opt-out",
        summary="Opt out",
        description="Deactivates the node and ends its sessions; its tokens are refused (403) from then on.",
        status_code=200,
        security=_API_TOKEN,
        guards=[requires_api_token],
    )
    async def opt_out(
        self, request: Request[Any, Any, Any], data: JSONBody[OptOutRequest], edge: NamedDependency[EdgeContext]
    ) -> OptOutReply:
        reply: OptOutReply = await edge.registry(
            request, "opt_out", OptOut(api_token=bearer_token(request), reason=data.reason), OptOutReply
        )
        return reply

    @post(
        "/telemetry",
        summary="Heartbeat",
        description="Keeps the session alive (its last_seen advances). Takes the session token.",
        status_code=200,
        security=_SESSION_TOKEN,
        guards=[requires_session_token],
    )
    async def telemetry(
        self, request: Request[Any, Any, Any], data: JSONBody[TelemetryRequest], edge: NamedDependency[EdgeContext]
    ) -> HeartbeatReply:
        reply: HeartbeatReply = await edge.registry(
            request, "heartbeat", Heartbeat(session_token=bearer_token(request)), HeartbeatReply
        )
        return reply

    @post(
        "/session",
        summary="Start a session",
        description="A new session token for a registered node (at most a few active at once).",
        status_code=201,
        security=_API_TOKEN,
        guards=[requires_api_token],
    )
    async def start_session(
        self, request: Request[Any, Any, Any], data: JSONBody[StartSessionRequest], edge: NamedDependency[EdgeContext]
    ) -> StartSessionReply:
        command = StartSession(
            api_token=bearer_token(request), user_agent=data.user_agent, ip_hash=edge.caller_ip_hash(request)
        )
        reply: StartSessionReply = await edge.registry(request, "start_session", command, StartSessionReply)
        return reply

    @delete(
        "/session",
        summary="End a session",
        description="Ends the session whose token is presented.",
        status_code=200,
        security=_SESSION_TOKEN,
        guards=[requires_session_token],
    )
    async def end_session(
        self,
        request: Request[Any, Any, Any],
        edge: NamedDependency[EdgeContext],
        data: JSONBody[EndSessionRequest | None] = None,
    ) -> EndSessionReply:
        reason = data.reason if data is not None else None
        reply: EndSessionReply = await edge.registry(
            request, "end_session", EndSession(session_token=bearer_token(request), reason=reason), EndSessionReply
        )
        return reply
