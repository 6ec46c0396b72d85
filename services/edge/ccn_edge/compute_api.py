"""The node-facing HTTP API, /compute/*: each request becomes one registry command.

The edge holds no state and judges no token: it checks the shape of what arrives, hashes the
caller's IP (the raw address goes no further), and forwards the command with the request's
correlation id. The registry's typed error comes back as the matching HTTP status. A node's
requests meet its rate limits once the registry has said which node it is (ccn_edge.rate_limits):
a token naming someone else's node cannot spend that node's limits. 429 + Retry-After past them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import HeaderParameter, JSONBody, QueryParameter

from ccn_core.errors import Unauthorized
from ccn_core.logging import get_logger
from ccn_core.tokens import parse_api_token, parse_session_token
from ccn_edge.context import EdgeContext
from ccn_edge.node_link import withheld_wait_s
from ccn_edge.result_signatures import result_signature_problem
from ccn_proto.compute_api import (
    ConsentRequest,
    EndSessionRequest,
    JobFailRequest,
    JobResultRequest,
    OptOutRequest,
    RegisterNodeRequest,
    StartSessionRequest,
    TelemetryRequest,
)
from ccn_proto.constraints import PRINTABLE_ASCII_PATTERN
from ccn_proto.nodes import NodeMetrics
from ccn_proto.registry import (
    ConsentReply,
    EndSession,
    EndSessionReply,
    HeartbeatReply,
    OptOut,
    OptOutReply,
    RecordConsent,
    RegisterNode,
    RegisterNodeReply,
    StartSession,
    StartSessionReply,
)
from ccn_proto.scheduler import (
    ClaimJobs,
    ClaimJobsReply,
    FailJob,
    FailJobReply,
    JobOffer,
    LostLease,
    RenewLeases,
    RenewLeasesReply,
    SubmitResult,
    SubmitResultReply,
)
from ccn_web.http import correlation_id

log = get_logger("ccn.edge.compute")
MAX_TOKEN_LENGTH = 512
_API_TOKEN: list[dict[str, list[str]]] = [{"NodeApiToken": []}]
_SESSION_TOKEN: list[dict[str, list[str]]] = [{"NodeSessionToken": []}]


def withheld_headers(reply: ClaimJobsReply) -> dict[str, str]:
    """A 204 says "no job now"; when node governance withheld the work, these say why
    (`CCN-Withheld`) and when to ask again (`Retry-After`, and `CCN-Backoff-Until` when the node
    is backed off or its daily quota is spent), as the socket's error frame does."""
    if reply.withheld is None:
        return {}
    printable = "".join(c if " " <= c <= "~" else " " for c in reply.withheld[:200])  # a header is one ASCII line
    headers = {"CCN-Withheld": printable}
    if reply.backoff_until is not None:
        headers["CCN-Backoff-Until"] = reply.backoff_until.isoformat()
    headers["Retry-After"] = str(math.ceil(withheld_wait_s(reply)))
    return headers


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


MAX_POLL_WAIT_S = 30.0


class TelemetryReply(msgspec.Struct, frozen=True, kw_only=True):
    node_public_id: str
    session_id: str
    server_time: datetime
    lost: list[LostLease]


async def _session(
    request: Request[Any, Any, Any], edge: EdgeContext, metrics: NodeMetrics | None = None
) -> HeartbeatReply:
    """The node behind the session token (the registry judges it; the session's last_seen
    moves, and a heartbeat's `metrics` go into the node's telemetry sample)."""
    return await edge.session_node(bearer_token(request), correlation_id=correlation_id(request.scope), metrics=metrics)


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
                pattern=PRINTABLE_ASCII_PATTERN,
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
            public_key=data.public_key,
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
            api_token=bearer_token(request),
            consent_version=data.consent_version,
            consent_hash=data.consent_hash,
            scopes=data.scopes,
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
        description="Keeps the session alive (its last_seen advances) and renews the leases of `job_ids`, "
        "jobs taken with GET /compute/job. Takes the session token. A lease this node no longer holds is "
        "listed in `lost`: stop working on that job.",
        status_code=200,
        security=_SESSION_TOKEN,
        guards=[requires_session_token],
    )
    async def telemetry(
        self, request: Request[Any, Any, Any], data: JSONBody[TelemetryRequest], edge: NamedDependency[EdgeContext]
    ) -> TelemetryReply:
        beat = await _session(request, edge, data.metrics)
        await edge.limits.check(beat.node_public_id, "http.telemetry")
        lost: list[LostLease] = []
        if data.job_ids:
            renewed = await edge.scheduler(
                "renew_leases",
                RenewLeases(node_id=beat.node_public_id, job_ids=data.job_ids),
                RenewLeasesReply,
                correlation_id=correlation_id(request.scope),
            )
            lost = renewed.lost
        return TelemetryReply(
            node_public_id=beat.node_public_id, session_id=beat.session_id, server_time=beat.server_time, lost=lost
        )

    @get(
        "/job",
        summary="Take a job (long poll)",
        description="Waits up to `wait_s` for a job of one of `job_types`; 204 when none came. The offer's "
        "lease ends at `lease_until`: renew it with POST /compute/telemetry naming the job, and send the "
        "offer's `correlation_id` as X-Correlation-ID with its result or failure.",
        security=_SESSION_TOKEN,
        guards=[requires_session_token],
    )
    async def take_job(
        self,
        request: Request[Any, Any, Any],
        edge: NamedDependency[EdgeContext],
        job_types: Annotated[list[str], QueryParameter(min_items=1, max_items=32)],
        wait_s: Annotated[float, QueryParameter(ge=0, le=MAX_POLL_WAIT_S)] = 20.0,
        concurrency: Annotated[int, QueryParameter(ge=1, le=256)] = 1,
    ) -> Response[JobOffer | None]:
        beat = await _session(request, edge)
        await edge.limits.check(beat.node_public_id, "http.job", job_types=job_types)
        claimed = await edge.scheduler(
            "claim_jobs",
            ClaimJobs(
                node_id=beat.node_public_id,
                job_types=job_types,
                concurrency=concurrency,
                slots=1,
                wait_s=wait_s,
                ip_hash=edge.replica_ip_hash(request),
            ),
            ClaimJobsReply,
            correlation_id=correlation_id(request.scope),
            timeout=wait_s + 5,
        )
        if not claimed.offers:
            return Response(None, status_code=204, headers=withheld_headers(claimed))
        return Response(claimed.offers[0], status_code=200)

    @post(
        "/job/result",
        summary="Submit a job's result",
        description="Only the lease holder may; `checksum` is the SHA-256 of the result's canonical JSON "
        "(sorted keys, no whitespace). A second submission of the same result is acknowledged, not re-applied. "
        "A node that registered a public key sends the offer's `attempt` and `signature` (Ed25519 over job id, "
        "attempt and checksum); 422 `bad_signature` when it is missing or does not verify.",
        status_code=200,
        security=_SESSION_TOKEN,
        guards=[requires_session_token],
    )
    async def job_result(
        self, request: Request[Any, Any, Any], data: JSONBody[JobResultRequest], edge: NamedDependency[EdgeContext]
    ) -> SubmitResultReply:
        beat = await _session(request, edge)
        await edge.limits.check(beat.node_public_id, "http.job_result")
        problem = result_signature_problem(
            beat.public_key, job_id=data.job_id, attempt=data.attempt, checksum=data.checksum, signature=data.signature
        )
        if problem is not None:
            log.warning(
                "result refused: its signature does not hold",
                node_id=beat.node_public_id,
                job_id=data.job_id,
                reason=problem.message,
            )
            raise problem
        command = SubmitResult(
            node_id=beat.node_public_id,
            job_id=data.job_id,
            result=data.result,
            checksum=data.checksum,
            usage=data.usage,
            attempt=data.attempt if data.signature is not None else None,
            signature=data.signature,
        )
        return await edge.scheduler(
            "submit_result", command, SubmitResultReply, correlation_id=correlation_id(request.scope)
        )

    @post(
        "/job/fail",
        summary="Report a job failed",
        description="The job is retried after a backoff, or dead when it has no attempts left.",
        status_code=200,
        security=_SESSION_TOKEN,
        guards=[requires_session_token],
    )
    async def job_fail(
        self, request: Request[Any, Any, Any], data: JSONBody[JobFailRequest], edge: NamedDependency[EdgeContext]
    ) -> FailJobReply:
        beat = await _session(request, edge)
        await edge.limits.check(beat.node_public_id, "http.job_fail")
        command = FailJob(
            node_id=beat.node_public_id, job_id=data.job_id, reason=data.reason, kind=data.kind, usage=data.usage
        )
        return await edge.scheduler("fail_job", command, FailJobReply, correlation_id=correlation_id(request.scope))

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
