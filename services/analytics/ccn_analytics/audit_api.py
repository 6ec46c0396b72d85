"""GET /admin/audit: the audit trail, filtered and paged, for admins only.

Pages are keyed on (occurred_at, stream_seq, stream), a total order: a timestamp alone cannot
page, because one decision stamps all its events with the same occurred_at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

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
from ccn_proto.envelope import Actor
from ccn_web.query_params import AwareDatetime


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    stream: str
    stream_seq: int
    occurred_at: datetime
    recorded_at: datetime
    aggregate_type: str
    aggregate_id: str
    event_type: str
    schema_version: int
    actor: Actor
    correlation_id: str
    causation_id: str | None
    details: dict[str, Any]  # event data as stored (JSON of any shape), secrets removed


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[AuditEntry]
    # pass back as `cursor` for the entries after these; the same cursor when nothing is new yet
    next_cursor: str | None
    has_more: bool


class _Position(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """The page key, bounded by the columns it is compared with (a cursor is caller input)."""

    occurred_at: AwareDatetime
    stream_seq: StreamSeq
    stream: StreamName


_ORDER = ("occurred_at", "stream_seq", "stream")


def page_position(entry: AuditEntry) -> _Position:
    return _Position(entry.occurred_at, entry.stream_seq, entry.stream)


_COLUMNS = """event_id::text, stream, stream_seq, occurred_at, recorded_at, aggregate_type, aggregate_id, event_type,
schema_version, actor_kind, actor_id, correlation_id, causation_id, details::text"""
_decode_details = msgspec.json.Decoder(dict[str, Any]).decode


class AuditReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self,
        *,
        node_id: str | None,
        correlation_id: str | None,
        event_type: str | None,
        since: datetime | None,
        after: str | None,
        limit: int,
    ) -> AuditPage:
        query = Conditions()
        if node_id is not None:
            query.add(f"aggregate_type = 'node' AND aggregate_id = {query.arg(node_id)}")
        query.equals("correlation_id", correlation_id)
        query.equals("event_type", event_type)
        query.at_least("occurred_at", since)
        entries, next_cursor, has_more = await fetch_page(
            self._pool,
            table="audit_log",
            columns=_COLUMNS,
            order=_ORDER,
            query=query,
            limit=limit,
            after=after,
            entry=_entry,
            position=page_position,
            position_type=_Position,
        )
        return AuditPage(entries=entries, next_cursor=next_cursor, has_more=has_more)


def _entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        event_id=row["event_id"],
        stream=row["stream"],
        stream_seq=row["stream_seq"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        aggregate_type=row["aggregate_type"],
        aggregate_id=row["aggregate_id"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        actor=Actor(kind=row["actor_kind"], id=row["actor_id"]),
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        details=_decode_details(row["details"]),
    )


@get(
    "/audit",
    security=[{"AdminToken": []}],
    summary="Audit trail",
    description="Who did what, when, with correlation and causation ids; oldest first, paged by cursor.",
)
async def audit_log(
    reader: NamedDependency[AuditReader],
    node_id: NodeIdParam = None,
    correlation_id: CorrelationIdParam = None,
    # named as the query parameter, so an error names the field the caller sent
    type: Annotated[
        str | None,
        QueryParameter(
            description="Only this event type, e.g. node.consent_recorded.",
            pattern=r"^[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63}){1,3}$",
        ),
    ] = None,
    since: SinceParam = None,
    cursor: CursorParam = None,
    limit: LimitParam = 100,
) -> AuditPage:
    return await reader.page(
        node_id=node_id,
        correlation_id=correlation_id,
        event_type=type,
        since=parse_since(since) if since is not None else None,
        after=cursor,
        limit=limit,
    )
