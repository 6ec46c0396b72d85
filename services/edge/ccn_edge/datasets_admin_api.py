"""Operators' dataset API: the review queue (list, approve, reject), versions (list, publish),
diffs between versions, why a field has its value, a record, and the retraction of a node.
Every route needs the admin token; each decision is a merge-service command naming the admin,
so the dataset's history and the audit trail say who decided and why."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import MediaType, Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from ccn_edge.context import EdgeContext
from ccn_proto import merge as api
from ccn_proto.constraints import Text
from ccn_proto.datasets import (
    ApproveReview,
    Comment,
    DatasetName,
    Identifier,
    PublishVersion,
    RecordId,
    RejectReview,
)
from ccn_web.auth import ADMIN_SECURITY, DEFAULT_ADMIN_NAME, admin_guard, admin_name
from ccn_web.http import correlation_id

DatasetPath = Annotated[
    str, PathParameter(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="The dataset's name (e.g. grants).")
]
ReviewIdPath = Annotated[str, PathParameter(pattern=r"^rev-[0-9a-f]{24}$", description="The held change's id.")]
RecordIdPath = Annotated[
    str, PathParameter(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description="The record's id.")
]
FieldPath = Annotated[str, PathParameter(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="The field's name.")]
DatasetQuery = Annotated[
    str, QueryParameter(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="The dataset (default grants).")
]


class ReviewDecision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A reviewer's decision: the comment is required (the audit trail keeps it); `record_id`,
    for a change held because its match was ambiguous, names the record it joins."""

    comment: Annotated[Comment, msgspec.Meta(min_length=1)]
    dataset: DatasetName = api.DEFAULT_DATASET
    record_id: RecordId | None = None


class PublishRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    note: Text = ""


class RetractRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    node_id: Identifier
    since: datetime | None = None
    reason: Text = ""


async def _merge(request: Request[Any, Any, Any], edge: EdgeContext, name: str, command: Any, reply: type[Any]) -> Any:
    return await edge.commands.call(api.SERVICE, name, command, reply, correlation_id=correlation_id(request.scope))


@get(
    "/admin/review",
    summary="Changes waiting for a reviewer, each with its field-by-field diff",
    security=ADMIN_SECURITY,
)
async def list_reviews(
    request: Request[Any, Any, Any],
    edge: NamedDependency[EdgeContext],
    dataset: DatasetQuery = api.DEFAULT_DATASET,
    limit: Annotated[int, QueryParameter(ge=1, le=api.MAX_LISTED_REVIEWS)] = 100,
) -> api.ReviewList:
    reply: api.ReviewList = await _merge(
        request, edge, "list_reviews", api.ListReviews(dataset=dataset, limit=limit), api.ReviewList
    )
    return reply


@post("/admin/review/{review_id:str}/approve", summary="Apply a held change", status_code=200, security=ADMIN_SECURITY)
async def approve_review(
    request: Request[Any, Any, Any],
    review_id: ReviewIdPath,
    data: JSONBody[ReviewDecision],
    edge: NamedDependency[EdgeContext],
) -> api.ReviewDecided:
    command = ApproveReview(
        dataset=data.dataset,
        review_id=review_id,
        reviewer=admin_name(request),
        comment=data.comment,
        record_id=data.record_id,
    )
    reply: api.ReviewDecided = await _merge(request, edge, "approve_review", command, api.ReviewDecided)
    return reply


@post(
    "/admin/review/{review_id:str}/reject",
    summary="Never apply a held change",
    status_code=200,
    security=ADMIN_SECURITY,
)
async def reject_review(
    request: Request[Any, Any, Any],
    review_id: ReviewIdPath,
    data: JSONBody[ReviewDecision],
    edge: NamedDependency[EdgeContext],
) -> api.ReviewDecided:
    command = RejectReview(
        dataset=data.dataset, review_id=review_id, reviewer=admin_name(request), comment=data.comment
    )
    reply: api.ReviewDecided = await _merge(request, edge, "reject_review", command, api.ReviewDecided)
    return reply


@post(
    "/admin/retractions",
    summary="Retract a node's contributions from every dataset and re-queue its jobs",
    status_code=200,
    security=ADMIN_SECURITY,
)
async def retract_node(
    request: Request[Any, Any, Any], data: JSONBody[RetractRequest], edge: NamedDependency[EdgeContext]
) -> api.RetractionReply:
    command = api.RetractNodeEverywhere(
        node_id=data.node_id, since=data.since, by=admin_name(request), reason=data.reason
    )
    reply: api.RetractionReply = await _merge(request, edge, "retract_node", command, api.RetractionReply)
    return reply


@get("/datasets/{name:str}/versions", summary="Every published version of a dataset", security=ADMIN_SECURITY)
async def list_versions(
    request: Request[Any, Any, Any], name: DatasetPath, edge: NamedDependency[EdgeContext]
) -> api.VersionList:
    reply: api.VersionList = await _merge(
        request, edge, "list_versions", api.ListVersions(dataset=name), api.VersionList
    )
    return reply


@post(
    "/datasets/{name:str}/versions",
    summary="Publish the dataset's next version",
    status_code=201,
    security=ADMIN_SECURITY,
)
async def publish_version(
    request: Request[Any, Any, Any],
    name: DatasetPath,
    data: JSONBody[PublishRequest],
    edge: NamedDependency[EdgeContext],
) -> api.VersionView:
    command = PublishVersion(dataset=name, by=admin_name(request), note=data.note)
    reply: api.VersionView = await _merge(request, edge, "publish_version", command, api.VersionView)
    return reply


@get(
    "/datasets/{name:str}/diff",
    summary="Records added, removed and changed between two versions (JSON, or format=table)",
    security=ADMIN_SECURITY,
)
async def diff_versions(
    request: Request[Any, Any, Any],
    name: DatasetPath,
    edge: NamedDependency[EdgeContext],
    from_version: Annotated[int, QueryParameter(name="from", ge=1, le=2**31)],
    to_version: Annotated[int, QueryParameter(name="to", ge=1, le=2**31)],
    output: Annotated[Literal["json", "table"], QueryParameter(name="format")] = "json",
    limit: Annotated[int, QueryParameter(ge=1, le=api.MAX_DIFF_RECORDS)] = 500,
) -> Response[Any]:
    command = api.DiffVersions(
        dataset=name, from_version=from_version, to_version=to_version, table=output == "table", limit=limit
    )
    reply: api.DiffReply = await _merge(request, edge, "diff_versions", command, api.DiffReply)
    if output == "table":
        return Response(reply.table or "", media_type=MediaType.TEXT)
    return Response(reply)


@get(
    "/datasets/{name:str}/records/{record_id:str}/explain/{field:str}",
    summary="Why a record's field has its value: the rule, the winner, every loser and why",
    security=ADMIN_SECURITY,
)
async def explain_field(
    request: Request[Any, Any, Any],
    name: DatasetPath,
    record_id: RecordIdPath,
    field: FieldPath,
    edge: NamedDependency[EdgeContext],
) -> api.FieldExplanation:
    command = api.ExplainField(dataset=name, record_id=record_id, field=field)
    reply: api.FieldExplanation = await _merge(request, edge, "explain_field", command, api.FieldExplanation)
    return reply


@get("/datasets/{name:str}/records/{record_id:str}", summary="A record as it stands now", security=ADMIN_SECURITY)
async def get_record(
    request: Request[Any, Any, Any], name: DatasetPath, record_id: RecordIdPath, edge: NamedDependency[EdgeContext]
) -> api.RecordView:
    command = api.GetRecord(dataset=name, record_id=record_id)
    reply: api.RecordView = await _merge(request, edge, "get_record", command, api.RecordView)
    return reply


def datasets_admin_router(admin_token: str, admin_name: str = DEFAULT_ADMIN_NAME) -> Router:
    return Router(
        "/",
        route_handlers=[
            list_reviews,
            approve_review,
            reject_review,
            retract_node,
            list_versions,
            publish_version,
            diff_versions,
            explain_field,
            get_record,
        ],
        guards=[admin_guard(admin_token, admin_name)],
        tags=["datasets"],
    )
