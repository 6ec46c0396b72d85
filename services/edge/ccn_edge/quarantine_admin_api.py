"""Operators' quarantine actions: release (accept anyway, as the job's answer) or discard a
result the validation service rejected. Every route needs the admin token; each becomes a
validation command naming the admin (the token's name, never the body's) and the comment, so
the audit trail says who decided what and why. The list of results in quarantine is analytics'
(GET /admin/quarantine there)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, PathParameter

from ccn_edge.context import EdgeContext
from ccn_proto.receipts import Attempt, NodeId
from ccn_proto.results import Comment
from ccn_proto.validation import DiscardResult, QuarantineDecisionReply, ReleaseResult, ResultChecksum
from ccn_web.auth import ADMIN_SECURITY, DEFAULT_ADMIN_NAME, admin_guard, admin_name
from ccn_web.http import correlation_id

VALIDATION = "validation"
JobIdPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job's id.")]


class QuarantineDecisionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The result, as GET /admin/quarantine lists it, and the admin's comment (one line)."""

    node_id: NodeId
    attempt: Attempt
    checksum: ResultChecksum
    comment: Comment


DECISIONS: dict[str, type[ReleaseResult] | type[DiscardResult]] = {
    "release": ReleaseResult,
    "discard": DiscardResult,
}


def _decision_route(decision: str, summary: str) -> HTTPRouteHandler:
    @post(
        f"/{{job_id:str}}/{decision}",
        summary=summary,
        status_code=200,
        security=ADMIN_SECURITY,
        operation_id=f"{decision}_quarantined_result",
    )
    async def decide(
        request: Request[Any, Any, Any],
        job_id: JobIdPath,
        data: JSONBody[QuarantineDecisionRequest],
        edge: NamedDependency[EdgeContext],
    ) -> QuarantineDecisionReply:
        command = DECISIONS[decision](
            job_id=job_id,
            node_id=data.node_id,
            attempt=data.attempt,
            checksum=data.checksum,
            by=admin_name(request),
            comment=data.comment,
        )
        reply: QuarantineDecisionReply = await edge.commands.call(
            VALIDATION,
            f"{decision}_result",
            command,
            QuarantineDecisionReply,
            correlation_id=correlation_id(request.scope),
        )
        return reply

    return decide


def quarantine_admin_router(admin_token: str, admin_name: str = DEFAULT_ADMIN_NAME) -> Router:
    return Router(
        "/admin/quarantine",
        route_handlers=[
            _decision_route(
                "release",
                "Release a rejected result: accepted anyway, it becomes the job's answer (409 in the reply's "
                "settle_error when the job completed otherwise meanwhile)",
            ),
            _decision_route("discard", "Discard a rejected result: it leaves quarantine and is never used"),
        ],
        guards=[admin_guard(admin_token, admin_name)],
        tags=["quarantine"],
    )
