"""A domain's circuit breaker, pure: closed → open → half_open → closed (or open again).

- closed: every fetch passes; `failure_threshold` failures in a row (a 5xx, a timeout, a refused
  or broken connection, a TLS error) open it. A success resets the count.
- open: nothing passes until `open_until`; then the first fetch asked for moves it to half_open
  and is let through as the one probe.
- half_open: only the probe is out; others are refused. The probe's success closes the breaker,
  its failure opens it again for twice the last cool-down (at most `max_cool_down_s`), so a site
  that stays down is probed less and less often. A probe that was never sent (refused later,
  its replica died) leaves half_open as it was: the next fetch asked for is the next probe.

Results of fetches that started before the breaker opened are ignored once it is open: they say
nothing about the site after the failures that opened it. Every move is a BreakerChanged event
(ccn_proto.fetch) for the fetch proxy to record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, NamedTuple

import msgspec

from ccn_core.ratelimit import NS_PER_S
from ccn_proto.fetch import BreakerChanged, BreakerState

Passage = Literal["pass", "probe", "refuse"]


class BreakerConfig(msgspec.Struct, frozen=True, kw_only=True):
    failure_threshold: int = 5
    cool_down_s: float = 30.0
    max_cool_down_s: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.failure_threshold <= 1000:
            raise ValueError("failure_threshold must be from 1 to 1000")
        if not 0.001 <= self.cool_down_s <= self.max_cool_down_s <= 3600.0:  # also refuses NaN
            raise ValueError("need 0.001 <= cool_down_s <= max_cool_down_s <= 3600")


class Breaker(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    state: BreakerState = "closed"
    consecutive_failures: int = 0
    open_until_ns: int = 0
    reopened: int = 0  # probes failed in a row: the cool-down doubles with each


class BreakerVerdict(NamedTuple):
    breaker: Breaker
    passage: Passage
    retry_after_s: float  # when refused: when to ask again
    events: list[BreakerChanged]


def ns_to_datetime(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / NS_PER_S, tz=UTC)


def cool_down_ns(reopened: int, config: BreakerConfig) -> int:
    seconds = min(config.cool_down_s * 2.0 ** min(reopened, 32), config.max_cool_down_s)
    return round(seconds * NS_PER_S)


def breaker_passage(breaker: Breaker, domain: str, probe_out: bool, now_ns: int) -> BreakerVerdict:
    """May a fetch start now? `probe_out`: a live probe is already in flight."""
    match breaker.state:
        case "closed":
            return BreakerVerdict(breaker, "pass", 0.0, [])
        case "open" if now_ns < breaker.open_until_ns:
            return BreakerVerdict(breaker, "refuse", (breaker.open_until_ns - now_ns) / NS_PER_S, [])
        case "open":
            half_open = msgspec.structs.replace(breaker, state="half_open")
            changed = _changed(domain, breaker, half_open, "cool-down over: one probe")
            return BreakerVerdict(half_open, "probe", 0.0, [changed])
        case _ if probe_out:
            return BreakerVerdict(breaker, "refuse", 1.0, [])
        case _:
            return BreakerVerdict(breaker, "probe", 0.0, [])


def breaker_learns(
    breaker: Breaker, domain: str, failed: bool, probe: bool, now_ns: int, config: BreakerConfig
) -> tuple[Breaker, list[BreakerChanged]]:
    """The breaker after a fetch it let through answered (or failed)."""
    match breaker.state:
        case "closed" if not failed:
            if breaker.consecutive_failures == 0:
                return breaker, []
            return msgspec.structs.replace(breaker, consecutive_failures=0), []
        case "closed":
            failures = breaker.consecutive_failures + 1
            if failures < config.failure_threshold:
                return msgspec.structs.replace(breaker, consecutive_failures=failures), []
            opened = Breaker(
                state="open", consecutive_failures=failures, open_until_ns=now_ns + cool_down_ns(0, config), reopened=0
            )
            return opened, [_changed(domain, breaker, opened, f"{failures} failures in a row")]
        case "half_open" if probe and failed:
            reopened = breaker.reopened + 1
            opened = Breaker(
                state="open",
                consecutive_failures=breaker.consecutive_failures + 1,
                open_until_ns=now_ns + cool_down_ns(reopened, config),
                reopened=reopened,
            )
            return opened, [_changed(domain, breaker, opened, "the probe failed")]
        case "half_open" if probe:
            closed = Breaker()
            return closed, [_changed(domain, breaker, closed, "the probe succeeded")]
    return breaker, []  # open, or a non-probe answer while half open: it decides nothing


def _changed(domain: str, before: Breaker, after: Breaker, reason: str) -> BreakerChanged:
    return BreakerChanged(
        domain=domain,
        state=after.state,
        previous=before.state,
        reason=reason,
        consecutive_failures=after.consecutive_failures,
        open_until=ns_to_datetime(after.open_until_ns) if after.state == "open" else None,
    )
