"""The faster header parser answers as nats-py's own does, on every case nats-py documents."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from ccn_core.nats_headers import INSTALLED, ORIGINAL_PARSER, parse_header_lines

CASES = [
    b"",
    b"Nats-Msg-Id: abc\r\nccn-type: job.created\r\n",
    b"Name:Value\r\nOther:\tTabbed value \r\n",
    b"Bad Name: dropped\r\nGood: kept\r\n",
    b"Bad\x1cName: dropped (an ASCII whitespace str.isspace knows)\r\n",
    b"no colon here\r\n: empty name\r\n",
    b"Caf\xc3\xa9: non-ascii name dropped\r\nValue: caf\xc3\xa9 \xff broken utf-8\r\n",
    b"Dup: one\r\nDup: two\r\n",
    b"  Spaced-Name  :  spaced value  \r\n\r\n",
    b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
    b"Nats-Expected-Last-Subject-Sequence-Subject: ccn.job.x.*\r\n",
    b"Broken: \xe2\r\nNext: \xe2\x82\r\nLast: ok \x1c\xc2\xa0 \r\n",  # cut sequences; Unicode space kept
    b"Na\xffme: dropped\r\n\xe2\x82\xac: euro name dropped\r\n",
]


@pytest.mark.parametrize("raw", CASES)
def test_the_same_dict_as_nats_pys_own_parser(raw: bytes) -> None:
    assert parse_header_lines(raw) == ORIGINAL_PARSER(raw)


def test_it_is_the_parser_nats_py_uses() -> None:
    assert INSTALLED
    assert Client._parse_header_lines is parse_header_lines


# pieces a header block is made of, the awkward ones included: separators, whitespace of every
# kind bytes.strip() and str.split() know, non-ASCII and broken UTF-8
_PIECES = [b"Name", b"x", b"-", b":", b" ", b"\t", b"\x0b", b"\x0c", b"\x1c", b"\r", b"\n", b"\r\n", b"\r\n\r\n"]
_PIECES += [b"\xc3\xa9", b"\xe2\x82", b"\xff", b"\xc2\xa0", b"NATS/1.0", b"Nats-Sequence: 12", b"v a l"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=24))
def test_the_same_dict_as_nats_pys_own_parser_for_any_block_of_awkward_pieces(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert parse_header_lines(raw) == ORIGINAL_PARSER(raw)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1),
            st.text(st.characters(exclude_characters="\r\n"), max_size=40),
        ),
        max_size=30,
    )
)
def test_the_same_dict_for_well_formed_blocks(fields: list[tuple[str, str]]) -> None:
    raw = b"".join(f"{name}: {value}\r\n".encode("utf-8", "surrogatepass") for name, value in fields) + b"\r\n"
    assert parse_header_lines(raw) == ORIGINAL_PARSER(raw)
