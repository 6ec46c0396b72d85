"""Bench group `validation`: results judged per second on one core by the pure validator
(ccn_jobs.result_validation.judge_result: size, storability, checksum, schema, business rules),
per job type, on each type's sample results as a node would submit them (JSON bytes), and on
the same results broken (a checksum that is not theirs), which must cost no more. No servers."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from bench.measure import Figure, figure
from ccn_jobs.registry import JOB_TYPES
from ccn_jobs.result_validation import judge_result
from ccn_proto.canonical import result_checksum
from tests.support.result_samples import good_results

GROUP = "validation"


def _rate(name: str, cases: list[tuple[str, bytes, str]], seconds: float, accepted: bool) -> Figure:
    done = 0
    start = time.perf_counter()
    while True:
        for job_type, raw, checksum in cases:
            verdict = judge_result(job_type, raw, checksum)
            assert verdict.accepted is accepted, verdict.reasons
            done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            size = sum(len(raw) for _, raw, _ in cases) // len(cases)
            return figure(name, GROUP, done, elapsed, notes=f"results/s on one core; {size} bytes a result on average")


def validation_figures(quick: bool = False) -> list[Figure]:
    seconds = 0.2 if quick else 1.0
    every: list[tuple[str, bytes, str]] = []
    figures = []
    for job_type in sorted(JOB_TYPES):
        cases: list[tuple[str, bytes, str]] = []
        for result in good_results(job_type):
            document: dict[str, Any] = result
            cases.append((job_type, msgspec.json.encode(document), result_checksum(document)))
        every += cases
        figures.append(_rate(f"judge_result {job_type}", cases, seconds, accepted=True))
    figures.append(_rate("judge_result, every type's samples", every, seconds, accepted=True))
    forged = [(job_type, raw, "0" * 64) for job_type, raw, _ in every]
    figures.append(_rate("judge_result, checksum not the result's (rejected)", forged, seconds, accepted=False))
    return figures
