"""The faster header parser answers as nats-py's own does, on every case nats-py documents."""

from __future__ import annotations

import pytest
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
