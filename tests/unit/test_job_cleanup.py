"""Which jobs the archiver moves out of the hot tables (CC-32), as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ccn_core.domain.job import FINISHED
from ccn_scheduler.cleanup import ArchivePolicy

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
policy = ArchivePolicy(retention_s=WEEK.total_seconds())


@pytest.mark.parametrize(
    ("status", "finished_at", "due"),
    [
        ("completed", NOW - WEEK - timedelta(seconds=1), True),
        ("dead", NOW - WEEK - timedelta(days=30), True),
        ("cancelled", NOW - WEEK - timedelta(microseconds=1), True),
        ("completed", NOW - WEEK, False),
        ("completed", NOW - WEEK + timedelta(seconds=1), False),
        ("dead", NOW - timedelta(minutes=5), False),
        ("cancelled", NOW + timedelta(seconds=3), False),
        ("completed", None, False),
        ("queued", NOW - WEEK * 10, False),
        ("claimed", NOW - WEEK * 10, False),
        ("retry_wait", NOW - WEEK * 10, False),
        ("queued", None, False),
    ],
    ids=[
        "completed a second past the retention",
        "dead long ago",
        "cancelled just past the retention",
        "finished exactly at the cutoff: not yet",
        "finished within the retention",
        "dead minutes ago",
        "finished in the future (a fast clock elsewhere)",
        "finished without a time: never",
        "queued, however old",
        "claimed, however old",
        "waiting for a retry, however old",
        "queued, never finished",
    ],
)
def test_only_finished_jobs_past_the_retention_are_due(status: str, finished_at: datetime | None, due: bool) -> None:
    assert policy.is_due(status, finished_at, NOW) is due


def test_the_finished_statuses_are_the_deciders() -> None:
    assert {"completed", "dead", "cancelled"} == FINISHED


def test_a_zero_retention_archives_anything_finished_before_now() -> None:
    immediate = ArchivePolicy(retention_s=0)
    assert immediate.cutoff(NOW) == NOW
    assert immediate.is_due("completed", NOW - timedelta(microseconds=1), NOW)
    assert not immediate.is_due("completed", NOW, NOW)


@pytest.mark.parametrize(("retention_s", "batch_size"), [(-1.0, 10), (60.0, 0)])
def test_a_negative_retention_or_an_empty_batch_is_refused(retention_s: float, batch_size: int) -> None:
    with pytest.raises(ValueError, match="retention_s must be >= 0"):
        ArchivePolicy(retention_s=retention_s, batch_size=batch_size)
