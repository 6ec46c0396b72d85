"""A result released from quarantine gets a receipt saying it was accepted, carried by the
release itself (one event, ADR 0027); a discard carries none (the rejection's receipt stands)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ccn_core.decider import fold
from ccn_core.ids import new_event_id
from ccn_core.receipts import ensure_key_ring, load_key_set, verify_receipt
from ccn_edge.receipt_delivery_api import MAX_RESULT_EVENT_BYTES
from ccn_jobs.result_validation import Verdict
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.results import (
    MAX_FIELD_PATH_CHARS,
    MAX_REASON_MESSAGE_CHARS,
    MAX_REASONS,
    Reason,
    ResultDiscarded,
    ResultEvent,
    ResultRejected,
    ResultReleased,
    ResultValidated,
    receipt_in,
)
from ccn_validation.quarantine import Discard, Judge, QuarantineDecider, Release
from ccn_validation.quarantine_commands import VerdictsOfResults
from ccn_validation.verdicts import JudgeWithReceipt, ResultDecider, receipt_of

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CHECKSUM = "c" * 64
REJECTED = ResultRejected(
    node_id="n1",
    attempt=1,
    checksum=CHECKSUM,
    job_type="classify_document",
    job_type_version="2",
    rules_version="1",
    reasons=(Reason(code="bounds", message="confidence above 1"),),
)
VERDICT = Verdict(
    job_type="classify_document", accepted=True, checksum=CHECKSUM, job_type_version="2", rules_version="1"
)


def test_a_release_is_signed_for_the_node_whose_result_it_was(tmp_path: Path) -> None:
    ring = ensure_key_ring(tmp_path / "keys", NOW)
    decider = VerdictsOfResults(QuarantineDecider(), key_ring=lambda: ring)
    state = fold(decider, "job-1", [REJECTED])
    release = Release(node_id="n1", attempt=1, checksum=CHECKSUM, by="ops", comment="a false alarm")
    [released] = decider.decide(release, state, NOW)
    assert isinstance(released, ResultReleased) and released.receipt is not None
    receipt = released.receipt
    assert (receipt.job_id, receipt.node_id, receipt.attempt, receipt.result_checksum) == ("job-1", "n1", 1, CHECKSUM)
    assert receipt.verdict == "validated"
    verify_receipt(receipt, load_key_set(tmp_path / "keys"))
    # the release again: nothing new, no second receipt
    assert decider.decide(release, fold(decider, "job-1", [REJECTED, released]), NOW) == []


def test_a_discard_adds_no_receipt(tmp_path: Path) -> None:
    ring = ensure_key_ring(tmp_path / "keys", NOW)
    decider = VerdictsOfResults(QuarantineDecider(), key_ring=lambda: ring)
    state = fold(decider, "job-1", [REJECTED])
    discard = Discard(node_id="n1", attempt=1, checksum=CHECKSUM, by="ops", comment="confirmed")
    [discarded] = decider.decide(discard, state, NOW)
    assert isinstance(discarded, ResultDiscarded) and receipt_in(discarded) is None


def test_a_verdict_carries_its_receipt_in_one_event(tmp_path: Path) -> None:
    """One event per judged result: an atomic batch of a verdict and a receipt costs nats-server
    a file store of its own per result (ADR 0027)."""
    ring = ensure_key_ring(tmp_path / "keys", NOW)
    decider = ResultDecider(lambda: ring, QuarantineDecider(lambda job_type, result, checksum: VERDICT))
    judge = Judge(node_id="n1", attempt=1, job_type="classify_document", result=b"{}", checksum=CHECKSUM)
    command = JudgeWithReceipt(judge=judge, now=NOW, signature=None)
    [validated] = decider.decide(command, decider.initial_state("job-1"), NOW)
    assert isinstance(validated, ResultValidated) and validated.receipt is not None
    receipt = validated.receipt
    assert (receipt.job_id, receipt.node_id, receipt.attempt, receipt.verdict) == ("job-1", "n1", 1, "validated")
    verify_receipt(receipt, load_key_set(tmp_path / "keys"))
    # judged again (a redelivery): nothing new, no second receipt
    assert decider.decide(command, fold(decider, "job-1", [validated]), NOW) == []


def test_the_largest_verdict_with_its_receipt_is_within_what_the_edge_reads(tmp_path: Path) -> None:
    """The edge refuses a stored result event over MAX_RESULT_EVENT_BYTES as damaged: the largest
    a service writes (every reason at its longest, in 4-byte characters) must be under it."""
    ring = ensure_key_ring(tmp_path / "keys", NOW)
    wide = "\U0001d11e"  # four bytes in UTF-8
    reasons = tuple(
        Reason(code="format", field=wide * MAX_FIELD_PATH_CHARS, message=wide * MAX_REASON_MESSAGE_CHARS)
        for _ in range(MAX_REASONS)
    )
    verdict = msgspec.structs.replace(REJECTED, reasons=reasons)
    receipt = receipt_of(ring, "job-1", verdict, "rejected", NOW)
    envelope = Envelope(
        event_id=new_event_id(),
        type="result.rejected",
        schema_version=1,
        aggregate_id="job-1",
        occurred_at=NOW,
        correlation_id="c" * 36,
        causation_id="d" * 36,
        actor=Actor(kind="service", id="validation-" + "x" * 100),
        data=msgspec.structs.replace(verdict, receipt=receipt),
    )
    encoded = msgspec.json.encode(envelope)
    assert len(encoded) <= MAX_RESULT_EVENT_BYTES
    assert msgspec.json.decode(encoded, type=Envelope[ResultEvent]).data == envelope.data
