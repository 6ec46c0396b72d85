"""The rate-limit decision: GCRA (the generic cell rate algorithm), pure.

A limit of `rate` requests per `period_s`, `burst` of them at once, is one number per key: the
theoretical arrival time (TAT), when the key would be back to "idle" had every request it was
allowed arrived exactly one emission interval (period / rate) after the last. A request of
`cost` moves the TAT forward by cost intervals; it is allowed when the moved TAT is at most
burst intervals ahead of now. So a fresh key takes `burst` at once, then one per interval.

Two properties the shared store (ccn_core.shared_limiter) rests on:
- the TAT only ever grows, so a state read a while ago can only be more lenient than the
  truth, never stricter: a denial decided from it is a denial the truth would give too;
- time is an argument, so a clock that goes backwards changes nothing that was allowed: the
  TAT is never moved back, and the decision is only stricter until the clock catches up.

Times are integer nanoseconds, so boundaries are exact; an emission interval that does not
divide evenly is rounded up (stricter by at most a nanosecond a request, never more lenient).
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

NS_PER_S = 1_000_000_000
MAX_RATE = 1_000_000
MAX_BURST = 1_000_000
MAX_PERIOD_S = 86_400.0
MIN_PERIOD_S = 0.001


class LimitError(ValueError):
    """A limit or a cost that cannot be decided on: zero or negative, out of bounds, or a cost
    over the burst (such a request could never be allowed, so refusing it for a while would lie)."""


class GcraState(msgspec.Struct, frozen=True, gc=False):
    tat_ns: int  # theoretical arrival time, nanoseconds on the deciders' clock


class Decision(NamedTuple):
    allowed: bool
    retry_after_s: float  # 0 when allowed; else when the same request would be
    remaining: int  # requests of cost 1 that would be allowed right after this decision
    state: GcraState  # the key's state after the decision (unchanged when refused)


def emission_interval_ns(rate: int, period_s: float) -> int:
    """period / rate in nanoseconds, rounded up."""
    period_ns = round(period_s * NS_PER_S)
    return -(-period_ns // rate)


def check_limit(rate: int, period_s: float, burst: int) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
        raise LimitError(f"rate must be an integer from 1 to {MAX_RATE}, not {rate!r}")
    if not MIN_PERIOD_S <= period_s <= MAX_PERIOD_S:  # also refuses NaN
        raise LimitError(f"period_s must be from {MIN_PERIOD_S} to {MAX_PERIOD_S:.0f}, not {period_s!r}")
    if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_BURST:
        raise LimitError(f"burst must be an integer from 1 to {MAX_BURST}, not {burst!r}")


def gcra(rate: int, period_s: float, burst: int, state: GcraState | None, now_ns: int, cost: int = 1) -> Decision:
    """Decide one request of `cost` against a key in `state` (None: never seen, or idle)."""
    check_limit(rate, period_s, burst)
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise LimitError(f"cost must be a positive integer, not {cost!r}")
    if cost > burst:
        raise LimitError(f"a cost of {cost} is over the burst of {burst}: it could never be allowed")
    interval = emission_interval_ns(rate, period_s)
    tolerance = interval * burst
    tat = now_ns if state is None else max(state.tat_ns, now_ns)
    new_tat = tat + interval * cost
    allow_at = new_tat - tolerance
    if allow_at > now_ns:
        # below zero only when the clock went back past what was allowed
        remaining = max(0, (now_ns + tolerance - tat) // interval)
        return Decision(False, (allow_at - now_ns) / NS_PER_S, remaining, GcraState(tat_ns=tat))
    return Decision(True, 0.0, (now_ns + tolerance - new_tat) // interval, GcraState(tat_ns=new_tat))
