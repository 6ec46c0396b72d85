"""GET /compute/jobs/{job_id}/documents/{sha256}: a document body, named by reference in a job's
payload, for the node that holds the job.

A volunteer node never reaches NATS, so a body in the document object store comes to it through
here. The edge asks the scheduler who holds the job (`get_job`), looks for the digest among the
references the job's payload names (`document_for`, pure), and streams the stored body one
chunk at a time (ccn_core.document_bodies.StoredBody). A body the fetch proxy fetched for the
job (a crawl's page) is named by no payload: it is served when the fetch-grants bucket holds
`<job_id>.<sha256>` (the proxy writes one per body it stored for a job), with its stored size
and as application/octet-stream (the node has the reference from the fetch's answer, and checks
the bytes against it). Every refusal is typed: 401 a bad session token, 403 a job another node
holds, 404 no such job, digest (neither named nor granted) or body, 409 a job not claimed or a
body whose stored size is not the reference's, 413 a body over the edge's limit.
The response as a whole has a deadline: a client that stops reading has its connection closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Response, Router, get
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter
from litestar.response import Stream
from litestar.types import ASGIApp, Receive, Scope, Send
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from ccn_core.document_bodies import BodyCorrupt, BodyNotFound, BodySizeMismatch, BodyStreams
from ccn_core.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, Unavailable
from ccn_core.logging import get_logger
from ccn_core.shared_limiter import KV_TIMEOUT_S
from ccn_core.topology import FETCH_GRANTS
from ccn_edge.compute_api import bearer_token, requires_session_token
from ccn_edge.context import EdgeContext
from ccn_proto.documents import DocumentRef
from ccn_proto.scheduler import GetJob, JobView
from ccn_web.http import correlation_id

log = get_logger("ccn.edge.documents")

# A payload is at most one command (768 KiB) of JSON, but nested without end it could still
# cost the walk more than the request is worth; references sit near the top in every job type.
MAX_WALK_VALUES: Final = 10_000
MAX_WALK_DEPTH: Final = 16
_SESSION_TOKEN: list[dict[str, list[str]]] = [{"NodeSessionToken": []}]

Sha256Path = Annotated[
    str, PathParameter(pattern=r"^[0-9a-f]{64}$", description="The body's sha256, as the job's payload names it.")
]
JobIdPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job's id.")]


def named_references(
    payload: object, *, max_values: int = MAX_WALK_VALUES, max_depth: int = MAX_WALK_DEPTH
) -> dict[str, DocumentRef]:
    """Every DocumentRef-shaped object in the payload by its sha256 (the first, if a digest is
    named twice), found within `max_values` values and `max_depth` levels; what lies beyond is
    not looked at, so a body named only there is not served."""
    found: dict[str, DocumentRef] = {}
    pending: list[tuple[object, int]] = [(payload, 0)]
    visited = 0
    while pending and visited < max_values:
        value, depth = pending.pop()
        visited += 1
        if isinstance(value, dict):
            if value.get("kind") == "ref" and (ref := _as_reference(value)) is not None:
                found.setdefault(ref.sha256, ref)
                continue
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = list(value)
        else:
            continue
        if depth < max_depth:
            pending.extend((child, depth + 1) for child in reversed(children))
    return found


def _as_reference(value: dict[Any, Any]) -> DocumentRef | None:
    try:
        return msgspec.convert(value, DocumentRef)
    except msgspec.ValidationError:
        return None


def held_by(job: JobView, node_id: str) -> None:
    """Nothing, if `node_id` holds the claimed job; the typed refusal otherwise."""
    if job.status != "claimed":
        raise Conflict(f"job {job.job_id} is {job.status}: only a claimed job's documents can be read")
    if job.holder != node_id:
        raise Forbidden(f"job {job.job_id} is not held by this node")


def within_bound(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise PayloadTooLarge(f"the document is {size} bytes; this edge serves at most {max_bytes}")


def document_for(job: JobView, node_id: str, sha256: str, max_bytes: int) -> DocumentRef | None:
    """The reference `node_id` may read the body of (None: the payload names no such digest, so
    only a fetch grant could let it be read), or the typed refusal: the job must be claimed by
    this node, and the body must be within bounds."""
    held_by(job, node_id)
    ref = named_references(job.payload).get(sha256)
    if ref is not None:
        within_bound(ref.size, max_bytes)
    return ref


class FetchGrants:
    """Which bodies the fetch proxy fetched for which job: key `<job_id>.<sha256>` in the
    FETCH_GRANTS bucket (its value is not read: the key is the grant)."""

    def __init__(self, js: JetStreamContext, bucket: str = FETCH_GRANTS.bucket) -> None:
        self._js = js
        self._bucket_name = bucket
        self._bucket: KeyValue | None = None

    async def granted(self, job_id: str, sha256: str) -> bool:
        try:
            async with asyncio.timeout(KV_TIMEOUT_S):
                if self._bucket is None:
                    self._bucket = await self._js.key_value(self._bucket_name)
                await self._bucket.get(f"{job_id}.{sha256}")
        except (BucketNotFoundError, NotFoundError, KeyNotFoundError):  # a deleted key is not found too
            return False
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"the fetch grants cannot be read now: {type(exc).__name__}", retry_after=1.0) from None
        return True


class DocumentServer:
    """What the endpoint needs besides the edge's commands: the bodies, the grants of fetched
    bodies (None: this edge serves only bodies a payload names), and its bounds."""

    def __init__(self, streams: BodyStreams, *, max_bytes: int, grants: FetchGrants | None = None) -> None:
        self.streams = streams
        self.max_bytes = max_bytes
        self.grants = grants


def within_deadline(timeout_s: float) -> Callable[[ASGIApp], ASGIApp]:
    """ASGI middleware: the whole exchange, the body's last byte included, within `timeout_s`.
    Past it the response is abandoned and the server closes the connection (it sees a response
    that never completed); a node then holds fewer bytes than Content-Length and fails the job."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                async with asyncio.timeout(timeout_s):
                    await app(scope, receive, send)
            except TimeoutError:
                log.warning("document response abandoned at its deadline", path=scope.get("path"), timeout_s=timeout_s)

        return middleware

    return wrap


async def _passed_on(chunks: AsyncIterator[bytes], sha256: str) -> AsyncIterator[bytes]:
    """The chunks, until one proves the body wrong: then the response stops short of its
    Content-Length, which the node reads as a failed download."""
    try:
        async for chunk in chunks:
            yield chunk
    except BodyCorrupt as exc:
        log.error("a stored body is not what its name says; its download was cut", sha256=sha256, detail=str(exc))


@get(
    "/jobs/{job_id:str}/documents/{sha256:str}",
    summary="Read a document body of a job this node holds",
    description='The body a claimed job\'s payload names by reference (`{"kind": "ref", "sha256", "size", '
    '"media_type"}`), streamed with its media type and `Content-Length` (the reference\'s size). Only the node '
    "holding the job may read it, only while the job is claimed, and only a digest the payload names. Check the "
    "bytes' sha256 against the reference: a body cut short (the server's deadline, a corrupt store) is not one. "
    "A body the fetch proxy fetched for the job (the `body` of a fetch's outcome) is served too, with its stored "
    "size, as application/octet-stream.",
    security=_SESSION_TOKEN,
    guards=[requires_session_token],
    responses={
        200: ResponseSpec(
            data_container=bytes,
            media_type="application/octet-stream",
            description="The body; Content-Type is the reference's media type",
            generate_examples=False,
        ),
        403: ResponseSpec(None, description="Another node holds the job"),
        404: ResponseSpec(
            None, description="No such job, a digest neither among its references nor fetched for it, or no such body"
        ),
        409: ResponseSpec(None, description="The job is not claimed, or the stored body is not the reference's size"),
        413: ResponseSpec(None, description="The body is over this edge's CCN_MAX_DOCUMENT_BYTES"),
    },
    response_headers=[
        ResponseHeader(name="X-Content-Sha256", description="The body's sha256, as requested", documentation_only=True)
    ],
)
async def job_document(
    request: Request[Any, Any, Any],
    job_id: JobIdPath,
    sha256: Sha256Path,
    edge: NamedDependency[EdgeContext],
    documents: NamedDependency[DocumentServer],
) -> Response[Any]:
    correlation = correlation_id(request.scope)
    node = await edge.session_node(bearer_token(request), correlation_id=correlation)
    job = await edge.scheduler("get_job", GetJob(job_id=job_id), JobView, correlation_id=correlation)
    ref = document_for(job, node.node_public_id, sha256, documents.max_bytes)
    if ref is None and (documents.grants is None or not await documents.grants.granted(job_id, sha256)):
        raise NotFound(f"job {job_id} names no document {sha256}, and none was fetched for it")
    try:
        body = await documents.streams.open(sha256, ref.size if ref is not None else None)
    except BodySizeMismatch as exc:
        raise Conflict(str(exc)) from None
    except BodyNotFound as exc:
        raise NotFound(str(exc)) from None
    within_bound(body.size, documents.max_bytes)
    headers = {"Content-Length": str(body.size), "X-Content-Sha256": sha256}
    if ref is None:
        media_type = "application/octet-stream"
    else:
        media_type = ref.media_type if ref.charset is None else f"{ref.media_type}; charset={ref.charset}"
    return Stream(_passed_on(body.chunks(), sha256), media_type=media_type, headers=headers)


def documents_router(timeout_s: float) -> Router:
    return Router("/compute", route_handlers=[job_document], middleware=[within_deadline(timeout_s)], tags=["nodes"])
