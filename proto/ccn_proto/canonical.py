"""A result's canonical bytes and checksum: what the node sends, the scheduler recomputes, the
validator checks and replicas are compared by. One definition below every library that needs it."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

_encode = msgspec.json.Encoder(order="sorted").encode


def canonical_result_bytes(result: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities encode as null."""
    return _encode(result)


def result_checksum(result: Any) -> str:
    """sha256 hex of the canonical bytes."""
    return hashlib.sha256(_encode(result)).hexdigest()
