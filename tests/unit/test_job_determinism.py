"""Every registered job type gives byte-identical canonical results for its sample payloads in
separate processes: what lets several nodes' results be compared by checksum. A new job type
joins by registering in JOB_TYPES with sample payloads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from ccn_jobs.registry import JOB_TYPES
from tests.support.determinism import canonical_results

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(120)


def results_in_a_new_process(hash_seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.determinism"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=100,
        check=True,
    )
    return msgspec.json.decode(done.stdout, type=dict[str, str])


def test_every_job_type_has_sample_payloads() -> None:
    assert JOB_TYPES
    for name, job in JOB_TYPES.items():
        assert job.sample_payloads, f"{name} has no sample payloads for the determinism test"
        assert all(isinstance(p, job.payload_type) for p in job.sample_payloads), name


def test_results_are_byte_identical_across_processes() -> None:
    first = results_in_a_new_process("1")
    second = results_in_a_new_process("2")
    assert set(first) == {f"{name}#{i}" for name, job in JOB_TYPES.items() for i in range(len(job.sample_payloads))}
    differing = sorted(key for key in first if first[key] != second.get(key))
    assert differing == [], f"results differ between processes: {differing}"
    here = canonical_results()
    assert here == first, "results differ between this process and a fresh one"
