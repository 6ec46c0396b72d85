"""The node's reconnect backoff: exponential, full jitter, capped, honouring retry_after."""

from __future__ import annotations

import pytest

from ccn_cli.node.backoff import Backoff
from ccn_core.retry_policy import RetryPolicy

POLICY = RetryPolicy(base_s=0.5, cap_s=30.0)


def failed(times: int) -> Backoff:
    backoff = Backoff(policy=POLICY)
    for _ in range(times):
        backoff = backoff.after_failure()
    return backoff


def test_the_first_attempt_does_not_wait() -> None:
    assert Backoff(policy=POLICY).delay_s(jitter=0.99) == 0.0


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0), (7, 30.0), (50, 30.0)],
)
def test_the_ceiling_doubles_per_failure_up_to_the_cap(failures: int, ceiling: float) -> None:
    backoff = failed(failures)
    assert backoff.delay_s(jitter=0.0) == 0.0
    assert backoff.delay_s(jitter=0.5) == pytest.approx(ceiling / 2)
    assert backoff.delay_s(jitter=0.999999) == pytest.approx(ceiling, rel=1e-5)


def test_retry_after_is_a_floor_never_a_ceiling() -> None:
    assert failed(1).delay_s(jitter=0.5, retry_after=3.0) == 3.0
    assert failed(8).delay_s(jitter=0.5, retry_after=3.0) == 15.0
    assert Backoff(policy=POLICY).delay_s(jitter=0.5, retry_after=2.0) == 2.0


def test_a_stable_connection_resets_the_count_and_a_short_one_does_not() -> None:
    backoff = failed(5)
    assert backoff.after_connection(lasted_s=60.0).failures == 1
    assert backoff.after_connection(lasted_s=0.2).failures == 6
    assert backoff.reset().failures == 0
