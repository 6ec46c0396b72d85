"""POST /compute/jobs/{job_id}/fetch: a URL for a job, fetched by the fetch proxy (the HTTP form
of the `fetch` frame; ccn_edge.fetch_relay says what the edge does and does not judge).

The node is the session token's. The body is a closed FetchRequest (URL and validators), held
to the edge's body limit; the answer is the proxy's FetchOutcome as JSON, with 200 whatever the
site answered or the proxy refused: the outcome's `type` says which. Refusals of the request
itself are typed: 401 the session, 429 + Retry-After the node's fetch rate or its fetches in
flight, 503 + Retry-After the proxy did not answer (down, at capacity, slow)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter

from ccn_edge.compute_api import bearer_token, requires_session_token
from ccn_edge.context import EdgeContext
from ccn_proto.compute_api import FetchRequest
from ccn_proto.fetch import FetchOutcome, FetchPage
from ccn_web.http import correlation_id

_SESSION_TOKEN: list[dict[str, list[str]]] = [{"NodeSessionToken": []}]
JobIdPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job's id.")]


@post(
    "/compute/jobs/{job_id:str}/fetch",
    summary="Fetch a URL for a job this node holds",
    description="The fetch proxy fetches `url` for the job, if the job's payload allows it and the site's "
    "policy does (allow-list, robots.txt, rate limits, egress policy). 200 with the outcome: `fetched` (the "
    "site's answer; its body, if any, by reference: read it from GET /compute/jobs/{job_id}/documents/{sha256}), "
    "`refused` (policy said no; with `retry_after`, ask again after it) or `failed`. 503 + Retry-After when the "
    "proxy did not answer; 429 + Retry-After past the node's fetch rate or its fetches in flight.",
    status_code=200,
    security=_SESSION_TOKEN,
    guards=[requires_session_token],
    tags=["nodes"],
    responses={
        429: ResponseSpec(None, description="Over the node's fetch rate, or too many of its fetches in flight"),
        503: ResponseSpec(None, description="The fetch proxy did not answer; retry after Retry-After"),
    },
)
async def job_fetch(
    request: Request[Any, Any, Any],
    job_id: JobIdPath,
    data: JSONBody[FetchRequest],
    edge: NamedDependency[EdgeContext],
) -> FetchOutcome:
    correlation = correlation_id(request.scope)
    node = await edge.session_node(bearer_token(request), correlation_id=correlation)
    await edge.limits.check(node.node_public_id, "http.fetch")
    command = FetchPage(
        job_id=job_id,
        node_id=node.node_public_id,
        url=data.url,
        if_none_match=data.if_none_match,
        if_modified_since=data.if_modified_since,
    )
    return await edge.fetches.fetch(command, correlation_id=correlation)
