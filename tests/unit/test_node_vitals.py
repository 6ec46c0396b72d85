"""What the reference node says of itself with each heartbeat (ccn_cli.node.vitals)."""

from __future__ import annotations

from ccn_cli.node.vitals import MAX_CPU_LOAD, MAX_LATENCY_MS, NodeVitals, memory_available
from ccn_proto.nodes import NodeMetrics
from tests.support.clocks import ManualClock

MEMINFO = "MemTotal:       16318588 kB\nMemFree:          401236 kB\nMemAvailable:    8123456 kB\n"


def test_memory_available_is_read_from_meminfo_in_bytes() -> None:
    assert memory_available(MEMINFO) == 8_123_456 * 1024
    assert memory_available("MemTotal: 1 kB\n") is None
    assert memory_available("MemAvailable: lots\n") is None


def test_metrics_carry_load_memory_last_job_and_round_trip() -> None:
    clock = ManualClock()
    vitals = NodeVitals(clock, cpu_load=lambda: 1.25, memory_free=lambda: 4096)
    assert vitals.metrics() == NodeMetrics(cpu_load=1.25, memory_free=4096)
    vitals.job_started("j1")
    vitals.sent("hello")
    clock.now += 0.042
    vitals.answered("hello")
    clock.now += 1.5
    vitals.job_ended("j1")
    assert vitals.metrics() == NodeMetrics(cpu_load=1.25, memory_free=4096, last_job_ms=1542, network_latency_ms=42)


def test_readings_out_of_the_protocols_bounds_are_clamped_by_the_node() -> None:
    clock = ManualClock()
    vitals = NodeVitals(clock, cpu_load=lambda: 5000.0, memory_free=lambda: None)
    vitals.sent("j1")
    clock.now += 3600
    vitals.answered("j1")
    metrics = vitals.metrics()
    assert (metrics.cpu_load, metrics.memory_free, metrics.network_latency_ms) == (
        MAX_CPU_LOAD,
        None,
        MAX_LATENCY_MS,
    )


def test_an_answer_to_nothing_timed_changes_nothing() -> None:
    vitals = NodeVitals(ManualClock(), cpu_load=lambda: None, memory_free=lambda: None)
    vitals.answered("never-sent")
    vitals.job_ended("never-started")
    vitals.sent("lost")
    vitals.forget_exchanges()
    vitals.answered("lost")
    assert vitals.metrics() == NodeMetrics()
