"""Batch bodies at the edge: parsed and checked whole before anything is sent (every line as the
scheduler would check it), and sent in NATS-sized chunks."""

from __future__ import annotations

import pytest

from ccn_core.errors import BadInput, CcnError, PayloadTooLarge, Unavailable, Unprocessable
from ccn_edge.jobs_api import chunks, failed_part_way, parse_batch
from ccn_proto.scheduler import MAX_BATCH_JOB_BYTES, BatchJob


def test_batch_chunks_respect_both_the_count_and_the_byte_limit() -> None:
    items = [BatchJob(job_type="extract_text", payload={"html": "x" * 100}, item_key=str(i)) for i in range(10)]
    assert [len(c) for c in chunks(items, 4, max_bytes=10_000)] == [4, 4, 2]
    small = [len(c) for c in chunks(items, 100, max_bytes=400)]
    assert sum(small) == 10 and max(small) <= 2
    with pytest.raises(PayloadTooLarge):
        list(chunks(items, 4, max_bytes=50))


def test_lines_without_a_key_are_keyed_by_line_number_and_a_bad_line_is_named() -> None:
    line = b'{"job_type": "extract_text", "payload": {"html": "a"}}\n'
    body = line + b"\n" + line
    assert [item.item_key for item in parse_batch(body)] == ["line-1", "line-3"]
    with pytest.raises(BadInput) as refused:
        parse_batch(body + b'{"job_type": 7, "payload": {}}')
    assert refused.value.field == "line 4: job_type"
    with pytest.raises(BadInput):
        parse_batch(b"\n\n")


GOOD_LINE = b'{"job_type": "extract_text", "payload": {"html": "<p>a</p>"}}'


@pytest.mark.parametrize(
    ("line", "error", "field"),
    [
        (b'{"job_type": "extract_text", "payload": {"html": 5}}', BadInput, "line 3: payload.html"),
        (b'{"job_type": "extract_text", "payload": {"html": "a", "x": 1}}', BadInput, "line 3: payload.x"),
        (b'{"job_type": "mine_bitcoin", "payload": {}}', Unprocessable, "line 3: job_type"),
        (
            b'{"job_type": "extract_text", "payload": {"html": "' + b"x" * MAX_BATCH_JOB_BYTES + b'"}}',
            PayloadTooLarge,
            "line 3: payload",
        ),
    ],
    ids=["payload-wrong-type", "payload-unknown-field", "unknown-job-type", "over-the-job-cap"],
)
def test_every_line_is_checked_as_the_scheduler_would_before_anything_is_sent(
    line: bytes, error: type[CcnError], field: str
) -> None:
    with pytest.raises(error) as refused:
        parse_batch(b"\n".join([GOOD_LINE, GOOD_LINE, line, GOOD_LINE]))
    assert refused.value.field == field
    assert refused.value.message.startswith("line 3: ")


def test_a_scheduler_failure_part_way_says_what_was_sent_and_that_a_resend_is_safe() -> None:
    error = failed_part_way(Unavailable("scheduler did not answer", retry_after=2), sent=500, jobs=700)
    assert isinstance(error, Unavailable)
    assert error.retry_after == 2
    assert error.message.startswith("scheduler did not answer; 500 of 700 jobs")
    assert "send the same batch again, nothing is created twice" in error.message
