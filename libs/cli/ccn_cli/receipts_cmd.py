"""`ccn receipts verify|keys|rotate`: check a receipt offline against the published keys, export
the published keys, rotate the service's signing key.

`verify FILE` exits 0 when the receipt is valid, 1 when it is a receipt that does not verify
(the reason is printed: a changed field, an unknown key id, a time outside its key's validity),
2 when the input is malformed (the receipt file or the key set is not one, or cannot be read),
3 when the keys could not be had (the edge did not answer, this stack has no key ring). The
keys come from `--keys FILE` (a file exported by `ccn receipts keys` or saved from GET
/receipts/keys), from `--edge URL`, or by default from this stack's own key ring
(CCN_RECEIPT_KEYS_DIR, <home>/receipt-keys).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from ccn_cli.console import fail, say
from ccn_cli.subcommand import Subparsers
from ccn_core.receipts import (
    InvalidReceipt,
    KeyRingError,
    MalformedKeySet,
    MalformedReceipt,
    decode_key_set,
    decode_receipt,
    encode_key_set,
    load_key_set,
    rotate_key_ring,
    utc_text,
    verify_receipt,
)
from ccn_core.settings import Settings
from ccn_proto.receipts import MAX_KEY_SET_BYTES, MAX_RECEIPT_BYTES, KeySet

VALID, INVALID, MALFORMED, UNAVAILABLE = 0, 1, 2, 3
KEYS_PATH = "/receipts/keys"
_TIMEOUT_S = 10.0


class _Unreadable(Exception):
    """A file or URL that gave no bytes to judge; the message says why."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("receipts", help="verify signed receipts; export or rotate the receipt keys")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        help="check a receipt offline: exit 0 valid, 1 invalid, 2 malformed input, 3 keys unavailable",
    )
    verify.add_argument("file", type=Path, metavar="FILE", help="the receipt (JSON)")
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--keys", type=Path, metavar="KEYS.json", help="the published keys, as a file")
    source.add_argument("--edge", metavar="URL", help="fetch the published keys from this edge (GET /receipts/keys)")
    verify.set_defaults(run=run_verify)
    keys = actions.add_parser("keys", help="print the published receipt keys of this stack (public keys only)")
    keys.add_argument("--out", type=Path, help="write them to this file instead")
    keys.set_defaults(run=run_keys)
    rotate = actions.add_parser(
        "rotate", help="make a new signing key; the old one is retired and still verifies its receipts"
    )
    rotate.set_defaults(run=run_rotate)


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    try:
        raw = read_bounded(args.file, MAX_RECEIPT_BYTES)
        receipt = decode_receipt(raw)
    except _Unreadable as exc:
        fail(str(exc))
        return MALFORMED
    except MalformedReceipt as exc:
        fail(f"{args.file}: malformed receipt: {exc.message}" + (f" (field {exc.field})" if exc.field else ""))
        return MALFORMED
    try:
        keys = _keys(args, settings)
    except MalformedKeySet as exc:
        fail(f"malformed key set: {exc.message}" + (f" (field {exc.field})" if exc.field else ""))
        return MALFORMED
    except _Unreadable as exc:
        fail(str(exc))
        return MALFORMED if args.keys is not None else UNAVAILABLE
    except KeyRingError as exc:
        fail(str(exc))
        return UNAVAILABLE
    try:
        key = verify_receipt(receipt, keys)
    except InvalidReceipt as exc:
        fail(f"{args.file}: INVALID: {exc.message}")
        return INVALID
    signed = "signed by the node" if receipt.node_signature else "not signed by the node"
    say(
        f"{args.file}: VALID: job {receipt.job_id} attempt {receipt.attempt}, node {receipt.node_id}, "
        f"verdict {receipt.verdict}, result {receipt.result_checksum}, issued {utc_text(receipt.issued_at)} "
        f"with key {key.key_id} ({key.status}); result {signed}"
    )
    return VALID


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    try:
        data = encode_key_set(load_key_set(settings.receipt_keys_path))
    except KeyRingError as exc:
        fail(str(exc))
        return 1
    if args.out is None:
        sys.stdout.write(data.decode())
    else:
        args.out.write_bytes(data)
        say(f"wrote {args.out}")
    return 0


def run_rotate(_: argparse.Namespace, settings: Settings) -> int:
    try:
        ring = rotate_key_ring(settings.receipt_keys_path, datetime.now(UTC))
    except KeyRingError as exc:
        fail(str(exc))
        return 1
    say(
        f"new active receipt key {ring.active.key_id}; {len(ring.keys.keys) - 1} retired key(s) stay published "
        "(running services sign with the new key from their next receipt)"
    )
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> KeySet:
    if args.keys is not None:
        return decode_key_set(read_bounded(args.keys, MAX_KEY_SET_BYTES))
    if args.edge is not None:
        return decode_key_set(fetch_keys(args.edge))
    return load_key_set(settings.receipt_keys_path)


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, refused past `max_bytes` without reading further."""
    try:
        # non-blocking: a FIFO named as the file would otherwise hang here, not be refused
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise _Unreadable(f"cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _Unreadable(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _Unreadable(f"{path} is larger than {max_bytes} bytes: not what it should be")
    return data


def fetch_keys(edge_url: str) -> bytes:
    """GET <edge>/receipts/keys, read up to MAX_KEY_SET_BYTES; _Unreadable says why not."""
    parts = urllib.parse.urlsplit(edge_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _Unreadable(f"--edge {edge_url!r} is not an http(s) URL")
    url = edge_url.rstrip("/") + KEYS_PATH
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:  # noqa: S310 - scheme checked above
            data: bytes = response.read(MAX_KEY_SET_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise _Unreadable(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise _Unreadable(f"{url} is not reachable ({reason})") from None
    if len(data) > MAX_KEY_SET_BYTES:
        raise _Unreadable(f"{url} sent more than {MAX_KEY_SET_BYTES} bytes: not a key set")
    return data
