"""Hostile variants of a valid JSON document, as the bytes an attacker would send: each mutation
is one class of input the edge must refuse with a typed error (or, for some, accept unchanged),
never with a crash. Used for WebSocket frames and for HTTP request bodies alike.

A mutation starts from a valid document (drawn from the published schema) so that the hostile
part is the only thing wrong with it and reaches as deep into the decoder as it can."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

JSON = Any  # a decoded JSON document: dict, list, str, int, float, bool or None

# Characters that no text field should carry (tab and newline are allowed in some): NUL, the
# rest of C0, DEL, C1, the Unicode line and paragraph separators.
CONTROL_CHARACTERS = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x85, 0x2028)]
# invalid UTF-8: a stray continuation byte, bytes that never occur, an overlong encoding, a
# truncated sequence, and an encoded surrogate (valid in CESU-8, never in UTF-8)
INVALID_UTF8 = [b"\xff", b"\x80", b"\xfe", b"\xc0\xaf", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
# Each list starts with its most hostile entry: a small run draws few examples, and Hypothesis's
# first draw of a sampled_from is its first element.
NESTING_DEPTHS = [10_000, 50_000, 200]
# past int64, past uint64, past a double's range, and a double's own edges
HUGE_NUMBERS = [
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1" + "0" * 400,
    "1e309",
    "-1e309",
    "1.7976931348623157e308",
    "5e-324",
    "-0",
    "1E400",
    "123456789012345678901234567890.5",
]
# spellings that are not JSON at all but that lax parsers take for numbers
NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "0x10", "+1", "01", ".5"]

MUTATIONS = (
    "wrong_type",
    "stringly_typed",
    "unknown_field",
    "deep_nesting",
    "huge_number",
    "control_character",
    "lone_surrogate",
    "invalid_utf8",
    "truncated",
)
# what must never get through (the other mutations may leave an acceptable document: a wrong
# type the field also takes, an unknown field where fields are open, a big but legal number)
MUST_REFUSE = {"stringly_typed", "control_character", "lone_surrogate", "invalid_utf8", "truncated"}


def fuzz_settings(examples: int) -> settings:
    """What every fuzz run here shares: no deadline (a request's time is the server's), no
    example database, no shrinking (a run records each failure and goes on, so its report lists
    every distinct one), and no health checks (the strategies are slow by nature)."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def encode(document: JSON) -> bytes:
    # ASCII: a lone surrogate drawn from a schema is spelled as an escape, not as bytes
    return json.dumps(document, allow_nan=False).encode()


def _paths(document: JSON, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document a value sits, the root included."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _get(document: JSON, path: tuple[Any, ...]) -> JSON:
    for step in path:
        document = document[step]
    return document


def _replaced(document: JSON, path: tuple[Any, ...], value: JSON) -> JSON:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    parent = _get(copy, path[:-1])
    parent[path[-1]] = value
    return copy


_OTHER_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _spelled_as_string(value: JSON) -> list[JSON]:
    """What a lax decoder would turn back into `value`: the issue's "60" for 60, "true" for true."""
    if isinstance(value, bool):
        return ["true" if value else "false", int(value), str(int(value))]
    if isinstance(value, int | float):
        return [str(value), f"{value:e}", json.dumps(value)]
    return []


@st.composite
def hostile(
    draw: st.DrawFn, document: JSON, mutation: str | None = None, typed_keys: frozenset[str] = frozenset()
) -> tuple[str, bytes]:
    """(the mutation's name, the hostile bytes) for a valid `document`. `typed_keys`: the
    property names the schema types, the only places where a number spelled as a string is
    wrong (inside a free-form document, "60" is as good a value as 60)."""
    mutation = mutation or draw(st.sampled_from(MUTATIONS))
    paths = _paths(document)
    path = draw(st.sampled_from(paths))
    value = _get(document, path)
    match mutation:
        case "wrong_type":
            other = draw(_OTHER_TYPES.filter(lambda v: type(v) is not type(value)))
            return mutation, encode(_replaced(document, path, other))
        case "stringly_typed":
            scalars = [p for p in paths if _spelled_as_string(_get(document, p)) and _typed(p, typed_keys)]
            if not scalars:
                return "wrong_type", encode(_replaced(document, path, draw(_OTHER_TYPES)))
            path = draw(st.sampled_from(scalars))
            spelling = draw(st.sampled_from(_spelled_as_string(_get(document, path))))
            return mutation, encode(_replaced(document, path, spelling))
        case "unknown_field":
            objects = [p for p in paths if isinstance(_get(document, p), dict)]
            if not objects:
                return "wrong_type", encode({"unexpected": document})
            path = draw(st.sampled_from(objects))
            extended = dict(_get(document, path))
            key = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in extended))
            extended[key] = draw(_OTHER_TYPES)
            return mutation, encode(_replaced(document, path, extended))
        case "deep_nesting":
            depth = draw(st.sampled_from(NESTING_DEPTHS))
            opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
            marker = "\x00NEST\x00"
            text = encode(_replaced(document, path, marker)).decode()
            return mutation, text.replace(json.dumps(marker), opener * depth + "1" + closer * depth, 1).encode()
        case "huge_number":
            marker = "\x00HUGE\x00"
            number = draw(st.sampled_from(HUGE_NUMBERS + NOT_JSON_NUMBERS))
            text = encode(_replaced(document, path, marker)).decode()
            return mutation, text.replace(json.dumps(marker), number, 1).encode()
        case "control_character" | "lone_surrogate" | "invalid_utf8":
            return mutation, _bad_text(draw, document, mutation)
        case _:
            # at least one byte: an empty body is no body, which some operations take
            encoded = encode(document)
            if len(encoded) < 2:
                return "truncated", b"{"
            return "truncated", encoded[: draw(st.integers(1, len(encoded) - 1))]


def _bad_text(draw: st.DrawFn, document: JSON, mutation: str) -> bytes:
    """The document with bad text in its strings (or in a new string where it has none): a
    control character or a lone surrogate in every string but the dispatch tags, so that a
    field that lets it through cannot hide behind one that refuses it; invalid UTF-8 in one."""
    paths = _paths(document)
    strings = _free_strings(document) or [draw(st.sampled_from(paths))]
    if mutation == "invalid_utf8":
        strings = [draw(st.sampled_from(strings))]
    cut = draw(st.integers(0, 64))
    marker = "\x00BAD\x00"
    marked = document
    for path in strings:
        original = _get(document, path)
        text = original if isinstance(original, str) else ""
        marked = _replaced(marked, path, _inserted(text, marker, cut))
    encoded = encode(marked).decode()
    escaped_marker = json.dumps(marker)[1:-1]
    if mutation == "control_character":
        char = draw(st.sampled_from(CONTROL_CHARACTERS))
        # escaped as \u0000 (valid JSON, so it reaches the fields) or raw: both must be refused
        spelled = draw(st.sampled_from([f"\\u{ord(char):04x}", char]))
        return encoded.replace(escaped_marker, spelled).encode()
    if mutation == "lone_surrogate":
        surrogate = draw(st.sampled_from(["\\ud800", "\\udfff", "\\udbff", "\\ud83d x"]))
        return encoded.replace(escaped_marker, surrogate).encode()
    head, _, tail = encoded.partition(escaped_marker)
    return head.encode() + draw(st.sampled_from(INVALID_UTF8)) + tail.encode()


def spiked(document: JSON) -> st.SearchStrategy[JSON]:
    """The document with its strings (at any depth) carrying a control character, NUL most
    often: still a well-formed document, so it reaches whatever stores those strings."""
    strings = _free_strings(document)
    if not strings:
        return st.just(document)
    characters = st.just("\x00") | st.sampled_from(CONTROL_CHARACTERS)
    return st.tuples(characters, st.integers(0, 64)).map(lambda spike: _spike_all(document, strings, *spike))


def _typed(path: tuple[Any, ...], typed_keys: frozenset[str]) -> bool:
    return bool(path) and all(step in typed_keys for step in path if isinstance(step, str))


# what the server dispatches on (a frame's type, a job's type): bad text there is refused before
# any other field is read, so it is left clean where the point is to reach the other fields
DISPATCH_TAGS = {"type", "job_type"}


def _free_strings(document: JSON) -> list[tuple[Any, ...]]:
    return [
        path
        for path in _paths(document)
        if isinstance(_get(document, path), str) and not (path and path[-1] in DISPATCH_TAGS)
    ]


def _spike_all(document: JSON, strings: list[tuple[Any, ...]], char: str, at: int) -> JSON:
    for path in strings:
        document = _replaced(document, path, _inserted(_get(document, path), char, at))
    return document


def _inserted(text: str, char: str, at: int) -> str:
    at = min(at, len(text))
    return text[:at] + char + text[at:]
