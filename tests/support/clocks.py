"""A monotonic clock a test moves by hand: exact ages and waits, no sleeps."""

from __future__ import annotations


class ManualClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
