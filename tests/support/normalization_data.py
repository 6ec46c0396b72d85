"""The shipped raw records of tests/data/normalization (synthetic; see its README) and how a
line's expectations are checked against a normalised record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

DATA = Path(__file__).resolve().parents[1] / "data" / "normalization"
AS_OF = "2026-12-07"


def lines(name: str) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in (DATA / name).read_bytes().splitlines() if line.strip()]


def mismatches(record: msgspec.Struct, expect: dict[str, Any]) -> list[str]:
    """Each expected field whose value differs, as "path: got X, want Y"; `issues` compares
    the issue codes in order."""
    built = msgspec.to_builtins(record)
    wrong = []
    for path, want in expect.items():
        if path == "issues":
            got: Any = [issue["code"] for issue in built["issues"]]
        else:
            got = built
            for key in path.split("."):
                got = got[key]
            got = list(got) if isinstance(got, tuple) else got
        if got != want:
            wrong.append(f"{path}: got {got!r}, want {want!r}")
    return wrong
