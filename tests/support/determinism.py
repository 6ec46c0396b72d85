"""Run every registered job type's sample payloads and print the canonical bytes of each result:
`python -m tests.support.determinism` prints one JSON object, "<job type>#<n>" -> hex bytes.

The determinism test runs this in separate processes (with different hash seeds, so a result
that depends on set or dict iteration order of strings shows up) and compares the outputs."""

from __future__ import annotations

import sys

import msgspec

from ccn_jobs.registry import JOB_TYPES, result_to_builtins, run_job
from ccn_proto.canonical import canonical_result_bytes


def canonical_results() -> dict[str, str]:
    """What a node computes for each sample, by the path a node takes: payload as the JSON dict
    an offer carries, decoded, run, the result as builtins, canonical bytes as the checksum hashes."""
    results: dict[str, str] = {}
    for name, job in sorted(JOB_TYPES.items()):
        for index, payload in enumerate(job.sample_payloads):
            offered = msgspec.json.decode(msgspec.json.encode(payload))
            result = result_to_builtins(run_job(name, offered))
            results[f"{name}#{index}"] = canonical_result_bytes(result).hex()
    return results


if __name__ == "__main__":
    sys.stdout.write(msgspec.json.encode(canonical_results()).decode())
