"""What the admin read APIs share: their common query parameters, `since` parsing, opaque
cursors, and WHERE clauses whose values all travel as bind parameters.

A page is keyed on a total order of the rows (a timestamp alone cannot page: one decision stamps
all its events with the same occurred_at); the cursor is that key of the page's last row. A
cursor comes back from the caller, so it is decoded as untrusted input: into a page key whose
parts are bounded by their columns' types (ccn_web.query_params), or refused naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import asyncpg
import msgspec
from litestar.params import QueryParameter

from ccn_core.errors import BadInput
from ccn_proto.constraints import END
from ccn_web.query_params import BASE64URL, BIGINT_MAX, TIMESTAMP, parse_timestamp, within_timestamp_range

P = TypeVar("P", bound=msgspec.Struct)

NodeIdParam = Annotated[
    str | None, QueryParameter(description="Only this node's events.", pattern=r"^[A-Za-z0-9_-]{1,128}$")
]
CorrelationIdParam = Annotated[
    str | None, QueryParameter(description="Only events of this request chain.", pattern=r"^[A-Za-z0-9._-]{1,128}$")
]
SinceParam = Annotated[
    str | None,
    QueryParameter(
        description="ISO-8601 timestamp with a UTC offset (a bare local time is refused), between years 1 and "
        "9999 in UTC; events at or after it.",
        max_length=64,
        pattern=TIMESTAMP,
    ),
]
CursorParam = Annotated[
    str | None, QueryParameter(description="next_cursor of the previous page.", max_length=256, pattern=BASE64URL)
]
LimitParam = Annotated[int, QueryParameter(description="Entries per page.", ge=1, le=1000)]

# parts of a page key, as their columns hold them: stream_seq bigint CHECK (> 0), stream a stream name
StreamSeq = Annotated[int, msgspec.Meta(ge=1, le=BIGINT_MAX)]
StreamName = Annotated[str, msgspec.Meta(max_length=64, pattern=rf"^[A-Za-z0-9_-]*{END}")]


def parse_since(raw: str) -> datetime:
    return parse_timestamp(raw, field="since")


def encode_cursor(position: msgspec.Struct) -> str:
    """An opaque cursor for a page key (an array_like Struct: compact and order-preserving)."""
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(raw: str, position_type: type[P]) -> P:
    """The page key in a cursor; BadInput naming `cursor` for anything but a key this API could
    have returned (its parts' bounds are declared on `position_type`)."""
    try:
        data = base64.urlsafe_b64decode(raw.encode("ascii") + b"=" * (-len(raw) % 4))
        position = msgspec.json.decode(data, type=position_type)
    except (binascii.Error, ValueError):  # msgspec's DecodeError and ValidationError are ValueErrors
        raise BadInput("cursor is not one this API returned", field="cursor") from None
    for value in msgspec.structs.astuple(position):
        if isinstance(value, datetime):
            within_timestamp_range(value, field="cursor")
    return position


class Conditions:
    """A WHERE clause built from fixed SQL fragments; every value becomes a bind parameter."""

    def __init__(self) -> None:
        self._fragments: list[str] = []
        self.args: list[object] = []

    def arg(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, fragment: str) -> None:
        self._fragments.append(fragment)

    def equals(self, column: str, value: object | None) -> None:
        """`column = value`, when a filter was given (None: no filter)."""
        if value is not None:
            self.add(f"{column} = {self.arg(value)}")

    def at_least(self, column: str, value: object | None) -> None:
        if value is not None:
            self.add(f"{column} >= {self.arg(value)}")

    def after(self, columns: tuple[str, ...], position: msgspec.Struct) -> None:
        """Rows strictly after `position` in the order of `columns` (the page key)."""
        values = msgspec.structs.astuple(position)
        placeholders = ", ".join(self.arg(value) for value in values)
        self.add(f"({', '.join(columns)}) > ({placeholders})")

    @property
    def where(self) -> str:
        return f"WHERE {' AND '.join(self._fragments)}" if self._fragments else ""


E = TypeVar("E")


async def fetch_page(
    pool: asyncpg.Pool,
    *,
    table: str,
    columns: str,
    order: tuple[str, ...],
    query: Conditions,
    limit: int,
    after: str | None,
    entry: Callable[[asyncpg.Record], E],
    position: Callable[[E], P],
    position_type: type[P],
) -> tuple[list[E], str | None, bool]:
    """One page of `table` in `order` after the cursor `after`: (entries, the next cursor,
    whether more exist). `table`, `columns` and `order` are the caller's constants, never input;
    every value travels as a bind parameter."""
    if after is not None:
        query.after(order, decode_cursor(after, position_type))
    page_end = query.arg(limit + 1)  # one more than asked tells whether another page exists
    sql = f"SELECT {columns} FROM {table} {query.where} ORDER BY {', '.join(order)} LIMIT {page_end}"  # noqa: S608
    rows = await pool.fetch(sql, *query.args)
    entries = [entry(row) for row in rows[:limit]]
    next_cursor = encode_cursor(position(entries[-1])) if entries else after
    return entries, next_cursor, len(rows) > limit
