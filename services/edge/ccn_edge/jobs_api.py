"""Operators' job API: submit one job or a batch, follow a job, fetch its result, cancel it.
Every route needs the admin token; each request becomes scheduler commands carrying the
request's correlation id, which becomes the job's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from ccn_core.errors import BadInput, CcnError, Conflict, PayloadTooLarge, error_from_code
from ccn_core.untrusted import decode_untrusted, untrusted_decoder
from ccn_edge.context import MAX_COMMAND_BYTES, EdgeContext
from ccn_jobs.registry import batch_job_refusal
from ccn_proto.compute_api import (
    BatchLine,
    BatchSubmitted,
    CancelJobRequest,
    JobResultView,
    SubmitJobRequest,
    batch_job,
)
from ccn_proto.constraints import PRINTABLE_ASCII_PATTERN
from ccn_proto.scheduler import (
    MAX_BATCH_JOBS,
    BatchJob,
    CancelJob,
    CancelJobReply,
    CreateBatch,
    CreateBatchReply,
    CreateJob,
    CreateJobReply,
    GetJob,
    JobView,
)
from ccn_web.auth import ADMIN_SECURITY, admin_guard
from ccn_web.http import correlation_id
from ccn_web.query_params import PRINTABLE_TEXT

MAX_BATCH_BODY_BYTES = 64 * 1024 * 1024
MAX_BATCH_LINES = 100_000
JobIdPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job's id.")]
_line_decoder = untrusted_decoder(BatchLine)


def parse_batch(body: bytes) -> list[BatchJob]:
    """JSON lines → batch items, all or nothing: every line is checked as the scheduler will
    check it (its JSON, its job type, its payload against the type's schema, its encoded size),
    and the first bad line is reported by number before anything is submitted. Blank lines are
    skipped; an item without a key is keyed by its line number."""
    items: list[BatchJob] = []
    for number, line in _numbered_lines(body):
        try:
            item = decode_untrusted(line, _line_decoder)
        except BadInput as exc:
            where = f"line {number}" + (f": {exc.field}" if exc.field else "")
            raise BadInput(f"line {number}: {exc.message}", field=where) from None
        job = batch_job(item, number)
        refusal = batch_job_refusal(job)
        if refusal is not None:
            where = f"line {number}"
            raise error_from_code(
                refusal.code,
                f"{where}: {refusal.message}",
                field=f"{where}: {refusal.field}" if refusal.field else where,
            )
        items.append(job)
        if len(items) > MAX_BATCH_LINES:
            raise BadInput(f"a batch holds at most {MAX_BATCH_LINES} jobs; split the file", field="body")
    if not items:
        raise BadInput("the body holds no jobs: send one JSON object per line", field="body")
    keys = [item.item_key for item in items]
    if len(set(keys)) != len(keys):
        raise BadInput("item_key must be unique within a batch", field="item_key")
    return items


def _numbered_lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def chunks(items: list[BatchJob], size: int, max_bytes: int = MAX_COMMAND_BYTES) -> Iterator[list[BatchJob]]:
    """Runs of at most `size` items whose encoded size stays under `max_bytes`: each run is one
    NATS message, and NATS refuses messages over its max_payload (1 MiB by default). parse_batch
    has refused any item over MAX_BATCH_JOB_BYTES (not above `max_bytes`), so the refusal here
    only guards a caller that skipped it; submit_batch plans every chunk before sending one."""
    chunk: list[BatchJob] = []
    chunk_bytes = 0
    for item in items:
        item_bytes = len(msgspec.json.encode(item))
        if item_bytes > max_bytes:
            raise PayloadTooLarge(
                f"item {item.item_key} is {item_bytes} bytes encoded; one job may hold at most {max_bytes}",
                field=item.item_key,
            )
        if chunk and (len(chunk) == size or chunk_bytes + item_bytes > max_bytes):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(item)
        chunk_bytes += item_bytes
    if chunk:
        yield chunk


@post("/", summary="Submit a job", status_code=201, security=ADMIN_SECURITY)
async def submit_job(
    request: Request[Any, Any, Any],
    data: JSONBody[SubmitJobRequest],
    edge: NamedDependency[EdgeContext],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            description="Retries under the same key return the first job; another body under it is a 409.",
            min_length=16,
            max_length=128,
            pattern=PRINTABLE_ASCII_PATTERN,
        ),
    ] = None,
) -> Response[CreateJobReply]:
    command = CreateJob(
        job_type=data.job_type,
        payload=data.payload,
        priority=data.priority,
        max_retries=data.max_retries,
        lease_s=data.lease_s,
        batch_id=data.batch_id,
        dataset_source=data.dataset_source,
        dataset_version=data.dataset_version,
        idempotency_key=idempotency_key,
    )
    reply = await edge.scheduler("create_job", command, CreateJobReply, correlation_id=correlation_id(request.scope))
    return Response(reply, status_code=201 if reply.created else 200)


@post(
    "/batch",
    summary="Submit a batch of jobs (JSON lines)",
    description="One job per line: {job_type, payload, item_key?, priority?, max_retries?, lease_s?}. All or "
    "nothing: every line is checked (JSON, job type, payload against the type's schema, encoded size) before any "
    "job is created, and a refusal names the first bad line (`line N: field`) and creates nothing. Sent to the "
    "scheduler in chunks of `chunk_size`; each job's id derives from (batch_id, item key), so if the scheduler "
    "fails part way (503), resending the same batch creates nothing twice. A scheduler creating more slowly than "
    "submissions arrive refuses a batch at its first chunk (503 with Retry-After, nothing created), not part way.",
    status_code=201,
    security=ADMIN_SECURITY,
    request_max_body_size=MAX_BATCH_BODY_BYTES,
)
async def submit_batch(
    request: Request[Any, Any, Any],
    edge: NamedDependency[EdgeContext],
    batch_id: Annotated[str, QueryParameter(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")],
    dataset_source: Annotated[str | None, QueryParameter(max_length=1000, pattern=PRINTABLE_TEXT)] = None,
    dataset_version: Annotated[str | None, QueryParameter(max_length=128, pattern=PRINTABLE_TEXT)] = None,
    chunk_size: Annotated[int, QueryParameter(ge=1, le=MAX_BATCH_JOBS)] = 500,
) -> Response[BatchSubmitted]:
    items = parse_batch(await request.body())
    plan = list(chunks(items, chunk_size))  # whole before the first send: a refusal here sends nothing
    created = existing = 0
    job_ids: list[str] = []
    for chunk in plan:
        try:
            reply = await edge.scheduler(
                "create_batch",
                CreateBatch(
                    batch_id=batch_id,
                    dataset_source=dataset_source,
                    dataset_version=dataset_version,
                    jobs=chunk,
                    continues_batch=bool(job_ids),
                ),
                CreateBatchReply,
                correlation_id=correlation_id(request.scope),
                timeout=60,
            )
        except CcnError as exc:
            if job_ids:
                raise failed_part_way(exc, sent=len(job_ids), jobs=len(items)) from exc
            raise
        created += reply.created
        existing += reply.existing
        job_ids += reply.job_ids
    body = BatchSubmitted(batch_id=batch_id, jobs=len(items), created=created, existing=existing, job_ids=job_ids)
    return Response(body, status_code=201 if created else 200)


def failed_part_way(exc: CcnError, *, sent: int, jobs: int) -> CcnError:
    """The scheduler failed after some chunks were created (it was unavailable, or timed out):
    not a refusal of the batch, so say what was sent and that a resend is safe."""
    return type(exc)(
        f"{exc.message}; {sent} of {jobs} jobs were created or found before this: send the same batch again, "
        "nothing is created twice",
        field=exc.field,
        retry_after=exc.retry_after,
    )


@get("/{job_id:str}", summary="A job: state and history", security=ADMIN_SECURITY)
async def job_status(request: Request[Any, Any, Any], job_id: JobIdPath, edge: NamedDependency[EdgeContext]) -> JobView:
    return await _job(request, job_id, edge)


@get("/{job_id:str}/result", summary="A completed job's result", security=ADMIN_SECURITY)
async def job_result(
    request: Request[Any, Any, Any], job_id: JobIdPath, edge: NamedDependency[EdgeContext]
) -> JobResultView:
    view = await _job(request, job_id, edge)
    if view.result is None or view.result_checksum is None:
        raise Conflict(f"job {job_id} is {view.status}: it has no result")
    return JobResultView(job_id=job_id, status=view.status, result=view.result, result_checksum=view.result_checksum)


@post("/{job_id:str}/cancel", summary="Cancel a job", status_code=200, security=ADMIN_SECURITY)
async def cancel_job(
    request: Request[Any, Any, Any],
    job_id: JobIdPath,
    edge: NamedDependency[EdgeContext],
    data: JSONBody[CancelJobRequest | None] = None,
) -> CancelJobReply:
    command = CancelJob(job_id=job_id, reason=data.reason if data is not None else None)
    return await edge.scheduler("cancel_job", command, CancelJobReply, correlation_id=correlation_id(request.scope))


async def _job(request: Request[Any, Any, Any], job_id: str, edge: EdgeContext) -> JobView:
    return await edge.scheduler("get_job", GetJob(job_id=job_id), JobView, correlation_id=correlation_id(request.scope))


def jobs_router(admin_token: str) -> Router:
    return Router(
        "/jobs",
        route_handlers=[submit_job, submit_batch, job_status, job_result, cancel_job],
        guards=[admin_guard(admin_token)],
        tags=["jobs"],
    )
