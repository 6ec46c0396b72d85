"""Operators' crawl-campaign API: start a campaign, see its progress, pause and resume it. Every
route needs the admin token; each becomes a crawler command naming the admin, so a campaign's
history says who started, paused or resumed it."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from ccn_edge.context import EdgeContext
from ccn_proto.constraints import Text
from ccn_proto.crawl import (
    CampaignList,
    CampaignSettings,
    CampaignView,
    GetCampaign,
    ListCampaigns,
    PauseCampaign,
    ResumeCampaign,
    StartCampaign,
)
from ccn_web.auth import ADMIN_SECURITY, DEFAULT_ADMIN_NAME, admin_guard, admin_name
from ccn_web.http import correlation_id

CampaignIdPath = Annotated[
    str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="The campaign's id (a slug).")
]
CRAWLER = "crawler"


class PauseRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text | None = None


async def _crawler(request: Request[Any, Any, Any], edge: EdgeContext, name: str, command: msgspec.Struct) -> Any:
    return await edge.commands.call(
        CRAWLER,
        name,
        command,
        CampaignList if isinstance(command, ListCampaigns) else CampaignView,
        correlation_id=correlation_id(request.scope),
    )


@get("/", summary="Every crawl campaign and its progress", security=ADMIN_SECURITY)
async def list_campaigns(request: Request[Any, Any, Any], edge: NamedDependency[EdgeContext]) -> CampaignList:
    reply: CampaignList = await _crawler(request, edge, "list_campaigns", ListCampaigns())
    return reply


@get("/{campaign_id:str}", summary="A crawl campaign's progress", security=ADMIN_SECURITY)
async def get_campaign(
    request: Request[Any, Any, Any], campaign_id: CampaignIdPath, edge: NamedDependency[EdgeContext]
) -> CampaignView:
    reply: CampaignView = await _crawler(request, edge, "get_campaign", GetCampaign(campaign_id=campaign_id))
    return reply


@put(
    "/{campaign_id:str}",
    summary="Start a crawl campaign (the same settings again: nothing changes; others: 409)",
    status_code=200,
    security=ADMIN_SECURITY,
)
async def start_campaign(
    request: Request[Any, Any, Any],
    campaign_id: CampaignIdPath,
    data: JSONBody[CampaignSettings],
    edge: NamedDependency[EdgeContext],
) -> CampaignView:
    command = StartCampaign(campaign_id=campaign_id, settings=data, by=admin_name(request))
    reply: CampaignView = await _crawler(request, edge, "start_campaign", command)
    return reply


@post("/{campaign_id:str}/pause", summary="Pause a crawl campaign", status_code=200, security=ADMIN_SECURITY)
async def pause_campaign(
    request: Request[Any, Any, Any],
    campaign_id: CampaignIdPath,
    data: JSONBody[PauseRequest],
    edge: NamedDependency[EdgeContext],
) -> CampaignView:
    command = PauseCampaign(campaign_id=campaign_id, by=admin_name(request), reason=data.reason)
    reply: CampaignView = await _crawler(request, edge, "pause_campaign", command)
    return reply


@post("/{campaign_id:str}/resume", summary="Resume a paused crawl campaign", status_code=200, security=ADMIN_SECURITY)
async def resume_campaign(
    request: Request[Any, Any, Any], campaign_id: CampaignIdPath, edge: NamedDependency[EdgeContext]
) -> CampaignView:
    command = ResumeCampaign(campaign_id=campaign_id, by=admin_name(request))
    reply: CampaignView = await _crawler(request, edge, "resume_campaign", command)
    return reply


def campaigns_admin_router(admin_token: str, admin_name: str = DEFAULT_ADMIN_NAME) -> Router:
    return Router(
        "/admin/crawl/campaigns",
        route_handlers=[list_campaigns, get_campaign, start_campaign, pause_campaign, resume_campaign],
        guards=[admin_guard(admin_token, admin_name)],
        tags=["crawl"],
    )
