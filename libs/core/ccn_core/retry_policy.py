"""When a failed or abandoned job may run again: exponential backoff with full jitter.

Full jitter (a uniform draw below the exponential ceiling) spreads retries of jobs that failed
together, e.g. all the jobs of a node that vanished, so they do not return as one wave."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    base_s: float = 2.0
    cap_s: float = 300.0

    def delay_s(self, attempt: int, jitter: float) -> float:
        """`attempt` is the one that just failed (1-based); `jitter` a draw from [0, 1)."""
        ceiling: float = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        return ceiling * jitter

    def retry_at(self, now: datetime, attempt: int, jitter: float) -> datetime:
        return now + timedelta(seconds=self.delay_s(attempt, jitter))
