"""Throughput and latency figures, and the report: a table on stdout and JSON in bench/results/."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Figure(msgspec.Struct, kw_only=True):
    name: str
    group: str
    operations: int
    seconds: float
    ops_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    ratio_to_baseline: float | None = None
    baseline: str | None = None
    target: str | None = None
    meets_target: bool | None = None
    notes: str = ""


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def figure(
    name: str, group: str, operations: int, seconds: float, latencies_s: list[float] | None = None, notes: str = ""
) -> Figure:
    latencies = sorted(latencies_s or [])
    return Figure(
        name=name,
        group=group,
        operations=operations,
        seconds=round(seconds, 4),
        ops_per_s=round(operations / seconds, 1) if seconds > 0 else 0.0,
        p50_ms=round(percentile(latencies, 0.50) * 1000, 3) if latencies else None,
        p99_ms=round(percentile(latencies, 0.99) * 1000, 3) if latencies else None,
        notes=notes,
    )


def relate(fig: Figure, baseline: Figure, target_ratio: float | None = None) -> Figure:
    fig.baseline = baseline.name
    fig.ratio_to_baseline = round(fig.ops_per_s / baseline.ops_per_s, 3) if baseline.ops_per_s else None
    if target_ratio is not None and fig.ratio_to_baseline is not None:
        fig.target = f">= {target_ratio:.0%} of {baseline.name}"
        fig.meets_target = fig.ratio_to_baseline >= target_ratio
    return fig


def absolute_target(fig: Figure, minimum_ops_per_s: float, unit: str) -> Figure:
    fig.target = f">= {minimum_ops_per_s:,.0f} {unit}/s"
    fig.meets_target = fig.ops_per_s >= minimum_ops_per_s
    return fig


class Clock:
    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.start


def print_table(figures: list[Figure]) -> None:
    header = f"{'benchmark':<44} {'ops':>8} {'ops/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'x base':>7}  target"
    print(header)
    print("-" * len(header))
    group = None
    for fig in figures:
        if fig.group != group:
            group = fig.group
            print(f"[{group}]")
        ratio = f"{fig.ratio_to_baseline:.2f}" if fig.ratio_to_baseline is not None else ""
        verdict = "" if fig.meets_target is None else ("MET" if fig.meets_target else "MISSED")
        p50 = f"{fig.p50_ms:.2f}" if fig.p50_ms is not None else ""
        p99 = f"{fig.p99_ms:.2f}" if fig.p99_ms is not None else ""
        target = f"{verdict} {fig.target}" if fig.target else ""
        print(f"  {fig.name:<42} {fig.operations:>8} {fig.ops_per_s:>10,.0f} {p50:>8} {p99:>8} {ratio:>7}  {target}")
        if fig.notes:
            print(f"      {fig.notes}")


def write_report(figures: list[Figure], context: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"bench-{stamp}.json"
    report = {
        "generated_at": stamp,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), **context},
        "figures": [msgspec.to_builtins(f) for f in figures],
    }
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS_DIR / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path
