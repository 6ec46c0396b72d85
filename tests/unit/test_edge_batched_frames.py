"""The pure parts of batched node frames: a results frame naming a job twice, and offers split
into job_offers frames by size."""

from __future__ import annotations

import json

import msgspec

from ccn_edge.node_link import job_offers_frames, repeated_job
from ccn_proto.node_protocol import JobOffers, ResultItem, ServerFrame


def results(*job_ids: str) -> list[ResultItem]:
    return [ResultItem(job_id=job_id, result={}, checksum="0") for job_id in job_ids]


def test_a_job_named_twice_is_refused_naming_the_second() -> None:
    refusal = repeated_job(results("a", "b", "c", "b"))
    assert refusal is not None
    assert refusal.code == "bad_input"
    assert refusal.field == "results[3].job_id"
    assert "b" in refusal.message


def test_distinct_jobs_are_fine() -> None:
    assert repeated_job(results("a", "b", "c")) is None


def encoded_offer(job_id: str, payload_chars: int) -> bytes:
    return msgspec.json.encode(
        {
            "type": "job_offer",
            "job_id": job_id,
            "job_type": "extract_text",
            "payload": {"html": "x" * payload_chars},
            "lease_until": "2026-12-06T00:00:00Z",
            "attempt": 1,
            "correlation_id": job_id,
        }
    )


def test_offers_fill_frames_up_to_the_limit_in_order_and_each_frame_decodes() -> None:
    offers = [encoded_offer(f"job-{index}", 300) for index in range(10)]
    limit = 3 * len(offers[0]) + 40
    frames = job_offers_frames(offers, limit)
    assert [count for _, count in frames] == [3, 3, 3, 1]
    seen = []
    for data, count in frames:
        assert len(data) <= limit
        frame = msgspec.json.decode(data, type=ServerFrame)
        assert isinstance(frame, JobOffers)
        assert len(frame.offers) == count
        seen += [offer.job_id for offer in frame.offers]
    assert seen == [f"job-{index}" for index in range(10)]


def test_an_offer_bigger_than_the_limit_goes_alone() -> None:
    small, big = encoded_offer("small", 10), encoded_offer("big", 5_000)
    frames = job_offers_frames([small, big, small], 1_000)
    assert [count for _, count in frames] == [1, 1, 1]
    assert [json.loads(data)["offers"][0]["job_id"] for data, _ in frames] == ["small", "big", "small"]


def test_no_offers_no_frames() -> None:
    assert job_offers_frames([], 1_000) == []
