"""How much job creation the claim owner takes on at once (issue #13, overload).

Two bounds. The count (`max_jobs` admitted and not yet created) bounds memory. The wait bounds
time: once the oldest creation in hand has been in hand longer than `max_wait_s`, the owner is
creating more slowly than submissions arrive, and a new one would only queue behind it. So it is
refused at once with a retry_after, and its caller waits instead of the owner. A count alone
does not bound time: on a slower machine, or with claims and results taking more of the owner's
time, the same count takes longer to create, and a submission admitted behind it was answered
after ten seconds and more (the overload row, docs/perf/job-lifecycle.md).

A later chunk of a batch already partly created is admitted past the wait bound (never past the
count): refusing it would leave the submission half made and make its caller send it all again.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ccn_core.errors import Unavailable

# long enough for the oldest creations in hand to finish, short enough that a caller loses little
BUSY_RETRY_AFTER_S = 1.0


class Intake:
    def __init__(self, *, max_jobs: int, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_jobs < 1 or max_wait_s < 0:
            raise ValueError("an intake admits at least one job and waits no negative time")
        self.max_jobs = max_jobs
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._tickets = itertools.count()
        # ticket → (admitted at, jobs), in the order admitted: the first is the oldest
        self._in_hand: dict[int, tuple[float, int]] = {}
        self.jobs_in_hand = 0

    def oldest_wait_s(self) -> float:
        """How long the oldest creation in hand has been in hand (0 when none is)."""
        for admitted_at, _ in self._in_hand.values():
            return max(0.0, self._clock() - admitted_at)
        return 0.0

    def admit(self, jobs: int, *, continuing: bool = False) -> int:
        """A ticket for `jobs` creations, to give back with `release`; Unavailable, and nothing
        taken, past either bound."""
        if self.jobs_in_hand + jobs > self.max_jobs:
            raise Unavailable(
                f"{self.jobs_in_hand} jobs are being created already; try again shortly",
                retry_after=BUSY_RETRY_AFTER_S,
            )
        waited = self.oldest_wait_s()
        if not continuing and waited > self.max_wait_s:
            raise Unavailable(
                f"creations in hand have waited {waited:.1f} s, over the {self.max_wait_s:g}-s bound; "
                "try again shortly",
                retry_after=BUSY_RETRY_AFTER_S,
            )
        ticket = next(self._tickets)
        self._in_hand[ticket] = (self._clock(), jobs)
        self.jobs_in_hand += jobs
        return ticket

    def release(self, ticket: int) -> None:
        _, jobs = self._in_hand.pop(ticket)
        self.jobs_in_hand -= jobs

    @contextmanager
    def admitted(self, jobs: int, *, continuing: bool = False) -> Iterator[None]:
        ticket = self.admit(jobs, continuing=continuing)
        try:
            yield
        finally:
            self.release(ticket)
