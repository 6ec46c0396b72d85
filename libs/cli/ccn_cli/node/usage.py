"""What a job used, measured on the process that ran it: CPU time and peak memory from the
kernel's accounting, wall time from a monotonic clock, bytes from the fetch meter.

A job's memory is the growth of its process's resident set over what the process held when the
job started: the interpreter and the job libraries a worker has loaded (about 230 MiB) are the
node's, not the job's. Linux keeps a process's peak resident set (VmHWM), and lets a process
reset it to its current size (writing 5 to /proc/self/clear_refs), so a long-lived worker can
measure each job's peak on its own; a child forked for one job has its peak in its rusage."""

from __future__ import annotations

import math
import resource
import sys
from pathlib import Path

from ccn_proto.budgets import JobUsage

KiB_PER_MiB = 1024
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_PEAK_RSS = b"5"  # linux Documentation/filesystems/proc.rst, clear_refs

# JobUsage's bounds: a measurement past them (a week of CPU) is reported at the bound
_MAX_CPU_S = 7 * 86_400.0
_MAX_WALL_MS = 7 * 86_400_000
_MAX_MEMORY_MIB = 1_048_576
_MAX_BYTES = 2**50


def usage_of(*, cpu_s: float, peak_rss_kib: int, start_rss_kib: int, wall_s: float, bytes_fetched: int) -> JobUsage:
    """The usage as JobUsage reports it: memory is the peak's growth over the start, in whole
    MiB rounded up (so a job within its budget by a fraction of a MiB is still within it)."""
    growth_kib = max(0, peak_rss_kib - start_rss_kib)
    return JobUsage(
        cpu_time_s=min(_MAX_CPU_S, max(0.0, round(cpu_s, 6))),
        max_memory_mb=min(_MAX_MEMORY_MIB, math.ceil(growth_kib / KiB_PER_MiB)),
        wall_ms=min(_MAX_WALL_MS, max(0, round(wall_s * 1000))),
        bytes_fetched=min(_MAX_BYTES, max(0, bytes_fetched)),
    )


def maxrss_kib(usage: resource.struct_rusage) -> int:
    """ru_maxrss in KiB: Linux counts it in KiB, macOS in bytes."""
    return usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss


def status_kib(text: str, field: str) -> int | None:
    """A `field:  N kB` line's N in /proc/<pid>/status text; None when absent or unreadable."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            number = value.strip().removesuffix("kB").strip()
            return int(number) if number.isdigit() else None
    return None


def own_status_kib(field: str) -> int | None:
    """This process's VmRSS, VmHWM or VmData in KiB (None where /proc is not Linux's)."""
    try:
        return status_kib(_STATUS.read_text(), field)
    except OSError:
        return None


def reset_peak_rss() -> bool:
    """Start this process's peak resident set afresh from its current size; False if the kernel
    does not offer it (then the peak is the process's lifetime peak, and a job's growth over its
    start may read low, never high)."""
    try:
        _CLEAR_REFS.write_bytes(_RESET_PEAK_RSS)
    except OSError:
        return False
    return True
