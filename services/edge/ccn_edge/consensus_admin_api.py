"""Operators' view of consensus groups (ADR 0024, 0026): a group's results and agreement
classes, and the reviewer's decision on a group the replicas could not settle. Every route needs
the admin token; a decision names the admin, and the validation service records it on the
group's aggregate."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from ccn_edge.context import EdgeContext
from ccn_proto.consensus import (
    AcceptConsensus,
    ConsensusGroupView,
    GetConsensus,
    RejectConsensus,
    RequiredComment,
    ReviewComment,
)
from ccn_proto.constraints import Sha256Hex
from ccn_web.auth import ADMIN_SECURITY, DEFAULT_ADMIN_NAME, admin_guard, admin_name
from ccn_web.http import correlation_id

GroupIdPath = Annotated[
    str,
    PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The group's first job's id."),
]
VALIDATION = "validation"


class AcceptRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    checksum: Sha256Hex  # a result of the agreement class the reviewer takes
    comment: ReviewComment = ""


class RejectRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    comment: RequiredComment


async def _validation(request: Request[Any, Any, Any], edge: EdgeContext, name: str, command: msgspec.Struct) -> Any:
    return await edge.commands.call(
        VALIDATION, name, command, ConsensusGroupView, correlation_id=correlation_id(request.scope)
    )


@get("/{group_id:str}", summary="A consensus group: its results, agreement classes and answer", security=ADMIN_SECURITY)
async def get_group(
    request: Request[Any, Any, Any], group_id: GroupIdPath, edge: NamedDependency[EdgeContext]
) -> ConsensusGroupView:
    reply: ConsensusGroupView = await _validation(request, edge, "get_consensus", GetConsensus(group_id=group_id))
    return reply


@post(
    "/{group_id:str}/accept",
    summary="Settle a group in review with the agreement class of one of its results",
    status_code=200,
    security=ADMIN_SECURITY,
)
async def accept_group(
    request: Request[Any, Any, Any],
    group_id: GroupIdPath,
    data: JSONBody[AcceptRequest],
    edge: NamedDependency[EdgeContext],
) -> ConsensusGroupView:
    command = AcceptConsensus(
        group_id=group_id, checksum=data.checksum, reviewer=admin_name(request), comment=data.comment
    )
    reply: ConsensusGroupView = await _validation(request, edge, "accept_consensus", command)
    return reply


@post(
    "/{group_id:str}/reject",
    summary="End a group in review with no answer: its jobs are cancelled",
    status_code=200,
    security=ADMIN_SECURITY,
)
async def reject_group(
    request: Request[Any, Any, Any],
    group_id: GroupIdPath,
    data: JSONBody[RejectRequest],
    edge: NamedDependency[EdgeContext],
) -> ConsensusGroupView:
    command = RejectConsensus(group_id=group_id, reviewer=admin_name(request), comment=data.comment)
    reply: ConsensusGroupView = await _validation(request, edge, "reject_consensus", command)
    return reply


def consensus_admin_router(admin_token: str, admin_name: str = DEFAULT_ADMIN_NAME) -> Router:
    return Router(
        "/admin/consensus",
        route_handlers=[get_group, accept_group, reject_group],
        guards=[admin_guard(admin_token, admin_name)],
        tags=["consensus"],
    )
