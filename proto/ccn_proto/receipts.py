"""Signed receipts, the service keys that sign them, and the nodes' signatures over results.

A receipt says "the service judged this node's result of this job, with this checksum, so, at
this time", signed with Ed25519 by one of the service's keys (`key_id`). Anyone holding the
published key set (GET /receipts/keys at the edge, or its file export) checks a receipt
offline: `ccn receipts verify FILE`.

What is signed, so that a verifier in any language computes the same bytes:

- a receipt: RECEIPT_DOMAIN, then the JSON object of every field but `signature` with its keys
  sorted and no whitespace (UTF-8), `issued_at` written as RFC 3339 in UTC with microseconds
  and a `Z` (`2026-12-07T04:00:00.000000Z`), absent values as null;
- a node's result: RESULT_DOMAIN, then `<job_id>\\n<attempt>\\n<checksum>` (ASCII: a job id holds
  no line break, a checksum is lower-case hex).

The domain prefixes keep a signature of one kind from ever passing for the other. Keys and
signatures travel as unpadded base64url (RFC 4648 §5): 43 characters for a 32-byte Ed25519
public key, 86 for a 64-byte signature. Every field is closed and bounded: a receipt is a small
document, and one that is not exactly this shape is malformed, not merely invalid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ccn_proto.constraints import END, Sha256Hex

RECEIPT_FORMAT: Literal[1] = 1
KEY_SET_FORMAT: Literal[1] = 1
RECEIPT_DOMAIN = b"ccn-receipt/1\n"
RESULT_DOMAIN = b"ccn-result/1\n"
# a receipt is a few hundred bytes and a key set a few hundred per key: anything far larger is
# not one, and is refused before it is parsed
MAX_RECEIPT_BYTES = 4 * 1024
MAX_KEYS = 256
MAX_KEY_SET_BYTES = 64 * 1024

# the scheduler's job and node ids (ccn_proto.scheduler, which carries receipts and so cannot be
# imported here)
JobId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9_-]+{END}")]
NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9_-]+{END}")]
KeyId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9._-]+{END}")]
PublicKey = Annotated[str, msgspec.Meta(pattern=rf"^[A-Za-z0-9_-]{{43}}{END}")]
Signature = Annotated[str, msgspec.Meta(pattern=rf"^[A-Za-z0-9_-]{{86}}{END}")]
Attempt = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
# a time with its offset: a naive time means different instants to signer and verifier
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
# validated: the result passed its job type's checks; verified / finalised: replicas agreed
# (consensus); rejected: it failed them (a receipt of a refusal is evidence too)
Verdict = Literal["validated", "verified", "finalised", "rejected"]
KeyStatus = Literal["active", "retired"]


class Receipt(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`node_signature`: the node's own signature over its result (RESULT_DOMAIN), as the edge
    checked it; None when the node signed nothing (a node registered without a key): the
    receipt then attests the service's verdict only, not that this node sent the result."""

    format: Literal[1] = RECEIPT_FORMAT
    job_id: JobId
    attempt: Attempt
    node_id: NodeId
    result_checksum: Sha256Hex
    verdict: Verdict
    issued_at: AwareTime
    node_signature: Signature | None = None
    key_id: KeyId
    signature: Signature


class PublishedKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One service key, public part only. A receipt verifies against it when it was issued
    within [valid_from, valid_until); a retired key keeps verifying the receipts of its time."""

    key_id: KeyId
    algorithm: Literal["ed25519"] = "ed25519"
    public_key: PublicKey
    valid_from: AwareTime
    valid_until: AwareTime | None = None  # None: the active key, valid until rotated
    status: KeyStatus


class KeySet(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The published keys, oldest first; exactly one is active in a ring's own set."""

    format: Literal[1] = KEY_SET_FORMAT
    keys: Annotated[list[PublishedKey], msgspec.Meta(max_length=MAX_KEYS)]
