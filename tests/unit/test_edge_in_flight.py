"""The edge's in-flight bound (ccn_edge.in_flight.InFlight)."""

from __future__ import annotations

import pytest

from ccn_core.errors import Unavailable
from ccn_edge.in_flight import InFlight


def test_past_the_limit_it_refuses_with_retry_after_and_holds_nothing() -> None:
    bound = InFlight(2, "HTTP requests")
    with bound.admitted(), bound.admitted():
        assert bound.count == 2
        with pytest.raises(Unavailable) as refused, bound.admitted():
            raise AssertionError("admitted past the limit")
        assert refused.value.retry_after == 1.0
        assert "2 HTTP requests" in refused.value.message
        assert bound.count == 2 and bound.refused == 1
    assert bound.count == 0


def test_a_place_is_given_back_when_the_block_fails() -> None:
    bound = InFlight(1, "node frames")
    with pytest.raises(RuntimeError), bound.admitted():
        raise RuntimeError("the handler failed")
    assert bound.count == 0
    assert bound.enter() and not bound.enter()
    bound.leave()
    bound.leave()  # never below zero
    assert bound.count == 0


def test_a_bound_admits_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        InFlight(0, "anything")
