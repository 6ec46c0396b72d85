"""`ccn admin retract-node`, `ccn admin review` and `ccn datasets` as they talk to the edge:
what they send and what they print, against a stand-in for the edge (the real one is in
tests/integration/test_merge_edge.py)."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec
import pytest

from ccn_cli.admin_retract_cmd import run_retract
from ccn_cli.admin_review_cmd import review_lines, run_decision
from ccn_cli.jobs_cmd import EdgeError


class FakeEdge:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.sent: list[tuple[str, Any]] = []

    def post(self, path: str, body: bytes, into: type[Any], headers: dict[str, str] | None = None) -> Any:
        self.sent.append((path, msgspec.json.decode(body)))
        return self.answer


RETRACTED = {
    "node_id": "node-bad",
    "datasets": [
        {"dataset": "grants", "candidates_dropped": 3, "fields_changed": 2, "reviews_dropped": 1, "version": 4},
        {"dataset": "other", "candidates_dropped": 0, "fields_changed": 0, "reviews_dropped": 0, "version": None},
    ],
    "requeued": [
        {"job_id": "job-1", "new_job_id": "job-9", "created": True},
        {"job_id": "job-2", "new_job_id": "job-8", "created": False},
    ],
}


def test_retract_node_sends_the_node_and_time_and_says_what_fell_back_and_what_was_requeued(
    capsys: pytest.CaptureFixture[str],
) -> None:
    edge = FakeEdge(RETRACTED)
    args = argparse.Namespace(node_id="node-bad", since="2026-01-31T12:00:00+00:00", reason="forged")
    assert run_retract(args, edge) == 0  # type: ignore[arg-type]
    assert edge.sent == [
        ("/admin/retractions", {"node_id": "node-bad", "reason": "forged", "since": "2026-01-31T12:00:00+00:00"})
    ]
    out = capsys.readouterr().out
    assert "grants: 3 value(s) withdrawn, 2 field(s) fell back, 1 review(s) dropped; version 4 published" in out
    assert "other: nothing of node node-bad left to retract" in out
    assert "2 job(s) re-queued (1 new, 1 already)" in out and "job-1 -> job-9" in out


@pytest.mark.parametrize(
    ("since", "why"), [("yesterday", "not an ISO 8601 time"), ("2026-01-31T12:00:00", "needs a time zone")]
)
def test_retract_node_refuses_a_time_it_cannot_place(since: str, why: str) -> None:
    edge = FakeEdge(RETRACTED)
    with pytest.raises(EdgeError, match=why):
        run_retract(argparse.Namespace(node_id="n", since=since, reason=""), edge)  # type: ignore[arg-type]
    assert edge.sent == []


def test_a_review_decision_checks_the_id_and_sends_the_comment(capsys: pytest.CaptureFixture[str]) -> None:
    edge = FakeEdge({"review_id": "rev-" + "a" * 24, "status": "approved", "record_id": "fun-1", "changes": [{}]})
    args = argparse.Namespace(
        review_id="rev-" + "a" * 24, comment="renamed", dataset="grants", action="approve", record="fun-1"
    )
    assert run_decision(args, edge) == 0  # type: ignore[arg-type]
    assert edge.sent == [
        (f"/admin/review/rev-{'a' * 24}/approve", {"comment": "renamed", "dataset": "grants", "record_id": "fun-1"})
    ]
    assert "approved: record fun-1, 1 field(s)" in capsys.readouterr().out
    with pytest.raises(EdgeError, match="not a review id"):
        run_decision(argparse.Namespace(review_id="rev-1", comment="x", dataset="grants", action="reject"), edge)  # type: ignore[arg-type]


def test_a_review_is_listed_with_its_before_and_after() -> None:
    lines = review_lines(
        {
            "review_id": "rev-" + "b" * 24,
            "kind": "funder",
            "record_id": "fun-1",
            "provenance": {"job_id": "job-1", "node_id": "node-1", "source": "crawl"},
            "reasons": ["critical field name changes"],
            "changes": [
                {"field": "name", "before": "Acme", "after": "Acme Trust"},
                {"field": "aliases", "before": None, "after": ["A", "B"]},
            ],
            "stitch_candidates": [],
        }
    )
    assert lines == [
        f"rev-{'b' * 24}  funder fun-1  (job job-1, node node-1, source crawl)",
        "  why: critical field name changes",
        "  name: Acme -> Acme Trust",
        "  aliases: - -> A, B",
    ]
