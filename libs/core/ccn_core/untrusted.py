"""Decoding what arrives from outside: one way, bounded, strict, with a typed refusal for
everything else.

Every HTTP body, WebSocket frame and batch line is decoded here. msgspec's decoders are strict
(no "60" for a number, no "true" or 1 for a boolean) and check each Struct field's constraints;
what they leave open is closed here: invalid UTF-8 and runaway nesting (which msgspec reports as
UnicodeDecodeError and RecursionError, not as its own errors), and the text rule of
ccn_proto.constraints applied to every string at any depth, including inside `dict[str, Any]`
payloads and results. A caller gets a decoded value or BadInput naming the field; no decoder
error escapes as anything else.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ccn_core.commands import validation_error
from ccn_core.errors import BadInput
from ccn_proto.constraints import (
    MAX_DOCUMENT_DEPTH,
    MULTI_LINE_PATTERN,
    PRINTABLE_ASCII_PATTERN,
    SINGLE_LINE_PATTERN,
    document_problem,
)

T = TypeVar("T")
# a field path is echoed to the caller and logged: a hostile key must not make it huge
_MAX_FIELD_CHARS = 200
# msgspec quotes a failed pattern; these say what the text rule's patterns mean
_PATTERN_MEANINGS = {
    f"Expected `str` matching regex {SINGLE_LINE_PATTERN!r}": "Expected one line of text without control characters",
    f"Expected `str` matching regex {MULTI_LINE_PATTERN!r}": "Expected text without control characters other than "
    "tab and line ends",
    f"Expected `str` matching regex {PRINTABLE_ASCII_PATTERN!r}": "Expected visible ASCII characters only",
}


def decode_untrusted(raw: bytes | str, decoder: msgspec.json.Decoder[T], *, field: str | None = None) -> T:
    """`raw` decoded by `decoder` (which must be strict, as msgspec's are by default) and held
    to the untrusted-text rule; BadInput otherwise. `field` prefixes every path reported (a batch
    line's number, say)."""
    try:
        value = decoder.decode(raw)
    except UnicodeDecodeError:
        raise BadInput("the body is not valid UTF-8", field=field) from None
    except RecursionError:
        raise BadInput(f"the JSON nests deeper than {MAX_DOCUMENT_DEPTH} levels", field=field) from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        error = validation_error(exc)
        raise BadInput(explained(error.message), field=_joined(field, error.field)) from None
    problem = document_problem(value)
    if problem is not None:
        where = _joined(field, problem.path)
        raise BadInput(f"{where or 'the body'} {problem.reason}", field=where)
    return value


def explained(message: str) -> str:
    """A validation message with the text rule's patterns said in words."""
    for quoted, meaning in _PATTERN_MEANINGS.items():
        message = message.replace(quoted, meaning)
    return message


def untrusted_decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    """A strict decoder for `type_`, for use with decode_untrusted."""
    return msgspec.json.Decoder(type_, strict=True)


def _joined(prefix: str | None, path: str | None) -> str | None:
    joined = ".".join(part for part in (prefix, path) if part) or None
    if joined is not None and len(joined) > _MAX_FIELD_CHARS:
        joined = joined[:_MAX_FIELD_CHARS] + "…"
    return joined
