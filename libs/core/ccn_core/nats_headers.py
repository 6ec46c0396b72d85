"""A faster header parser for nats-py 2.16, installed in place of its own.

nats-py parses every message's headers with `Client._parse_header_lines`, which checks each
header name for whitespace one character at a time through a generator. With the dozen headers a
JetStream event carries back (ours, the server's Nats-* ones, traceparent), that check was about
two thirds of the time to read a stream back: replaying CCN_JOBS ran at ~7,000 events/s, and
every projection and reactor paid ~20 µs per event for it. `str.split()` makes the same check
(the same whitespace, str.isspace's) in C. The result is the same dict for every input
(tests/unit/test_nats_headers.py compares the two on the cases nats-py documents).

Installed only on the nats-py version it was written against: on another, nats-py's own parser
stays, and a warning says so.
"""

from __future__ import annotations

import importlib.metadata

from nats.aio.client import Client

from ccn_core.logging import get_logger

log = get_logger("ccn.nats_headers")
WRITTEN_FOR = "2.16."
_CRLF = b"\r\n"


# what bytes.strip() strips: the ASCII whitespace (str.strip() would strip Unicode's as well)
_ASCII_SPACE = " \t\n\r\x0b\x0c"


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """`Name: Value\\r\\n` lines → {name: value}, exactly as nats-py 2.16's parser answers.

    The block is decoded once: the separators (CR, LF, the colon) are ASCII, which UTF-8 never
    uses inside a multi-byte sequence, so splitting the text gives the pieces splitting the
    bytes would, and a name that is not ASCII is still refused."""
    out: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip(_ASCII_SPACE)
        if not key.isascii():
            continue
        if key and key.split(None, 1) != [key]:
            continue  # whitespace inside the name: not a token
        out[key] = value.strip(_ASCII_SPACE)
    return out


def install() -> bool:
    """Put the faster parser in place; False (and nats-py's own stays) on an unknown version."""
    version = importlib.metadata.version("nats-py")
    if not version.startswith(WRITTEN_FOR):
        log.warning("nats-py's own header parser kept", nats_py=version, written_for=WRITTEN_FOR)
        return False
    Client._parse_header_lines = staticmethod(parse_header_lines)  # type: ignore[method-assign]
    return True


ORIGINAL_PARSER = Client.__dict__["_parse_header_lines"].__func__
INSTALLED = install()
