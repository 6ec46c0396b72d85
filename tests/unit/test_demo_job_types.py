"""The demo's second batch (ccn_jobs.demo_job_types): every registered job type that fetches
nothing (the crawl types are the demo campaign's), lines the edge accepts as a batch, and
payloads each handler runs to a result."""

from __future__ import annotations

import msgspec

from ccn_edge.jobs_api import parse_batch
from ccn_jobs.demo_job_types import as_jsonl, job_type_examples
from ccn_jobs.registry import JOB_TYPES, result_to_builtins, run_job

EXAMPLES = job_type_examples(text_pages=1)


def test_every_registered_job_type_that_fetches_nothing_is_in_the_batch() -> None:
    assert {name for name, _ in EXAMPLES} == {name for name, job in JOB_TYPES.items() if job.crawl is None}
    assert [name for name, _ in job_type_examples(text_pages=1)] == [name for name, _ in EXAMPLES]


def test_the_edge_accepts_the_batch_and_each_job_runs_to_a_result() -> None:
    lines = as_jsonl(EXAMPLES)
    items = parse_batch(lines)
    assert [item.job_type for item in items] == [name for name, _ in EXAMPLES]
    for line in lines.splitlines():
        decoded = msgspec.json.decode(line)
        result = result_to_builtins(run_job(decoded["job_type"], decoded["payload"]))
        assert any(key.endswith("version") and value for key, value in result.items()), result


def test_the_text_jobs_read_what_extract_text_found_on_the_demo_pages() -> None:
    classify = [payload for name, payload in EXAMPLES if name == "classify_document"]
    assert classify and all(len(payload.text) > 500 and payload.title for payload in classify)  # type: ignore[attr-defined]
