"""GET /compute/jobs/{job_id}/receipt: the service's signed receipt for a node's result, for that
node. A result answered `validating` has no receipt yet: the validation service signs one when
it judges the result, in the verdict event itself (`result.validated` / `result.rejected`, or
an admin's `result.released`, on the job's result aggregate in CCN_RESULTS: ADR 0027), and the
node fetches it here afterwards (ccn_cli.node.receipt_fetcher).

The edge reads the newest event of `ccn.result.<job_id>.*` (one direct get by subject: the edge
never folds a stream) and hands its receipt only to the node it names. When the newest carries
none (a discard) or names another node (the job was tried again after this node's result was
rejected), the job's result events are read by subject, at most MAX_RESULT_EVENTS_READ of them,
for this node's own newest receipt. 401 a bad session token; 404 no receipt issued yet (ask
again later); 403 the job's receipts name only other nodes (a node learns nothing of another's
work). A stored message over the bound, or one that does not decode, is the store's fault, not
the caller's: 503, logged. Receipts stored as events of their own (`result.receipt_issued`, by
releases before ADR 0027) are read too."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

import msgspec
from litestar import Request, Router, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ccn_core import subjects
from ccn_core.errors import Forbidden, NotFound, Unavailable
from ccn_core.eventstore import EventStore
from ccn_core.logging import get_logger
from ccn_core.shared_limiter import KV_TIMEOUT_S
from ccn_core.topology import RESULTS
from ccn_edge.compute_api import bearer_token, requires_session_token
from ccn_edge.context import EdgeContext
from ccn_proto.envelope import Envelope
from ccn_proto.receipts import MAX_RECEIPT_BYTES, Receipt
from ccn_proto.results import (
    MAX_COMMENT_CHARS,
    MAX_FIELD_PATH_CHARS,
    MAX_REASON_MESSAGE_CHARS,
    MAX_REASONS,
    ResultEvent,
    receipt_in,
)
from ccn_web.http import correlation_id

log = get_logger("ccn.edge.receipts")

# a result event is its envelope (ids, times, correlation: well under 4 KiB) around a verdict and
# its receipt; the largest verdict is a rejection of MAX_REASONS reasons, each a message and a
# field path of up to 4 UTF-8 bytes a character, or a release with its comment
MAX_RESULT_EVENT_BYTES: Final = (
    4 * 1024
    + MAX_RECEIPT_BYTES
    + MAX_REASONS * (4 * (MAX_REASON_MESSAGE_CHARS + MAX_FIELD_PATH_CHARS) + 64)
    + 4 * MAX_COMMENT_CHARS
)
# a job has a verdict per result judged (at most ccn_validation.quarantine.MAX_RESULTS_PER_JOB)
# and one per admin's decision: far fewer than this
MAX_RESULT_EVENTS_READ: Final = 256
_SESSION_TOKEN: list[dict[str, list[str]]] = [{"NodeSessionToken": []}]
_decode = msgspec.json.Decoder(Envelope[ResultEvent]).decode
JobIdPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job's id.")]


class IssuedReceipts:
    """The newest receipt issued for a job's result, read from CCN_RESULTS."""

    def __init__(
        self, js: JetStreamContext | None, store: EventStore | None = None, *, timeout_s: float = KV_TIMEOUT_S
    ) -> None:
        self._js = js
        self._store = store
        self._timeout_s = timeout_s

    async def for_node(self, job_id: str, node_id: str) -> Receipt | None:
        """The newest receipt of the job naming `node_id`, else the newest of the job (another
        node's, which the caller refuses); None when none was issued yet."""
        newest = await self.newest(job_id)
        if (newest is not None and newest.node_id == node_id) or self._store is None:
            return newest
        own: Receipt | None = None
        latest: Receipt | None = None
        read = 0
        try:
            async with asyncio.timeout(self._timeout_s):
                async for batch in self._store.scan(RESULTS.name, subjects.aggregate_filter("result", job_id)):
                    for stored in batch:
                        read += 1
                        receipt = _receipt_of(stored.data, job_id)
                        latest = receipt or latest
                        if receipt is not None and receipt.node_id == node_id:
                            own = receipt
                    if read >= MAX_RESULT_EVENTS_READ:
                        log.warning("a job's result events were read in part", job_id=job_id, read=read)
                        break
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"receipts cannot be read now: {type(exc).__name__}", retry_after=1.0) from None
        return own or newest or latest

    async def newest(self, job_id: str) -> Receipt | None:
        """The receipt of the job's newest result event; None when that one carries none (none
        was issued yet, or the newest is a discard)."""
        if self._js is None:
            raise Unavailable("this edge reads no receipts")
        try:
            async with asyncio.timeout(self._timeout_s):
                message = await self._js.get_last_msg(RESULTS.name, subjects.aggregate_filter("result", job_id))
        except NotFoundError:
            return None
        except (TimeoutError, NatsError) as exc:
            raise Unavailable(f"receipts cannot be read now: {type(exc).__name__}", retry_after=1.0) from None
        return _receipt_of(message.data or b"", job_id)


def _receipt_of(data: bytes, job_id: str) -> Receipt | None:
    """The receipt a stored result event carries, None if it carries none; Unavailable (the
    store's fault) if it is over its bound or does not decode."""
    if len(data) > MAX_RESULT_EVENT_BYTES:
        log.error("a stored result event is over its bound", job_id=job_id, bytes=len(data))
        raise Unavailable("the job's receipt cannot be served", retry_after=60.0)
    try:
        return receipt_in(_decode(data).data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error("a stored result event does not decode", job_id=job_id, error=str(exc))
        raise Unavailable("the job's receipt cannot be served", retry_after=60.0) from None


def receipt_for(receipt: Receipt | None, job_id: str, node_id: str) -> Receipt:
    """The receipt, if it is `node_id`'s; the typed refusal otherwise."""
    if receipt is None:
        raise NotFound(f"no receipt is issued for job {job_id} yet")
    if receipt.node_id != node_id:
        raise Forbidden(f"the receipt of job {job_id} is not this node's")
    return receipt


@get(
    "/jobs/{job_id:str}/receipt",
    summary="The signed receipt for this node's result of a job",
    description="The validation service's receipt for the node's result (verdict, checksum, time, signing key), "
    "once it is issued: a result answered `validating` gets its receipt when it is settled. Keep it; "
    "`ccn receipts verify FILE` checks it offline against GET /receipts/keys.",
    security=_SESSION_TOKEN,
    guards=[requires_session_token],
    responses={
        403: ResponseSpec(None, description="The job's receipts name only other nodes"),
        404: ResponseSpec(None, description="No receipt issued for the job yet; ask again later"),
    },
)
async def job_receipt(
    request: Request[Any, Any, Any],
    job_id: JobIdPath,
    edge: NamedDependency[EdgeContext],
    receipts: NamedDependency[IssuedReceipts],
) -> Receipt:
    node = await edge.session_node(bearer_token(request), correlation_id=correlation_id(request.scope))
    return receipt_for(await receipts.for_node(job_id, node.node_public_id), job_id, node.node_public_id)


def receipt_delivery_router() -> Router:
    return Router("/compute", route_handlers=[job_receipt], tags=["nodes"])
