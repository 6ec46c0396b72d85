"""GCRA on its exact boundaries: the burst edge, costs above one, a clock that goes backwards,
costs it can never allow, and limits it refuses to decide on."""

from __future__ import annotations

import math

import pytest

from ccn_core.ratelimit import NS_PER_S, GcraState, LimitError, emission_interval_ns, gcra

S = NS_PER_S
T0 = 1_700_000_000 * S  # any instant: only differences matter


def take(n: int, *, rate: int = 10, period_s: float = 1.0, burst: int = 5, now: int = T0) -> list[bool]:
    state = None
    allowed = []
    for _ in range(n):
        decision = gcra(rate, period_s, burst, state, now)
        allowed.append(decision.allowed)
        state = decision.state
    return allowed


def test_a_fresh_key_takes_exactly_its_burst_at_once() -> None:
    assert take(6) == [True] * 5 + [False]


def test_remaining_counts_down_to_zero_across_the_burst() -> None:
    state = None
    remaining = []
    for _ in range(5):
        decision = gcra(10, 1.0, 5, state, T0)
        remaining.append(decision.remaining)
        state = decision.state
    assert remaining == [4, 3, 2, 1, 0]


def test_one_more_is_allowed_exactly_one_interval_later_and_not_a_nanosecond_before() -> None:
    state = None
    for _ in range(5):
        state = gcra(10, 1.0, 5, state, T0).state
    interval = S // 10
    early = gcra(10, 1.0, 5, state, T0 + interval - 1)
    assert not early.allowed
    assert early.retry_after_s == pytest.approx(1e-9)
    assert early.state == state  # a refusal changes nothing
    on_time = gcra(10, 1.0, 5, state, T0 + interval)
    assert on_time.allowed
    assert on_time.remaining == 0


def test_the_refusal_says_how_long_to_wait() -> None:
    state = None
    for _ in range(5):
        state = gcra(10, 1.0, 5, state, T0).state
    refused = gcra(10, 1.0, 5, state, T0)
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(0.1)
    assert refused.remaining == 0


def test_an_idle_key_refills_to_its_burst_and_no_further() -> None:
    state = None
    for _ in range(5):
        state = gcra(10, 1.0, 5, state, T0).state
    later = T0 + 60 * S
    allowed = []
    for _ in range(6):
        decision = gcra(10, 1.0, 5, state, later)
        allowed.append(decision.allowed)
        state = decision.state
    assert allowed == [True] * 5 + [False]


def test_a_steady_caller_at_the_rate_is_never_refused_and_one_faster_is() -> None:
    interval = S // 10
    state = None
    for i in range(100):
        decision = gcra(10, 1.0, 1, state, T0 + i * interval)
        assert decision.allowed, i
        state = decision.state
    assert not gcra(10, 1.0, 1, state, T0 + 99 * interval + interval - 1).allowed


def test_a_cost_above_one_takes_that_many_at_once() -> None:
    first = gcra(10, 1.0, 5, None, T0, cost=3)
    assert first.allowed and first.remaining == 2
    over = gcra(10, 1.0, 5, first.state, T0, cost=3)
    assert not over.allowed
    assert over.remaining == 2
    assert over.retry_after_s == pytest.approx(0.1)  # one interval frees the third
    exact = gcra(10, 1.0, 5, first.state, T0, cost=2)
    assert exact.allowed and exact.remaining == 0


def test_a_cost_equal_to_the_burst_is_allowed_on_an_idle_key() -> None:
    decision = gcra(10, 1.0, 5, None, T0, cost=5)
    assert decision.allowed and decision.remaining == 0


@pytest.mark.parametrize("cost", [6, 10**9, 2**62])
def test_a_cost_over_the_burst_is_refused_as_undecidable(cost: int) -> None:
    with pytest.raises(LimitError, match="over the burst"):
        gcra(10, 1.0, 5, None, T0, cost=cost)


@pytest.mark.parametrize("cost", [0, -1, True, 1.5])
def test_a_cost_that_is_not_a_positive_integer_is_refused(cost: object) -> None:
    with pytest.raises(LimitError, match="cost"):
        gcra(10, 1.0, 5, None, T0, cost=cost)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rate", "period_s", "burst"),
    [
        (0, 1.0, 5),
        (-1, 1.0, 5),
        (10**7, 1.0, 5),
        (10, 0.0, 5),
        (10, -1.0, 5),
        (10, math.nan, 5),
        (10, math.inf, 5),
        (10, 1.0, 0),
        (10, 1.0, -3),
        (10, 1.0, 10**7),
    ],
)
def test_a_limit_out_of_bounds_is_refused(rate: int, period_s: float, burst: int) -> None:
    with pytest.raises(LimitError):
        gcra(rate, period_s, burst, None, T0)


def test_a_clock_that_goes_backwards_never_allows_more() -> None:
    state = None
    for _ in range(5):
        state = gcra(10, 1.0, 5, state, T0).state
    assert state is not None
    back = gcra(10, 1.0, 5, state, T0 - 10 * S)
    assert not back.allowed
    assert back.remaining == 0
    assert back.state.tat_ns == state.tat_ns  # the TAT is never moved back
    # and once the clock is back where it was, the key is exactly as strict as before
    assert not gcra(10, 1.0, 5, state, T0).allowed
    assert gcra(10, 1.0, 5, state, T0 + S // 10).allowed


def test_the_tat_only_grows() -> None:
    state = GcraState(tat_ns=T0 + 5 * S)
    for now in (T0, T0 - S, T0 + 3 * S):
        decision = gcra(10, 1.0, 100, state, now)
        assert decision.state.tat_ns >= state.tat_ns


def test_an_interval_that_does_not_divide_is_rounded_up() -> None:
    interval = emission_interval_ns(3, 1.0)
    assert interval == 333_333_334
    first = gcra(3, 1.0, 1, None, T0)
    # a third of a second, rounded down, is a nanosecond too soon: never a fourth within a second
    assert not gcra(3, 1.0, 1, first.state, T0 + S // 3).allowed
    assert gcra(3, 1.0, 1, first.state, T0 + interval).allowed
