"""What the node says of itself with each heartbeat (NodeMetrics): its load, its free memory,
how long its last job took and how long its last exchange with the edge took.

The edge refuses a value out of the protocol's bounds rather than clamping it, so the node
clamps its own readings to them first: a machine with a load of 2000 is still a node.
The WebSocket heartbeat has no answer of its own, so the round trip the node reports is that of
its last exchange that has one: hello → welcome, and result → ack.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ccn_proto.nodes import NodeMetrics

MAX_CPU_LOAD = 1024.0
MAX_MEMORY_FREE = 2**50
MAX_JOB_MS = 7 * 86_400_000
MAX_LATENCY_MS = 600_000
MEMINFO = Path("/proc/meminfo")
# exchanges awaiting their answer; more (a flood of unanswered results) are not timed
MAX_TIMED = 1024


def memory_available(meminfo: str) -> int | None:
    """MemAvailable of a /proc/meminfo text, in bytes; None when it is not there."""
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        if name == "MemAvailable":
            parts = rest.split()
            if parts and parts[0].isdigit():
                unit = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
                return min(MAX_MEMORY_FREE, int(parts[0]) * unit)
    return None


def read_memory_available() -> int | None:
    """From /proc/meminfo (Linux); None elsewhere."""
    try:
        return memory_available(MEMINFO.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return None


def read_cpu_load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _clamp_ms(seconds: float, ceiling: int) -> int:
    return max(0, min(ceiling, round(seconds * 1000)))


class NodeVitals:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        cpu_load: Callable[[], float | None] = read_cpu_load,
        memory_free: Callable[[], int | None] = read_memory_available,
    ) -> None:
        self._clock = clock
        self._cpu_load = cpu_load
        self._memory_free = memory_free
        self._jobs: dict[str, float] = {}
        self._asked: dict[str, float] = {}
        self.last_job_ms: int | None = None
        self.network_latency_ms: int | None = None

    def job_started(self, job_id: str) -> None:
        if len(self._jobs) < MAX_TIMED:
            self._jobs.setdefault(job_id, self._clock())

    def job_ended(self, job_id: str) -> None:
        started = self._jobs.pop(job_id, None)
        if started is not None:
            self.last_job_ms = _clamp_ms(self._clock() - started, MAX_JOB_MS)

    def sent(self, key: str) -> None:
        """An exchange began (a hello, a result) whose answer will be `answered(key)`."""
        if len(self._asked) < MAX_TIMED:
            self._asked.setdefault(key, self._clock())

    def answered(self, key: str) -> None:
        sent = self._asked.pop(key, None)
        if sent is not None:
            self.network_latency_ms = _clamp_ms(self._clock() - sent, MAX_LATENCY_MS)

    def forget_exchanges(self) -> None:
        """A connection ended: what it left unanswered will not be answered on it."""
        self._asked.clear()

    def metrics(self) -> NodeMetrics:
        load = self._cpu_load()
        memory = self._memory_free()
        return NodeMetrics(
            cpu_load=None if load is None else max(0.0, min(MAX_CPU_LOAD, load)),
            memory_free=None if memory is None else max(0, min(MAX_MEMORY_FREE, memory)),
            last_job_ms=self.last_job_ms,
            network_latency_ms=self.network_latency_ms,
        )
