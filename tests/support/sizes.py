"""A battery's two sizes: the small form runs in every `make test`, the full one only with
CCN_SLOW=1 (and carries the `slow` marker, so `-m slow` picks it)."""

from __future__ import annotations

import os
from typing import Any

import pytest

SLOW = bool(os.environ.get("CCN_SLOW"))


def small_and_full(small: Any, full: Any, what: str) -> list[Any]:
    """`pytest.mark.parametrize` values: `small` always, `full` behind CCN_SLOW. `what` names the
    full form in the skip reason ("the full chaos battery")."""
    return [
        pytest.param(small, id="small"),
        pytest.param(
            full,
            id="full",
            marks=[pytest.mark.slow, pytest.mark.skipif(not SLOW, reason=f"{what}: set CCN_SLOW=1")],
        ),
    ]
