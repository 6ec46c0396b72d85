"""Bytes a job fetches, counted as they arrive and held to the job's bandwidth budget.

The job's meter travels in a context variable: the document reader (EdgeBodyReader) finds it
wherever the job runs, in a worker thread, a worker process or a child forked for the job, and
each job has its own even when threads share a process. A child's count lives in a page shared
with the process that forked it (SharedCounter), so it can be read after the child is gone,
killed mid-fetch included."""

from __future__ import annotations

import contextlib
import mmap
import struct
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from ccn_cli.node.execute import ResourceLimitExceeded

_COUNTER = struct.Struct("<Q")


def bandwidth_allowance(max_bytes_per_min: int, elapsed_s: float) -> int:
    """Bytes a job may have fetched `elapsed_s` into its run: a minute's worth at once, then
    more as minutes pass. The same rule the scheduler judges usage by (over_budget): bytes over
    the job's wall time, counted as at least a minute."""
    return int(max_bytes_per_min * max(1.0, elapsed_s / 60.0))


class BandwidthExceeded(ResourceLimitExceeded):
    pass


class SharedCounter:
    """One unsigned integer in an anonymous shared page: a child forked after this is made
    writes it, and its parent reads it."""

    def __init__(self) -> None:
        self._page = mmap.mmap(-1, _COUNTER.size)

    @property
    def value(self) -> int:
        return int(_COUNTER.unpack_from(self._page)[0])

    @value.setter
    def value(self, number: int) -> None:
        _COUNTER.pack_into(self._page, 0, max(0, number))

    def close(self) -> None:
        self._page.close()


class FetchMeter:
    """Counts a job's fetched bytes; with `max_bytes_per_min`, refuses a fetch that would go
    past the job's bandwidth allowance before a byte of it is asked for."""

    def __init__(
        self,
        max_bytes_per_min: int | None = None,
        counter: SharedCounter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_bytes_per_min = max_bytes_per_min
        self._counter = counter
        self._count = 0
        self._clock = clock
        self._started = clock()

    @property
    def fetched(self) -> int:
        return self._count

    def admit(self, size: int) -> None:
        """Before fetching `size` bytes: BandwidthExceeded if they would go over the allowance."""
        if self._max_bytes_per_min is None:
            return
        allowance = bandwidth_allowance(self._max_bytes_per_min, self._clock() - self._started)
        if self._count + size > allowance:
            raise BandwidthExceeded(
                f"bandwidth budget exceeded: {self._count + size} bytes to fetch, "
                f"over the {allowance} bytes allowed ({self._max_bytes_per_min} per minute)"
            )

    def count(self, size: int) -> None:
        self._count += size
        if self._counter is not None:
            self._counter.value = self._count


_current: ContextVar[FetchMeter | None] = ContextVar("ccn_fetch_meter", default=None)


def current_meter() -> FetchMeter | None:
    return _current.get()


@contextlib.contextmanager
def metering(meter: FetchMeter) -> Iterator[FetchMeter]:
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)
