"""GET /admin/audit: the audit trail, filtered and paged, for admins only.

Pages are keyed on (occurred_at, stream_seq, stream), a total order: a timestamp alone cannot
page, because one decision stamps all its events with the same occurred_at.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.types import Guard

from ccn_core.errors import BadInput, Unauthorized, Unavailable
from ccn_proto.envelope import Actor

_OFFSET_AFTER_SPACE = re.compile(r" (\d{2}(:?\d{2})?)$")


def admin_guard(admin_token: str) -> Guard:
    """A guard for everything under /admin. Guards run before parameters are parsed, so a caller
    without the token learns nothing, not even which parameters were wrong."""
    expected = admin_token.encode()

    def require_admin(connection: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
        if not expected:
            # an empty token must never mean "open": refuse until one is configured
            raise Unavailable("admin token not configured")
        scheme, _, presented = connection.headers.get("authorization", "").partition(" ")
        # compare_digest on bytes: constant time for any input, and no error on non-ASCII
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
            raise Unauthorized("missing or wrong admin token")

    return require_admin


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


def parse_since(raw: str) -> datetime:
    # an unencoded "+02:00" in a query string arrives as " 02:00"
    text = _OFFSET_AFTER_SPACE.sub(r"+\1", raw.strip())
    try:
        since = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput("since must be an ISO-8601 timestamp, e.g. 2025-01-31T12:00:00Z", field="since") from None
    if since.tzinfo is None:
        raise BadInput("since needs a UTC offset (e.g. Z or +02:00): a bare local time is ambiguous", field="since")
    return since


class _Position(msgspec.Struct, array_like=True, frozen=True):
    occurred_at: datetime
    stream_seq: int
    stream: str


def encode_cursor(entry: AuditEntry) -> str:
    position = _Position(entry.occurred_at, entry.stream_seq, entry.stream)
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(raw: str) -> _Position:
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        return msgspec.json.decode(data, type=_Position)
    except (binascii.Error, ValueError, msgspec.ValidationError):
        raise BadInput("cursor is not one this API returned", field="cursor") from None


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
        conditions: list[str] = []
        args: list[object] = []

        def arg(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        if node_id is not None:
            conditions.append(f"aggregate_type = 'node' AND aggregate_id = {arg(node_id)}")
        if correlation_id is not None:
            conditions.append(f"correlation_id = {arg(correlation_id)}")
        if event_type is not None:
            conditions.append(f"event_type = {arg(event_type)}")
        if since is not None:
            conditions.append(f"occurred_at >= {arg(since)}")
        if after is not None:
            at = decode_cursor(after)
            conditions.append(
                f"(occurred_at, stream_seq, stream) > ({arg(at.occurred_at)}, {arg(at.stream_seq)}, {arg(at.stream)})"
            )
        # only fixed fragments are joined into the SQL; every value travels as a bind parameter
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        page_end = arg(limit + 1)  # one more than asked tells whether another page exists
        sql = f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY occurred_at, stream_seq, stream LIMIT {page_end}"  # noqa: S608
        rows = await self._pool.fetch(sql, *args)
        entries = [_entry(row) for row in rows[:limit]]
        return AuditPage(
            entries=entries,
            next_cursor=encode_cursor(entries[-1]) if entries else after,
            has_more=len(rows) > limit,
        )


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
    node_id: Annotated[
        str | None, QueryParameter(description="Only this node's events.", pattern=r"^[A-Za-z0-9_-]{1,128}$")
    ] = None,
    correlation_id: Annotated[
        str | None, QueryParameter(description="Only events of this request chain.", pattern=r"^[A-Za-z0-9._-]{1,128}$")
    ] = None,
    # named as the query parameter, so an error names the field the caller sent
    type: Annotated[
        str | None,
        QueryParameter(
            description="Only this event type, e.g. node.consent_recorded.",
            pattern=r"^[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63}){1,3}$",
        ),
    ] = None,
    since: Annotated[
        str | None, QueryParameter(description="ISO-8601 timestamp with offset; events at or after it.", max_length=64)
    ] = None,
    cursor: Annotated[
        str | None, QueryParameter(description="next_cursor of the previous page.", max_length=256)
    ] = None,
    limit: Annotated[int, QueryParameter(description="Entries per page.", ge=1, le=1000)] = 100,
) -> AuditPage:
    return await reader.page(
        node_id=node_id,
        correlation_id=correlation_id,
        event_type=type,
        since=parse_since(since) if since is not None else None,
        after=cursor,
        limit=limit,
    )
