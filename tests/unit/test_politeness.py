"""Politeness as tables on exact boundaries: which limit refuses and when to come back, the
sliding-window guarantee of the per-minute and per-hour limits, AutoThrottle, the circuit
breaker's moves and the limit alert's once-per-window."""

from __future__ import annotations

import random

import msgspec
import pytest

from ccn_core.autothrottle import ThrottleConfig, next_delay
from ccn_core.circuit_breaker import Breaker, BreakerConfig, breaker_learns, breaker_passage, cool_down_ns
from ccn_core.domain.domain_policy import PolicyLimits
from ccn_core.politeness import (
    NOT_SENT,
    Alarm,
    AlarmConfig,
    DomainLimits,
    DomainTraffic,
    FetchResult,
    Lease,
    PolitenessConfig,
    admit,
    complete,
    limits_for,
    note_refusal,
    window_rule,
)
from ccn_core.ratelimit import NS_PER_S, GcraState
from ccn_proto.fetch import BreakerChanged, DomainLimitAlert

T0 = 1_800_000_000 * NS_PER_S
D = "grants.example.org"
NO_THROTTLE = PolitenessConfig(throttle=ThrottleConfig(start_delay_s=0.0, min_delay_s=0.0, max_delay_s=60.0))
WIDE = DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=64)


def s(seconds: float) -> int:
    return round(seconds * NS_PER_S)


def test_limits_come_from_the_policy_and_the_defaults_fill_what_it_leaves_none() -> None:
    defaults = DomainLimits(per_minute=30, per_hour=1000, max_concurrent=1)
    assert limits_for(PolicyLimits(), defaults) == defaults
    assert limits_for(PolicyLimits(requests_per_minute=5, max_concurrent=4), defaults) == DomainLimits(
        per_minute=5, per_hour=1000, max_concurrent=4
    )
    with pytest.raises(ValueError):
        DomainLimits(per_minute=0, per_hour=1, max_concurrent=1)


@pytest.mark.parametrize(
    ("limit", "divisor", "rule"),
    [
        (1, 20, (1, 60.0, 1)),
        (19, 20, (19, 60.0, 1)),
        (20, 20, (20, 60.0, 1)),
        (60, 20, (58, 60.0, 3)),
        (600, 20, (571, 60.0, 30)),
    ],
)
def test_a_window_rule_spends_its_burst_out_of_the_rate(limit: int, divisor: int, rule: tuple[int, float, int]) -> None:
    assert tuple(window_rule(limit, 60.0, divisor)) == rule


@pytest.mark.parametrize("per_minute", [1, 7, 60, 600])
def test_no_sliding_minute_ever_holds_more_than_the_limit(per_minute: int) -> None:
    limits = DomainLimits(per_minute=per_minute, per_hour=36_000, max_concurrent=64)
    rng = random.Random(per_minute)
    traffic, now, starts = DomainTraffic(), T0, []
    for i in range(3000):
        now += rng.choice((0, s(0.001), s(0.05), s(1.0), s(7.0)))
        admission = admit(traffic, D, limits, None, now, f"l{i}", NO_THROTTLE)
        if admission.lease is not None:
            starts.append(now)
            traffic = complete(admission.traffic, D, f"l{i}", NOT_SENT, now, NO_THROTTLE)[0]
    assert len(starts) > per_minute  # the test covers more than one window's worth
    window = s(60.0)
    for first, start in enumerate(starts):
        in_window = sum(1 for later in starts[first:] if later < start + window)
        assert in_window <= per_minute


def test_the_minute_limit_takes_its_burst_then_refuses_until_one_interval() -> None:
    limits = DomainLimits(per_minute=60, per_hour=36_000, max_concurrent=64)
    traffic = DomainTraffic()
    for i in range(3):
        admission = admit(traffic, D, limits, None, T0, f"l{i}", NO_THROTTLE)
        assert admission.lease is not None
        traffic = admission.traffic
    refused = admit(traffic, D, limits, None, T0, "l3", NO_THROTTLE)
    interval = -(-s(60.0) // 58)
    assert (refused.refused_by, refused.retry_after_s, refused.final) == ("per_minute", interval / NS_PER_S, True)
    assert refused.traffic is traffic
    assert admit(traffic, D, limits, None, T0 + interval - 1, "l3", NO_THROTTLE).refused_by == "per_minute"
    assert admit(traffic, D, limits, None, T0 + interval, "l3", NO_THROTTLE).lease is not None


def test_the_hour_limit_refuses_when_the_minute_would_allow() -> None:
    limits = DomainLimits(per_minute=600, per_hour=2, max_concurrent=64)
    traffic = admit(DomainTraffic(), D, limits, None, T0, "a", NO_THROTTLE).traffic
    refused = admit(traffic, D, limits, None, T0 + s(1), "b", NO_THROTTLE)
    assert (refused.refused_by, refused.retry_after_s) == ("per_hour", 1799.0)


def test_crawl_delay_is_a_minimum_interval_to_the_nanosecond() -> None:
    traffic = admit(DomainTraffic(), D, WIDE, 2.5, T0, "a", NO_THROTTLE).traffic
    assert traffic.next_start_ns == T0 + s(2.5)
    early = admit(traffic, D, WIDE, 2.5, T0 + s(2.5) - 1, "b", NO_THROTTLE)
    assert (early.refused_by, early.retry_after_s, early.final) == ("crawl_delay", 1e-9, True)
    assert admit(traffic, D, WIDE, 2.5, T0 + s(2.5), "b", NO_THROTTLE).lease is not None


@pytest.mark.parametrize(
    ("crawl_delay_s", "next_start_s"),
    [(None, 0.0), (0.0, 0.0), (-3.0, 0.0), (float("nan"), 0.0), (float("inf"), 0.0), (1e9, 600.0)],
)
def test_a_hostile_crawl_delay_is_bounded(crawl_delay_s: float | None, next_start_s: float) -> None:
    traffic = admit(DomainTraffic(), D, WIDE, crawl_delay_s, T0, "a", NO_THROTTLE).traffic
    assert traffic.next_start_ns == T0 + s(next_start_s)


def test_the_autothrottle_delay_spaces_starts_when_longer_than_the_crawl_delay() -> None:
    traffic = DomainTraffic(throttle_delay_s=4.0)
    assert admit(traffic, D, WIDE, 1.0, T0, "a", NO_THROTTLE).traffic.next_start_ns == T0 + s(4.0)
    unlearnt = admit(DomainTraffic(), D, WIDE, None, T0, "a", PolitenessConfig())
    assert unlearnt.traffic.next_start_ns == T0 + s(PolitenessConfig().throttle.start_delay_s)


def test_retry_after_from_a_429_or_503_holds_every_fetch_until_then() -> None:
    admitted = admit(DomainTraffic(), D, WIDE, None, T0, "a", NO_THROTTLE)
    traffic, _ = complete(
        admitted.traffic, D, "a", FetchResult(status=429, latency_s=0.1, retry_after_s=30.0), T0, NO_THROTTLE
    )
    assert traffic.retry_after_until_ns == T0 + s(30.0)
    refused = admit(traffic, D, WIDE, None, T0 + s(29.0), "b", NO_THROTTLE)
    assert (refused.refused_by, refused.retry_after_s) == ("retry_after", 1.0)
    assert admit(traffic, D, WIDE, None, T0 + s(30.0), "b", NO_THROTTLE).lease is not None
    # Retry-After on a 200 is not a request to wait; a huge one is bounded by an hour
    ok, _ = complete(admitted.traffic, D, "a", FetchResult(status=200, retry_after_s=30.0), T0, NO_THROTTLE)
    assert ok.retry_after_until_ns == 0
    huge, _ = complete(admitted.traffic, D, "a", FetchResult(status=503, retry_after_s=1e12), T0, NO_THROTTLE)
    assert huge.retry_after_until_ns == T0 + s(3600.0)


def test_concurrency_counts_live_leases_and_an_expired_lease_frees_its_slot() -> None:
    limits = DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=2)
    config = msgspec.structs.replace(NO_THROTTLE, lease_s=10.0)
    traffic = DomainTraffic()
    for lease in ("a", "b"):
        traffic = admit(traffic, D, limits, None, T0, lease, config).traffic
    full = admit(traffic, D, limits, None, T0 + s(1), "c", config)
    assert (full.refused_by, full.final) == ("concurrent", False)
    # a released lease frees its slot at once
    released, _ = complete(traffic, D, "a", NOT_SENT, T0 + s(1), config)
    assert admit(released, D, limits, None, T0 + s(1), "c", config).lease is not None
    # a lease whose holder died frees its slot when it expires, not a nanosecond before
    assert admit(traffic, D, limits, None, T0 + s(10) - 1, "c", config).refused_by == "concurrent"
    after = admit(traffic, D, limits, None, T0 + s(10), "c", config)
    assert after.lease is not None and [lease.id for lease in after.traffic.leases] == ["c"]


def test_the_order_of_refusals_names_the_first_limit_that_refuses() -> None:
    spent_minute = GcraState(tat_ns=T0 + s(3600))
    crowded = (Lease(id="x", expires_ns=T0 + s(60)),)
    base = DomainTraffic(minute=spent_minute, hour=GcraState(tat_ns=T0 + s(7200) * 100), leases=crowded)
    limits = DomainLimits(per_minute=1, per_hour=1, max_concurrent=1)
    opened = Breaker(state="open", open_until_ns=T0 + s(5))
    rows = [
        (msgspec.structs.replace(base, breaker=opened, retry_after_until_ns=T0 + s(9)), "breaker"),
        (msgspec.structs.replace(base, retry_after_until_ns=T0 + s(9), next_start_ns=T0 + s(9)), "retry_after"),
        (msgspec.structs.replace(base, next_start_ns=T0 + s(9)), "crawl_delay"),
        (base, "per_minute"),
        (msgspec.structs.replace(base, minute=None), "per_hour"),
        (msgspec.structs.replace(base, minute=None, hour=None), "concurrent"),
    ]
    for traffic, refused_by in rows:
        assert admit(traffic, D, limits, None, T0, "n", NO_THROTTLE).refused_by == refused_by


def test_a_breaker_opens_after_the_threshold_of_failures_in_a_row() -> None:
    config = BreakerConfig(failure_threshold=3, cool_down_s=30.0)
    breaker = Breaker()
    for failures in (1, 2):
        breaker, events = breaker_learns(breaker, D, True, False, T0, config)
        assert (breaker.state, breaker.consecutive_failures, events) == ("closed", failures, [])
    reset, _ = breaker_learns(breaker, D, False, False, T0, config)
    assert reset.consecutive_failures == 0
    opened, events = breaker_learns(breaker, D, True, False, T0, config)
    assert (opened.state, opened.open_until_ns) == ("open", T0 + s(30.0))
    assert [(e.previous, e.state, e.consecutive_failures, e.reason) for e in events] == [
        ("closed", "open", 3, "3 failures in a row")
    ]
    assert events[0].open_until is not None and events[0].open_until.timestamp() == (T0 + s(30.0)) / NS_PER_S
    # an answer to a fetch started before it opened decides nothing
    assert breaker_learns(opened, D, False, False, T0 + s(1), config) == (opened, [])


def test_an_open_breaker_refuses_until_its_cool_down_then_lets_one_probe_through() -> None:
    opened = Breaker(state="open", consecutive_failures=5, open_until_ns=T0 + s(30))
    traffic = DomainTraffic(breaker=opened)
    early = admit(traffic, D, WIDE, None, T0 + s(30) - 1, "p", NO_THROTTLE)
    assert (early.refused_by, early.retry_after_s, early.final) == ("breaker", 1e-9, True)
    probe = admit(traffic, D, WIDE, None, T0 + s(30), "p", NO_THROTTLE)
    assert probe.lease is not None and probe.lease.probe
    assert [(e.previous, e.state) for e in probe.events] == [("open", "half_open")]
    second = admit(probe.traffic, D, WIDE, None, T0 + s(31), "q", NO_THROTTLE)
    assert (second.refused_by, second.final) == ("breaker", False)
    # the probe succeeded: closed, and every fetch passes again
    closed, events = complete(probe.traffic, D, "p", FetchResult(status=200, latency_s=0.1), T0 + s(31), NO_THROTTLE)
    assert closed.breaker == Breaker() and [(e.previous, e.state) for e in events] == [("half_open", "closed")]


def test_a_failed_probe_opens_the_breaker_for_twice_as_long_up_to_the_maximum() -> None:
    config = BreakerConfig(failure_threshold=5, cool_down_s=30.0, max_cool_down_s=100.0)
    half = Breaker(state="half_open", consecutive_failures=5)
    opened, events = breaker_learns(half, D, True, True, T0, config)
    assert (opened.state, opened.open_until_ns, opened.reopened) == ("open", T0 + s(60), 1)
    assert [(e.previous, e.state, e.reason) for e in events] == [("half_open", "open", "the probe failed")]
    again, _ = breaker_learns(msgspec.structs.replace(opened, state="half_open"), D, True, True, T0, config)
    assert again.open_until_ns == T0 + s(100)
    assert cool_down_ns(40, config) == s(100)
    # a non-probe answer while half open decides nothing
    assert breaker_learns(half, D, True, False, T0, config) == (half, [])


def test_a_probe_never_sent_leaves_the_breaker_half_open_for_the_next_probe() -> None:
    traffic = DomainTraffic(
        breaker=Breaker(state="half_open"), leases=(Lease(id="p", expires_ns=T0 + s(60), probe=True),)
    )
    freed, events = complete(traffic, D, "p", NOT_SENT, T0, NO_THROTTLE)
    assert (freed.breaker.state, events, freed.leases) == ("half_open", [], ())
    assert breaker_passage(freed.breaker, D, False, T0).passage == "probe"


@pytest.mark.parametrize(
    ("result", "counts"),
    [
        (FetchResult(status=500), True),
        (FetchResult(status=503), True),
        (FetchResult(failure="timeout"), True),
        (FetchResult(failure="connect_failed"), True),
        (FetchResult(failure="tls_error"), True),
        (FetchResult(status=404), False),
        (FetchResult(status=429), False),
        (FetchResult(failure="too_large"), False),
        (FetchResult(failure="content_type_not_allowed"), False),
    ],
)
def test_what_counts_against_a_sites_breaker(result: FetchResult, counts: bool) -> None:
    assert result.site_failed is counts


THROTTLE = ThrottleConfig(start_delay_s=1.0, min_delay_s=0.5, max_delay_s=10.0, target_concurrency=2.0)


@pytest.mark.parametrize(
    ("delay", "latency", "status", "error", "expected"),
    [
        (1.0, 0.2, 200, False, 0.55),  # halfway to latency / concurrency (0.1), never below min
        (1.0, 0.0, 200, False, 0.5),  # the minimum holds
        (1.0, 6.0, 200, False, 3.0),  # the target is a floor: a slow site is not crowded
        (1.0, 0.2, 404, False, 1.0),  # a non-200 answer never lowers the delay
        (1.0, 6.0, 404, False, 3.0),  # ... but may raise it
        (1.0, 0.2, 500, True, 2.0),  # errors double it
        (8.0, 0.2, None, True, 10.0),  # ... up to the maximum
        (1.0, 40.0, 200, False, 10.0),
        (1.0, float("nan"), 200, False, 0.5),  # a hostile latency reads as none
    ],
)
def test_autothrottle_follows_latency_and_errors_raise_it(
    delay: float, latency: float, status: int | None, error: bool, expected: float
) -> None:
    assert next_delay(delay, latency, status, error, THROTTLE) == pytest.approx(expected)


def test_a_completed_fetch_teaches_the_shared_throttle_delay() -> None:
    admitted = admit(DomainTraffic(), D, WIDE, None, T0, "a", PolitenessConfig())
    learnt, _ = complete(admitted.traffic, D, "a", FetchResult(status=200, latency_s=0.2), T0, PolitenessConfig())
    assert learnt.throttle_delay_s == pytest.approx(0.6)  # (1.0 + 0.2) / 2
    assert learnt.leases == ()


def test_a_limit_alert_is_raised_once_per_window_naming_the_limit_hit_most() -> None:
    config = AlarmConfig(denials=3, window_s=60.0)
    alarm, window_start = Alarm(), (T0 // s(60)) * s(60)
    alerts: list[DomainLimitAlert | None] = []
    for refused_by in ("per_minute", "concurrent", "concurrent", "concurrent", "breaker"):
        alarm, alert = note_refusal(alarm, D, refused_by, window_start + s(59), config)
        alerts.append(alert)
    assert alerts == [None, None, DomainLimitAlert(domain=D, limit="concurrent", denials=3, window_s=60.0), None, None]
    # the next window counts afresh
    alarm, alert = note_refusal(alarm, D, "per_hour", window_start + s(60), config)
    assert alert is None and alarm.counts == (0, 1, 0, 0, 0)
    ignored, none = note_refusal(Alarm(), D, "breaker", T0, config)
    assert (ignored, none) == (Alarm(), None)


def test_breaker_events_are_the_contracts_records() -> None:
    opened = Breaker(state="open", open_until_ns=T0)
    event = breaker_passage(opened, D, False, T0).events[0]
    assert isinstance(event, BreakerChanged)
    assert msgspec.json.decode(msgspec.json.encode(event), type=BreakerChanged) == event
