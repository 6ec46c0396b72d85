"""The receipts a node was given for its results, kept as a directory of JSON files:
<CCN_HOME>/node/<name>-receipts/<job_id>.<attempt>.json, one receipt each, exactly as the
service signed it (`ccn receipts verify FILE` checks one offline). The directory is the node
owner's alone (0700, files 0600): a receipt names the node and its work.

A receipt for the same job and attempt replaces the earlier one (a later verdict, e.g.
finalised after validated); nothing else is ever deleted here."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from ccn_core.atomic_files import write_atomic
from ccn_core.receipts import MalformedReceipt, decode_receipt
from ccn_proto.receipts import MAX_RECEIPT_BYTES, Receipt

DIR_MODE = 0o700
FILE_MODE = 0o600
# a listing reads at most this many files: a directory grown huge is read in parts by the caller
MAX_LISTED = 10_000


def receipts_dir(home: Path, name: str) -> Path:
    """Beside the node's credentials file (<home>/node/<name>.json); `name` is checked by the
    node's config (letters, digits, '.', '_', '-')."""
    return home / "node" / f"{name}-receipts"


def receipt_path(directory: Path, receipt: Receipt) -> Path:
    # job ids are [A-Za-z0-9_-] (the Receipt type says so): safe as a file name
    return directory / f"{receipt.job_id}.{receipt.attempt}.json"


def store_receipt(directory: Path, receipt: Receipt) -> Path:
    """Write `receipt` atomically (a crash leaves the old file or the new one); its path."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path = receipt_path(directory, receipt)
    write_atomic(path, msgspec.json.format(msgspec.json.encode(receipt)) + b"\n", FILE_MODE)
    return path


def stored_receipts(directory: Path, limit: int = MAX_LISTED) -> list[tuple[Path, Receipt | MalformedReceipt]]:
    """The stored receipts in name order, at most `limit`, each decoded or the reason it is not
    a receipt (a damaged file is reported, never fatal)."""
    try:
        names = sorted(entry.name for entry in os.scandir(directory) if entry.name.endswith(".json"))
    except FileNotFoundError:
        return []
    found: list[tuple[Path, Receipt | MalformedReceipt]] = []
    for name in names[:limit]:
        path = directory / name
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_RECEIPT_BYTES + 1)
            found.append((path, decode_receipt(data)))
        except MalformedReceipt as exc:
            found.append((path, exc))
        except OSError as exc:
            found.append((path, MalformedReceipt(f"cannot read {path}: {exc.strerror}")))
    return found
