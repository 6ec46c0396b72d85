"""Bounds shared by every message: each untrusted string has a maximum size and a character set.

Text from outside may not hold control characters (Unicode category Cc: C0, DEL, C1), line or
paragraph separators (U+2028, U+2029) or lone surrogates: PostgreSQL text cannot store NUL,
terminals and log viewers act on escapes, and a lone surrogate cannot be encoded as UTF-8 at
all. Multi-line text (`Text`) may hold tab, line feed and carriage return (a CRLF line end is a
newline); single-line text holds none of them.

The patterns are written with escapes that Python's `re` and ECMA-262 read alike, so the JSON
Schemas exported from these types state the rule for clients in any language.

`dict[str, Any]` documents (job payloads and results) have no schema of their own here: the
same rule is applied to every string in them, at any depth, by `document_problem`, which also
bounds their nesting and their numbers.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import msgspec

# Python's `$` also matches before a final line feed ("abc\n" matches ^[a-z]+$ under re.search,
# which is how msgspec checks a pattern); `$(?!\n)` ends a pattern at the true end in Python
# and reads the same in ECMA-262, where `$` already means that.
END = r"$(?!\n)"
_CONTROLS_EXCEPT_LINE_ENDS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# U+2028 and U+2029 (line and paragraph separators) end a line for JavaScript and many log
# tools, and no real text from a form or a page needs them; lone surrogates cannot be UTF-8
_SURROGATES = r"\u2028\u2029\ud800-\udfff"
SINGLE_LINE_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f{_SURROGATES}]*{END}"
MULTI_LINE_PATTERN = rf"^[^{_CONTROLS_EXCEPT_LINE_ENDS}{_SURROGATES}]*$"
# tokens and keys: visible ASCII, no space
PRINTABLE_ASCII_PATTERN = rf"^[\x21-\x7e]+{END}"

ShortText = Annotated[str, msgspec.Meta(max_length=128, pattern=SINGLE_LINE_PATTERN)]
Text = Annotated[str, msgspec.Meta(max_length=1000, pattern=MULTI_LINE_PATTERN)]
UserAgent = Annotated[str, msgspec.Meta(max_length=512, pattern=SINGLE_LINE_PATTERN)]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=rf"^[0-9a-f]{{64}}{END}")]
Version = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9._-]+{END}")]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=PRINTABLE_ASCII_PATTERN)]

# Deeper than any real payload or result; shallow enough that no decoder or walker recurses far.
MAX_DOCUMENT_DEPTH = 32
# Beyond int64 a number means different things to PostgreSQL, JavaScript and Python alike.
MAX_DOCUMENT_INT = 2**63 - 1

_FORBIDDEN_IN_TEXT = re.compile(rf"[{_CONTROLS_EXCEPT_LINE_ENDS}{_SURROGATES}]")
_FORBIDDEN_IN_LINE = re.compile(rf"[\x00-\x1f\x7f-\x9f{_SURROGATES}]")


class Problem(msgspec.Struct, frozen=True):
    """Where a document breaks the rule (`payload.items[3].title`; "" for the whole) and how."""

    path: str
    reason: str


def text_problem(text: str) -> str | None:
    """Why `text` may not be stored, or None: the first forbidden character, named by code point."""
    found = _FORBIDDEN_IN_TEXT.search(text)
    if found is None:
        return None
    return f"holds a forbidden character U+{ord(found.group()):04X} at offset {found.start()}"


def line_problem(text: str) -> str | None:
    """Why `text` may not stand as one line (a query value, a name), or None."""
    found = _FORBIDDEN_IN_LINE.search(text)
    if found is None:
        return None
    return f"holds a forbidden character U+{ord(found.group()):04X} at offset {found.start()}"


def document_problem(value: Any, path: str = "", *, max_depth: int = MAX_DOCUMENT_DEPTH) -> Problem | None:
    """The first place where a decoded JSON value (or a Struct holding such values) breaks the
    rule for untrusted text, nests deeper than `max_depth` objects and arrays, or holds a number
    outside int64 or a float that is not finite. Iterative, so a hostile depth costs no stack."""
    pending: list[tuple[Any, str, int]] = [(value, path, 0)]
    children: list[tuple[Any, str, int]] = []
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason is not None:
                return Problem(where, reason)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -MAX_DOCUMENT_INT - 1 <= item <= MAX_DOCUMENT_INT:
                return Problem(where, "is a number outside the 64-bit integer range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                return Problem(where, "is not a finite number")
        elif isinstance(item, dict):
            if depth >= max_depth:
                return Problem(where, f"nests deeper than {max_depth} levels")
            for key, child in item.items():
                reason = text_problem(key) if isinstance(key, str) else None
                if reason is not None:
                    return Problem(where, f"has a key that {reason}")
                child_path = f"{where}.{key}" if where else str(key)
                children.append((child, child_path, depth + 1))
        elif isinstance(item, list | tuple):
            if depth >= max_depth:
                return Problem(where, f"nests deeper than {max_depth} levels")
            children.extend((child, f"{where}[{index}]", depth + 1) for index, child in enumerate(item))
        elif isinstance(item, msgspec.Struct):
            # a Struct's own nesting is bounded by its type: only what it holds counts
            for name in item.__struct_fields__:
                children.append((getattr(item, name), f"{where}.{name}" if where else name, depth))
        # reversed onto the stack, so problems are found in document order
        pending.extend(reversed(children))
        children.clear()
    return None
