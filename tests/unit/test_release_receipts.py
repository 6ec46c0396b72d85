"""A result released from quarantine gets a receipt saying it was accepted, carried by the
release itself (one event, ADR 0027); a discard carries none (the rejection's receipt stands)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ccn_core.decider import fold
from ccn_core.receipts import ensure_key_ring, load_key_set, verify_receipt
from ccn_jobs.result_validation import Verdict
from ccn_proto.results import Reason, ResultDiscarded, ResultRejected, ResultReleased, ResultValidated, receipt_in
from ccn_validation.quarantine import Discard, Judge, QuarantineDecider, Release
from ccn_validation.quarantine_commands import VerdictsOfResults
from ccn_validation.verdicts import JudgeWithReceipt, ResultDecider

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
