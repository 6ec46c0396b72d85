"""GET /admin/orchestrator-log: the job and node lifecycle log, filtered and paged, for admins only.

Pages are keyed on (occurred_at, stream_seq, stream, step), a total order: one stream event may
record two steps (a result submitted and the job completed), which share its position, and the
job and node streams number their events each on their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ccn_analytics.orchestrator_projection import LIFECYCLE_EVENTS
from ccn_analytics.paging import (
    Conditions,
    CorrelationIdParam,
    CursorParam,
    LimitParam,
    NodeIdParam,
    SinceParam,
    StreamName,
    StreamSeq,
    fetch_page,
    parse_since,
)
from ccn_core.errors import BadInput
from ccn_proto.envelope import Actor
from ccn_web.query_params import SMALLINT_MAX, AwareDatetime


class LogEntry(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    step: int
    stream: str
    stream_seq: int
    occurred_at: datetime
    recorded_at: datetime
    event: str
    event_type: str
    job_id: str | None
    node_id: str | None
    replica: str | None
    actor: Actor
    correlation_id: str
    causation_id: str | None
    attempt: int | None
    details: dict[str, Any]  # bounded facts of the step (JSON of any shape); never payloads or secrets


class LogPage(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[LogEntry]
    # pass back as `cursor` for the entries after these; the same cursor when nothing is new yet
    next_cursor: str | None
    has_more: bool


class _Position(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The page key, bounded by the columns it is compared with (a cursor is caller input)."""

    occurred_at: AwareDatetime
    stream_seq: StreamSeq
    stream: StreamName
    step: Annotated[int, msgspec.Meta(ge=0, le=SMALLINT_MAX)]  # smallint, CHECK (step >= 0)


_ORDER = ("occurred_at", "stream_seq", "stream", "step")


def page_position(entry: LogEntry) -> _Position:
    return _Position(entry.occurred_at, entry.stream_seq, entry.stream, entry.step)


_COLUMNS = """event_id::text, step, stream, stream_seq, occurred_at, recorded_at, event, event_type, job_id, node_id,
replica, actor_kind, actor_id, correlation_id, causation_id, attempt, details::text"""
_decode_details = msgspec.json.Decoder(dict[str, Any]).decode


class OrchestratorLogReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self,
        *,
        job_id: str | None,
        node_id: str | None,
        correlation_id: str | None,
        event: str | None,
        since: datetime | None,
        after: str | None,
        limit: int,
    ) -> LogPage:
        query = Conditions()
        query.equals("job_id", job_id)
        query.equals("node_id", node_id)
        query.equals("correlation_id", correlation_id)
        query.equals("event", event)
        query.at_least("occurred_at", since)
        entries, next_cursor, has_more = await fetch_page(
            self._pool,
            table="orchestrator_log",
            columns=_COLUMNS,
            order=_ORDER,
            query=query,
            limit=limit,
            after=after,
            entry=_entry,
            position=page_position,
            position_type=_Position,
        )
        return LogPage(entries=entries, next_cursor=next_cursor, has_more=has_more)


def _entry(row: asyncpg.Record) -> LogEntry:
    return LogEntry(
        event_id=row["event_id"],
        step=row["step"],
        stream=row["stream"],
        stream_seq=row["stream_seq"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        event=row["event"],
        event_type=row["event_type"],
        job_id=row["job_id"],
        node_id=row["node_id"],
        replica=row["replica"],
        actor=Actor(kind=row["actor_kind"], id=row["actor_id"]),
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        attempt=row["attempt"],
        details=_decode_details(row["details"]),
    )


def lifecycle_event(raw: str) -> str:
    if raw not in LIFECYCLE_EVENTS:
        raise BadInput(f"event must be one of {', '.join(LIFECYCLE_EVENTS)}", field="event")
    return raw


@get(
    "/orchestrator-log",
    security=[{"AdminToken": []}],
    summary="Orchestrator log",
    description="Every lifecycle step of every job (created, claimed, released, result submitted, completed, "
    "failed, retried, abandoned, reassigned, cancelled, dead) and every node (registered, consent recorded, "
    "session started, session ended, opted out) with its node, scheduler replica, correlation and causation ids; "
    "oldest first, paged by cursor. A job's whole life: job_id= or its correlation_id=; a node's, with the steps "
    "of its jobs: node_id=.",
)
async def orchestrator_log(
    log_reader: NamedDependency[OrchestratorLogReader],
    job_id: Annotated[
        str | None, QueryParameter(description="Only this job's steps.", pattern=r"^[A-Za-z0-9_-]{1,128}$")
    ] = None,
    node_id: NodeIdParam = None,
    correlation_id: CorrelationIdParam = None,
    event: Annotated[
        str | None,
        QueryParameter(
            description=f"Only this lifecycle step: {', '.join(LIFECYCLE_EVENTS)}.",
            pattern=r"^[a-z][a-z0-9_]{0,63}$",
        ),
    ] = None,
    since: SinceParam = None,
    cursor: CursorParam = None,
    limit: LimitParam = 100,
) -> LogPage:
    return await log_reader.page(
        job_id=job_id,
        node_id=node_id,
        correlation_id=correlation_id,
        event=lifecycle_event(event) if event is not None else None,
        since=parse_since(since) if since is not None else None,
        after=cursor,
        limit=limit,
    )
