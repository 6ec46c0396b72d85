"""Log lines for refused connections and requests that a flood cannot turn into a flood of lines.

The first refusal of a kind is logged at once, in full, so an operator sees what happened and
to whom; the rest of that kind within the next `window_s` are counted, and one summary line at
the window's end says how many there were and which keys (ip_hash, node id, path) had most.
So a kind costs at most two lines per window whatever the rate. RefusalTally decides, without
I/O or a clock; RefusalLog writes the lines and closes windows on the event loop's timer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import structlog
from structlog.typing import FilteringBoundLogger

from ccn_core.logging import get_logger

log = get_logger("ccn.refusals")

WINDOW_S = 10.0
TOP_KEYS = 5


@dataclass(frozen=True)
class RefusalSummary:
    kind: str
    refused: int  # after the one logged in full
    keys: int  # distinct keys among them
    top: list[tuple[str, int]]  # the keys refused most, with their counts


@dataclass
class RefusalTally:
    _windows: dict[str, Counter[str]] = field(default_factory=dict)

    def note(self, kind: str, key: str) -> bool:
        """Count one refusal; True when it opens a window (log it in full, close the window
        later), False when it is counted into the open one."""
        window = self._windows.get(kind)
        if window is None:
            self._windows[kind] = Counter()
            return True
        window[key] += 1
        return False

    def close(self, kind: str) -> RefusalSummary | None:
        """End the kind's window: what was counted in it, or None when nothing was."""
        window = self._windows.pop(kind, None)
        if not window:
            return None
        return RefusalSummary(kind=kind, refused=window.total(), keys=len(window), top=window.most_common(TOP_KEYS))


class RefusalLog:
    def __init__(self, window_s: float = WINDOW_S, logger: FilteringBoundLogger = log) -> None:
        self._window_s = window_s
        self._log = logger
        self._tally = RefusalTally()

    def refused(self, kind: str, key: str, message: str, **details: object) -> None:
        """A refusal of `kind` for `key`; `message` and `details` go on the full line."""
        if not self._tally.note(kind, key):
            return
        self._log.warning(message, refusal=kind, key=key, **details)
        asyncio.get_running_loop().call_later(self._window_s, self._close, kind)

    def _close(self, kind: str) -> None:
        summary = self._tally.close(kind)
        if summary is None:
            return
        # the timer runs in a copy of the context of the refusal that opened the window: that
        # connection's correlation id does not describe the summary
        structlog.contextvars.unbind_contextvars("correlation_id", "node_id")
        self._log.warning(
            "more refusals",
            refusal=kind,
            refused=summary.refused,
            keys=summary.keys,
            top=[{"key": key, "refused": count} for key, count in summary.top],
            window_s=self._window_s,
        )
