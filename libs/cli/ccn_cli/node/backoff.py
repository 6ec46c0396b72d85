"""How long a node waits before it reconnects: exponential with full jitter, capped.

The delay policy is ccn_core's RetryPolicy (the same one that spaces job retries), counted in
consecutive failures. A connection that stayed up for `stable_after_s` resets the count, so a
node that lost a healthy connection comes back quickly while one whose edge keeps dropping it
slows down. An edge's `retry_after` is a floor: a node never comes back sooner than asked."""

from __future__ import annotations

import msgspec

from ccn_core.retry_policy import RetryPolicy


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    policy: RetryPolicy = RetryPolicy(base_s=0.5, cap_s=30.0)
    stable_after_s: float = 10.0
    failures: int = 0

    def after_failure(self) -> Backoff:
        """A connection attempt failed, or a connection ended before it was stable."""
        return msgspec.structs.replace(self, failures=self.failures + 1)

    def after_connection(self, lasted_s: float) -> Backoff:
        """A connection was welcomed and has now ended after `lasted_s` seconds."""
        if lasted_s >= self.stable_after_s:
            return msgspec.structs.replace(self, failures=1)
        return self.after_failure()

    def reset(self) -> Backoff:
        return msgspec.structs.replace(self, failures=0)

    def delay_s(self, jitter: float, retry_after: float | None = None) -> float:
        """`jitter` is a draw from [0, 1); no wait at all before the first attempt."""
        drawn = self.policy.delay_s(self.failures, jitter) if self.failures > 0 else 0.0
        return max(drawn, retry_after or 0.0)
