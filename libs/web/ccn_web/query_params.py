"""Query and path parameters as bounded types, so that nothing a caller puts in a URL reaches
PostgreSQL (or a command) outside what its column can hold: the database would answer with an
error the API can only report as a 500.

- Integers are bounded by their column's type (smallint, integer, bigint) and are written in
  decimal: `1e3`, `+5`, `NaN` are not integers, whatever a lax parser would make of them.
- Timestamps carry a UTC offset (a bare local time is ambiguous, so it is refused, not guessed)
  and lie within Python's datetime range once in UTC: years 1 to 9999, which sits inside
  PostgreSQL's timestamptz range (4713 BC to 294276 AD).
- No value holds a control character (U+0000 to U+001F, U+007F): PostgreSQL text cannot hold
  NUL, and the rest have no business in an id, a filter or a cursor.
- A scalar parameter given twice is refused rather than one of its values picked.

Bounds that can be declared (ge/le, patterns, lengths) are declared on the handler's parameters,
so the OpenAPI document states them; `refuse_unbounded_parameters` is the before-request hook
that checks what a declaration cannot say (control characters, decimal integers, repeats).
"""

from __future__ import annotations

import re
import weakref
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter

from ccn_core.errors import BadInput
from ccn_proto.constraints import line_problem

# PostgreSQL's integer column types (Numeric Types in its manual)
SMALLINT_MIN, SMALLINT_MAX = -(2**15), 2**15 - 1
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1

# a datetime that says which instant it is; `within_timestamp_range` bounds it
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]

# Patterns for OpenAPI (ECMA and Python regex alike). `$` lets a trailing newline through in
# Python; the hook refuses control characters before any pattern is tried.
PRINTABLE_TEXT = r"^[^\x00-\x1f\x7f]*$"
TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+ -][0-9]{2}(:?[0-9]{2})?)$"
)
BASE64URL = r"^[A-Za-z0-9_-]*$"

# a handler's declared query parameters, worked out on its first request
_DECLARED: weakref.WeakKeyDictionary[HTTPRouteHandler, dict[str, str]] = weakref.WeakKeyDictionary()
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,19})")
_OFFSET_AFTER_SPACE = re.compile(r" (\d{2}(:?\d{2})?)$")


def within_timestamp_range(value: datetime, *, field: str) -> datetime:
    """`value` in UTC: refused when it has no offset, or lies outside years 1..9999 in UTC (an
    offset can carry 0001-01-01T00:00+01:00 into year 0, which neither Python nor a driver
    converting to UTC can represent)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadInput(f"{field} needs a UTC offset (e.g. Z or +02:00): a bare local time is ambiguous", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadInput(f"{field} must lie between years 1 and 9999 in UTC", field=field) from None


def parse_timestamp(raw: str, *, field: str) -> datetime:
    """An ISO-8601 timestamp with offset, in range, as UTC. An unencoded "+02:00" in a query
    string arrives as " 02:00", and is read as the offset it was."""
    text = _OFFSET_AFTER_SPACE.sub(r"+\1", raw.strip())
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{field} must be an ISO-8601 timestamp, e.g. 2025-01-31T12:00:00Z", field=field) from None
    return within_timestamp_range(value, field=field)


async def refuse_unbounded_parameters(request: Request[Any, Any, Any]) -> None:
    """Before any parameter is parsed: every query and path value is free of control characters,
    and a declared scalar query parameter is given once, as a decimal when it is an integer."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (problem := line_problem(value)):
            raise BadInput(f"{name} {problem}", field=name)
    handler = request.route_handler
    declared = _DECLARED.get(handler)
    if declared is None:
        declared = _DECLARED[handler] = _declared_query_parameters(handler)
    for name in set(request.query_params.keys()):
        values = request.query_params.getall(name)
        for value in values:
            if problem := line_problem(value):
                raise BadInput(f"{name} {problem}", field=name)
        kind = declared.get(name)
        if kind is None or kind == "list":
            continue
        if len(values) > 1:
            raise BadInput(f"{name} was given {len(values)} times; give it once", field=name)
        if kind == "int" and not _DECIMAL.fullmatch(values[0]):
            raise BadInput(f"{name} must be a whole number of at most 20 decimal digits", field=name)


def _declared_query_parameters(handler: HTTPRouteHandler) -> dict[str, str]:
    """The handler's query parameters by the name a caller sends: "int", "list" or "scalar".
    A query parameter is one declared with QueryParameter, or an undeclared one of a plain type
    (dependencies, the request and the body are of other types)."""
    kinds: dict[str, str] = {}
    path_parameters = _path_parameter_names(handler)
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        types = [t for t in (field.inner_types if field.is_optional else (field,)) if not t.is_none_type]
        plain = all(t.is_subclass_of((str, int, float)) for t in types) and kwarg is None
        if name in path_parameters or not (isinstance(kwarg, QueryParameter) or plain):
            continue
        if field.is_non_string_sequence:
            kind = "list"
        elif any(t.is_subclass_of(int) and not t.is_subclass_of(bool) for t in types):
            kind = "int"
        else:
            kind = "scalar"
        query_name = kwarg.query if isinstance(kwarg, QueryParameter) and kwarg.query else name
        kinds[query_name] = kind
    return kinds


def _path_parameter_names(handler: HTTPRouteHandler) -> set[str]:
    return {match for path in handler.paths for match in re.findall(r"{(\w+)(?::[^}]*)?}", path)}
