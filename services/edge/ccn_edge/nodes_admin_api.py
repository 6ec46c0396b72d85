"""Operators' node API: a node's standing and record, and the actions on it (ban, unban,
shadow-ban, drain, budgets). Every route needs the admin token; each action becomes a registry
command naming the admin (the token's name) and the reason, so the audit trail says who did
what and why."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post, put
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, PathParameter

from ccn_edge.context import EdgeContext
from ccn_proto.constraints import Text
from ccn_proto.nodes import NodeBudgetsSet
from ccn_proto.registry import (
    AdminNodeAction,
    BanNode,
    DrainNode,
    GetNode,
    NodeActionReply,
    NodeView,
    SetNodeBudgets,
    ShadowBanNode,
    UnbanNode,
)
from ccn_web.auth import ADMIN_SECURITY, DEFAULT_ADMIN_NAME, admin_guard, admin_name

NodeIdPath = Annotated[str, PathParameter(pattern=r"^[0-9A-Za-z-]{1,64}$", description="The node's public id.")]


class NodeActionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text


class BudgetsRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """None (or absent): no limit of that kind."""

    max_bandwidth_per_min: Annotated[int, msgspec.Meta(ge=1, le=2**40)] | None = None
    max_cpu_time_per_job_s: Annotated[float, msgspec.Meta(gt=0.0, le=86_400.0)] | None = None
    max_memory_mb: Annotated[int, msgspec.Meta(ge=16, le=1_048_576)] | None = None


ACTIONS: dict[str, type[AdminNodeAction]] = {
    "ban": BanNode,
    "unban": UnbanNode,
    "shadow-ban": ShadowBanNode,
    "drain": DrainNode,
}


@get(
    "/{node_id:str}",
    summary="A node: standing, health, backoff, quota, reputation and its inputs",
    security=ADMIN_SECURITY,
)
async def node_status(
    request: Request[Any, Any, Any], node_id: NodeIdPath, edge: NamedDependency[EdgeContext]
) -> NodeView:
    view: NodeView = await edge.registry(request, "get_node", GetNode(node_id=node_id), NodeView)
    return view


def _action_route(action: str, summary: str) -> HTTPRouteHandler:
    """POST /admin/nodes/{node_id}/<action>: one registry command naming the admin and the reason.
    The four actions share everything but their path and what they do."""

    @post(
        f"/{{node_id:str}}/{action}",
        summary=summary,
        status_code=200,
        security=ADMIN_SECURITY,
        operation_id=f"{action.replace('-', '_')}_node",
    )
    async def act(
        request: Request[Any, Any, Any],
        node_id: NodeIdPath,
        data: JSONBody[NodeActionRequest],
        edge: NamedDependency[EdgeContext],
    ) -> NodeActionReply:
        command = ACTIONS[action](node_id=node_id, reason=data.reason, by=admin_name(request))
        reply: NodeActionReply = await edge.registry(request, action.replace("-", "_"), command, NodeActionReply)
        return reply

    return act


ACTION_ROUTES = [
    _action_route("ban", "Ban a node: every request refused (403), its jobs go back"),
    _action_route("unban", "Lift a ban, a shadow-ban and a drain"),
    _action_route("shadow-ban", "Shadow-ban a node: it keeps getting work, its results never complete a job"),
    _action_route("drain", "Drain a node: it finishes its jobs, gets no new ones, then is told bye"),
]


@put("/{node_id:str}/budgets", summary="Set a node's resource budgets", status_code=200, security=ADMIN_SECURITY)
async def set_budgets(
    request: Request[Any, Any, Any],
    node_id: NodeIdPath,
    data: JSONBody[BudgetsRequest],
    edge: NamedDependency[EdgeContext],
) -> NodeActionReply:
    budgets = NodeBudgetsSet(
        max_bandwidth_per_min=data.max_bandwidth_per_min,
        max_cpu_time_per_job_s=data.max_cpu_time_per_job_s,
        max_memory_mb=data.max_memory_mb,
        by=admin_name(request),
    )
    command = SetNodeBudgets(node_id=node_id, budgets=budgets)
    reply: NodeActionReply = await edge.registry(request, "set_budgets", command, NodeActionReply)
    return reply


def nodes_admin_router(admin_token: str, admin_name: str = DEFAULT_ADMIN_NAME) -> Router:
    return Router(
        "/admin/nodes",
        route_handlers=[node_status, *ACTION_ROUTES, set_budgets],
        guards=[admin_guard(admin_token, admin_name)],
        tags=["nodes"],
    )
