"""GET /admin/quarantine: results the validation service rejected and what admins decided, from
the quarantined_results read model, oldest first, paged by cursor and filtered by status, node
or job type; GET /admin/quarantine/{job_id}: every rejected result of one job."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import asyncpg
import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from ccn_analytics.paging import Conditions, CursorParam, LimitParam, NodeIdParam, fetch_page
from ccn_core.errors import NotFound
from ccn_proto.constraints import END
from ccn_proto.results import Reason
from ccn_web.auth import ADMIN_SECURITY
from ccn_web.query_params import AwareDatetime

# a job's result aggregate holds at most this many results (ccn_validation.quarantine)
MAX_RESULTS_PER_JOB = 64
QuarantineStatus = Literal["rejected", "released", "discarded"]
JobIdPath = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job's id.")]
StatusParam = Annotated[
    QuarantineStatus | None,
    QueryParameter(description="Only results in this state: rejected (undecided), released or discarded."),
]
JobTypeParam = Annotated[
    str | None, QueryParameter(description="Only results of this job type.", pattern=r"^[a-z][a-z0-9_]{0,63}$")
]


class QuarantinedResult(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    node_id: str
    attempt: int
    checksum: str
    job_type: str
    job_type_version: str
    rules_version: str
    reasons: list[Reason]
    reasons_truncated: bool
    rejected_at: datetime
    correlation_id: str
    status: QuarantineStatus
    decided_by: str | None
    comment: str | None
    decided_at: datetime | None
    decision_correlation_id: str | None
    version: int  # CCN_RESULTS sequence of the row's latest event


class QuarantinePage(msgspec.Struct, frozen=True, kw_only=True):
    results: list[QuarantinedResult]
    # pass back as `cursor` for the results after these; the same cursor when nothing is new yet
    next_cursor: str | None
    has_more: bool


class QuarantinedJob(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    results: list[QuarantinedResult]  # in the order they were rejected


_Name = Annotated[str, msgspec.Meta(max_length=128)]


class _Position(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The page key (a cursor is caller input: each part bounded like its column)."""

    rejected_at: AwareDatetime
    job_id: Annotated[str, msgspec.Meta(max_length=64, pattern=rf"^[A-Za-z0-9_-]*{END}")]
    node_id: _Name
    attempt: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
    checksum: _Name


_ORDER = ("rejected_at", "job_id", "node_id", "attempt", "checksum")
_COLUMNS = """job_id, node_id, attempt, checksum, job_type, job_type_version, rules_version, reasons::text,
reasons_truncated, rejected_at, correlation_id, status, decided_by, decision_comment, decided_at,
decision_correlation_id, last_seq"""
_ONE_JOB = f"""SELECT {_COLUMNS} FROM quarantined_results WHERE job_id = $1
ORDER BY rejected_at, node_id, attempt, checksum LIMIT {MAX_RESULTS_PER_JOB}"""  # noqa: S608 - constants
_decode_reasons = msgspec.json.Decoder(list[Reason]).decode


def _entry(row: asyncpg.Record) -> QuarantinedResult:
    return QuarantinedResult(
        job_id=row["job_id"],
        node_id=row["node_id"],
        attempt=row["attempt"],
        checksum=row["checksum"],
        job_type=row["job_type"],
        job_type_version=row["job_type_version"],
        rules_version=row["rules_version"],
        reasons=_decode_reasons(row["reasons"]),
        reasons_truncated=row["reasons_truncated"],
        rejected_at=row["rejected_at"],
        correlation_id=row["correlation_id"],
        status=row["status"],
        decided_by=row["decided_by"],
        comment=row["decision_comment"],
        decided_at=row["decided_at"],
        decision_correlation_id=row["decision_correlation_id"],
        version=row["last_seq"],
    )


def _position(entry: QuarantinedResult) -> _Position:
    return _Position(entry.rejected_at, entry.job_id, entry.node_id, entry.attempt, entry.checksum)


class QuarantineReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self, *, status: str | None, node_id: str | None, job_type: str | None, after: str | None, limit: int
    ) -> QuarantinePage:
        query = Conditions()
        query.equals("status", status)
        query.equals("node_id", node_id)
        query.equals("job_type", job_type)
        results, next_cursor, has_more = await fetch_page(
            self._pool,
            table="quarantined_results",
            columns=_COLUMNS,
            order=_ORDER,
            query=query,
            limit=limit,
            after=after,
            entry=_entry,
            position=_position,
            position_type=_Position,
        )
        return QuarantinePage(results=results, next_cursor=next_cursor, has_more=has_more)

    async def job(self, job_id: str) -> QuarantinedJob:
        rows = await self._pool.fetch(_ONE_JOB, job_id)
        if not rows:
            raise NotFound(f"no result of job {job_id} was rejected (or the read model has not caught up yet)")
        return QuarantinedJob(job_id=job_id, results=[_entry(row) for row in rows])


@get(
    "/quarantine",
    security=ADMIN_SECURITY,
    summary="Results in quarantine",
    description="Results the validation service rejected, with every reason, and the admins' releases and "
    "discards; oldest first, paged by cursor.",
)
async def list_quarantine(
    quarantine_reader: NamedDependency[QuarantineReader],
    status: StatusParam = None,
    node_id: NodeIdParam = None,
    job_type: JobTypeParam = None,
    cursor: CursorParam = None,
    limit: LimitParam = 100,
) -> QuarantinePage:
    return await quarantine_reader.page(status=status, node_id=node_id, job_type=job_type, after=cursor, limit=limit)


@get("/quarantine/{job_id:str}", security=ADMIN_SECURITY, summary="A job's rejected results")
async def quarantined_job(quarantine_reader: NamedDependency[QuarantineReader], job_id: JobIdPath) -> QuarantinedJob:
    return await quarantine_reader.job(job_id)
