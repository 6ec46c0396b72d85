"""The claim owner's intake: creations bounded by count and by how long the oldest has waited."""

from __future__ import annotations

import pytest

from ccn_core.errors import Unavailable
from ccn_scheduler.intake import Intake
from tests.support.clocks import ManualClock


def test_creations_are_admitted_up_to_the_count_and_a_refusal_takes_nothing() -> None:
    intake = Intake(max_jobs=10, max_wait_s=60, clock=ManualClock())
    intake.admit(6)
    with pytest.raises(Unavailable) as refused:
        intake.admit(5)
    assert refused.value.retry_after is not None and refused.value.retry_after > 0
    assert intake.jobs_in_hand == 6
    intake.admit(4)
    assert intake.jobs_in_hand == 10


def test_a_creation_is_refused_once_the_oldest_in_hand_has_waited_past_the_bound() -> None:
    clock = ManualClock()
    intake = Intake(max_jobs=1000, max_wait_s=1.0, clock=clock)
    first = intake.admit(100)
    clock.now += 0.9
    intake.admit(100)  # the oldest has waited 0.9 s: within the bound
    clock.now += 0.2
    with pytest.raises(Unavailable, match=r"waited 1\.1 s"):
        intake.admit(1)
    intake.release(first)  # the next oldest was admitted 0.2 s ago
    intake.admit(1)
    assert intake.jobs_in_hand == 101


def test_a_later_chunk_of_a_begun_batch_is_admitted_past_the_wait_but_not_past_the_count() -> None:
    clock = ManualClock()
    intake = Intake(max_jobs=300, max_wait_s=1.0, clock=clock)
    intake.admit(100)
    clock.now += 5
    with pytest.raises(Unavailable):
        intake.admit(100)
    intake.admit(100, continuing=True)
    with pytest.raises(Unavailable, match="being created already"):
        intake.admit(101, continuing=True)


def test_an_empty_intake_has_waited_nothing_and_admitted_blocks_give_their_places_back() -> None:
    clock = ManualClock()
    intake = Intake(max_jobs=5, max_wait_s=0.5, clock=clock)
    assert intake.oldest_wait_s() == 0.0

    def failing_creation() -> None:
        with intake.admitted(5):
            clock.now += 10
            raise RuntimeError("the creation failed")

    with pytest.raises(RuntimeError):
        failing_creation()
    assert intake.jobs_in_hand == 0
    assert intake.oldest_wait_s() == 0.0
    with intake.admitted(5):
        assert intake.jobs_in_hand == 5
    assert intake.jobs_in_hand == 0


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Intake(max_jobs=0, max_wait_s=1)
    with pytest.raises(ValueError):
        Intake(max_jobs=1, max_wait_s=-1)
