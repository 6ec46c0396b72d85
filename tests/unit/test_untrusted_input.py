"""The rule for text from outside and the one decoder that applies it: every refusal is BadInput
naming the field, and no decoder error escapes as anything else."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from ccn_core.errors import BadInput
from ccn_core.untrusted import decode_untrusted, untrusted_decoder
from ccn_proto.compute_api import BatchLine, RegisterNodeRequest, SubmitJobRequest
from ccn_proto.constraints import (
    MAX_DOCUMENT_DEPTH,
    MULTI_LINE_PATTERN,
    PRINTABLE_ASCII_PATTERN,
    SINGLE_LINE_PATTERN,
    Problem,
    document_problem,
    line_problem,
    text_problem,
)
from ccn_proto.node_protocol import NodeFrame
from ccn_proto.scheduler import JobId

JOB_ID_PATTERN = JobId.__metadata__[0].pattern

FORBIDDEN = [
    *("\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"),
    *("\u2028", "\u2029", "\ud800", "\udfff"),
]
ALLOWED = ["plain", "tab\there", "line\nend", "crlf\r\n", "é ü ß", "中文", "emoji 🎉", "\u00a0nbsp", "\u200bzwsp"]


@pytest.mark.parametrize("char", FORBIDDEN)
def test_control_characters_and_lone_surrogates_are_refused_in_text(char: str) -> None:
    assert text_problem(f"a{char}b") == f"holds a forbidden character U+{ord(char):04X} at offset 1"
    assert not re.search(MULTI_LINE_PATTERN, f"a{char}b")
    assert not re.search(SINGLE_LINE_PATTERN, f"a{char}b")


@pytest.mark.parametrize("text", ALLOWED)
def test_ordinary_text_in_any_script_passes(text: str) -> None:
    assert text_problem(text) is None
    assert re.search(MULTI_LINE_PATTERN, text)


@pytest.mark.parametrize("text", ["tab\there", "line\nend", "cr\r", "trailing\n"])
def test_single_line_text_holds_no_tab_or_line_end(text: str) -> None:
    assert not re.search(SINGLE_LINE_PATTERN, text)
    assert line_problem(text) is not None


@pytest.mark.parametrize(
    ("pattern", "text"),
    [(PRINTABLE_ASCII_PATTERN, "token\n"), (SINGLE_LINE_PATTERN, "agent\n"), (JOB_ID_PATTERN, "job-1\n")],
)
def test_a_final_line_feed_does_not_slip_past_an_anchored_pattern(pattern: str, text: str) -> None:
    """Python's `$` matches before a final line feed; msgspec checks patterns with re.search."""
    assert re.search(pattern, text.rstrip("\n"))
    assert not re.search(pattern, text)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"a": [{"b": "ok"}, {"c": "x\x00"}]}, Problem("a[1].c", "holds a forbidden character U+0000 at offset 1")),
        ({"ke\x00y": 1}, Problem("", "has a key that holds a forbidden character U+0000 at offset 2")),
        ({"n": 2**63}, Problem("n", "is a number outside the 64-bit integer range")),
        ({"n": -(2**63) - 1}, Problem("n", "is a number outside the 64-bit integer range")),
        ({"f": float("inf")}, Problem("f", "is not a finite number")),
        ({"f": float("nan")}, Problem("f", "is not a finite number")),
        ({"first": "\x01", "second": "\x02"}, Problem("first", "holds a forbidden character U+0001 at offset 0")),
    ],
)
def test_document_problems_name_their_path(document: Any, expected: Problem) -> None:
    assert document_problem(document) == expected


def test_documents_within_bounds_pass() -> None:
    assert document_problem({"n": 2**63 - 1, "m": -(2**63), "f": 1.5, "t": True, "z": None, "s": ALLOWED}) is None
    assert document_problem(nested(MAX_DOCUMENT_DEPTH)) is None


def test_depth_is_bounded_without_recursion() -> None:
    problem = document_problem(nested(MAX_DOCUMENT_DEPTH + 1))
    assert problem is not None
    assert problem.reason == f"nests deeper than {MAX_DOCUMENT_DEPTH} levels"
    deep = nested(100_000)  # far past the interpreter's recursion limit
    assert document_problem(deep) is not None


def refusal(raw: bytes | str, type_: Any) -> BadInput:
    with pytest.raises(BadInput) as caught:
        decode_untrusted(raw, untrusted_decoder(type_))
    return caught.value


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"user_agent": "a\\u0000b"}', "user_agent"),
        (b'{"user_agent": "two\\nlines"}', "user_agent"),
        (b'{"user_agent": "final line feed\\n"}', "user_agent"),
        (b'{"user_id": "\\u001b[31mred"}', "user_id"),
        (b'{"consent_flag": "true"}', "consent_flag"),
        (b'{"consent_flag": 1}', "consent_flag"),
        (b'{"consent_flag": "1"}', "consent_flag"),
        (b'{"surprise": 1}', "surprise"),
    ],
)
def test_registration_bodies_are_held_to_the_rule(raw: bytes, field: str) -> None:
    assert refusal(raw, RegisterNodeRequest).field == field


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"job_type": "t", "payload": {}, "lease_s": "60"}', "lease_s"),
        (b'{"job_type": "t", "payload": {}, "lease_s": "1e3"}', "lease_s"),
        (b'{"job_type": "t", "payload": {}, "max_retries": "3"}', "max_retries"),
        (b'{"job_type": "t", "payload": {}, "priority": "5"}', "priority"),
        (b'{"job_type": "t", "payload": {"html": ["x", {"y": "\\u0000"}]}}', "payload.html[1].y"),
        (b'{"job_type": "t", "payload": {}, "dataset_source": "a\\u0007"}', "dataset_source"),
    ],
)
def test_job_bodies_are_strict_at_every_depth(raw: bytes, field: str) -> None:
    assert refusal(raw, SubmitJobRequest).field == field


def test_multi_line_fields_keep_their_line_ends() -> None:
    decoded = decode_untrusted(
        b'{"job_type": "t", "payload": {"html": "a\\r\\n\\tb"}}', untrusted_decoder(SubmitJobRequest)
    )
    assert decoded.payload == {"html": "a\r\n\tb"}


def test_invalid_utf8_and_deep_nesting_are_bad_input_not_crashes() -> None:
    assert "UTF-8" in refusal(b'{"user_agent": "\xff\xfe"}', RegisterNodeRequest).message
    assert refusal(b'{"user_agent": "\xed\xa0\x80"}', RegisterNodeRequest).message.startswith("the body is not valid")
    deep = b'{"job_type": "t", "payload": {"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
    assert "nests deeper" in refusal(deep, SubmitJobRequest).message
    shallow_but_too_deep = b'{"job_type": "t", "payload": ' + b'{"a": ' * 40 + b"1" + b"}" * 41
    assert "nests deeper than" in refusal(shallow_but_too_deep, SubmitJobRequest).message
    assert refusal(b'{"user_agent": "\\ud800"}', RegisterNodeRequest).message.startswith("malformed JSON")


def test_frames_and_batch_lines_share_the_rule() -> None:
    assert refusal(b'{"type": "fail", "job_id": "j", "reason": "x\\u0000"}', NodeFrame).field == "reason"
    assert refusal(b'{"type": "ready", "slots": 1000000}', NodeFrame).field == "slots"
    assert refusal(b'{"type": "heartbeat", "job_ids": ["a\\u0000"]}', NodeFrame).field == "job_ids[0]"
    assert refusal(b'{"type": "bye", "extra": "\xed\xa0\x80"}', NodeFrame).field == "extra"
    assert refusal(b'{"type": "bye", "extra": "x"}', NodeFrame).field == "extra"
    assert refusal(b'{"type": "bye", "reason": "a\\u2028b"}', NodeFrame).field == "reason"
    line = b'{"job_type": "extract_text", "payload": {"html": "\\u0000"}}'
    assert refusal(line, BatchLine).field == "payload.html"
    assert refusal(line, BatchLine).message.startswith("payload.html holds a forbidden character U+0000")


def test_a_hostile_key_does_not_make_the_field_name_huge() -> None:
    raw = msgspec.json.encode({"job_type": "t", "payload": {"k" * 10_000: "\x00"}})
    field = refusal(raw, SubmitJobRequest).field
    assert field is not None
    assert len(field) <= 201
