"""A result released from quarantine gets a receipt saying it was accepted, signed in the same
decision as the release; a discard adds none (the rejection's receipt stands)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ccn_core.decider import fold
from ccn_core.receipts import ensure_key_ring, load_key_set, verify_receipt
from ccn_proto.results import Reason, ReceiptIssued, ResultDiscarded, ResultRejected, ResultReleased
from ccn_validation.quarantine import Discard, QuarantineDecider, Release
from ccn_validation.quarantine_commands import VerdictsOfResults

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


def test_a_release_is_signed_for_the_node_whose_result_it_was(tmp_path: Path) -> None:
    ring = ensure_key_ring(tmp_path / "keys", NOW)
    decider = VerdictsOfResults(QuarantineDecider(), key_ring=lambda: ring)
    state = fold(decider, "job-1", [REJECTED])
    release = Release(node_id="n1", attempt=1, checksum=CHECKSUM, by="ops", comment="a false alarm")
    released, issued = decider.decide(release, state, NOW)
    assert isinstance(released, ResultReleased) and isinstance(issued, ReceiptIssued)
    receipt = issued.receipt
    assert (receipt.job_id, receipt.node_id, receipt.attempt, receipt.result_checksum) == ("job-1", "n1", 1, CHECKSUM)
    assert receipt.verdict == "validated"
    verify_receipt(receipt, load_key_set(tmp_path / "keys"))
    # the release again: nothing new, no second receipt
    assert decider.decide(release, fold(decider, "job-1", [REJECTED, released, issued]), NOW) == []


def test_a_discard_adds_no_receipt(tmp_path: Path) -> None:
    ring = ensure_key_ring(tmp_path / "keys", NOW)
    decider = VerdictsOfResults(QuarantineDecider(), key_ring=lambda: ring)
    state = fold(decider, "job-1", [REJECTED])
    discard = Discard(node_id="n1", attempt=1, checksum=CHECKSUM, by="ops", comment="confirmed")
    [discarded] = decider.decide(discard, state, NOW)
    assert isinstance(discarded, ResultDiscarded)
