"""Node key pairs, without I/O beyond a temporary directory: the edge's rule for a result's
signature, the attempts the edge keeps per held job, the node's stored key and its receipts
directory, and the node aggregate remembering the registered key."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccn_cli.node.credentials import (
    CredentialsError,
    credentials_path,
    load_credentials,
    new_credentials,
    save_credentials,
    signing_key,
)
from ccn_cli.node.receipts_store import receipts_dir, store_receipt, stored_receipts
from ccn_core.domain.node import NodeDecider, Register
from ccn_core.receipts import (
    BadNodeSignature,
    MalformedReceipt,
    ServiceKey,
    public_key_of,
    sign_receipt,
    sign_result,
)
from ccn_edge.node_link import Holdings
from ccn_edge.result_signatures import result_signature_problem
from ccn_proto.nodes import NodeRegistered
from ccn_proto.receipts import Receipt, Verdict

CHECKSUM = "e" * 64
NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def test_the_edges_rule_for_result_signatures() -> None:
    key = Ed25519PrivateKey.generate()
    public = public_key_of(key)
    good = sign_result(key, "job-1", 3, CHECKSUM)

    def problem(public_key: str | None, attempt: int | None, signature: str | None) -> BadNodeSignature | None:
        return result_signature_problem(
            public_key, job_id="job-1", attempt=attempt, checksum=CHECKSUM, signature=signature
        )

    assert problem(None, None, None) is None  # a node without a key: unsigned, passed on
    assert problem(public, 3, good) is None
    refusals = {
        "signature from a node without a key": problem(None, 3, good),
        "unsigned from a node with a key": problem(public, 3, None),
        "no attempt": problem(public, None, good),
        "another attempt": problem(public, 4, good),
        "another key": problem(public_key_of(Ed25519PrivateKey.generate()), 3, good),
    }
    for why, refusal in refusals.items():
        assert isinstance(refusal, BadNodeSignature), why
        assert refusal.http_status == 422 and refusal.code == "bad_signature", why
    assert refusals["no attempt"] is not None and refusals["no attempt"].field == "attempt"


def test_holdings_remember_each_jobs_attempt_until_released() -> None:
    holdings = Holdings(concurrency=4)
    holdings.offered("a", "corr-a", 2)
    holdings.resumed("b", "corr-b", 5)
    holdings.offered("c", "corr-c")
    assert (holdings.attempt_of("a"), holdings.attempt_of("b"), holdings.attempt_of("c")) == (2, 5, None)
    holdings.confirm(["a"])  # b let go: its result may still come, signed for attempt 5
    assert holdings.attempt_of("b") == 5
    holdings.release("a")
    holdings.release("b")
    assert holdings.attempt_of("a") is None and holdings.attempt_of("b") is None


def test_new_credentials_carry_a_signing_key_that_survives_the_file(tmp_path: Path) -> None:
    credentials = new_credentials("http://127.0.0.1:8080")
    path = credentials_path(tmp_path, "laptop")
    save_credentials(path, credentials)
    loaded = load_credentials(path)
    assert loaded is not None
    key = signing_key(loaded)
    assert key is not None
    assert credentials.signing_key is not None and credentials.signing_key not in repr(loaded)
    original = signing_key(credentials)
    assert original is not None and public_key_of(key) == public_key_of(original)
    assert new_credentials("http://x").signing_key != credentials.signing_key
    assert signing_key(msgspec.structs.replace(credentials, signing_key=None)) is None
    with pytest.raises(CredentialsError, match="not an Ed25519 private key"):
        signing_key(msgspec.structs.replace(credentials, signing_key="nope"))


def test_the_node_aggregate_remembers_its_registered_key() -> None:
    decider = NodeDecider({})
    public = public_key_of(Ed25519PrivateKey.generate())

    def registered(public_key: str | None) -> NodeRegistered:
        return NodeRegistered(
            node_id="n1",
            api_token_hash="h",
            session_id="s1",
            session_token_hash="sh",
            consent_flag=True,
            public_key=public_key,
        )

    state = decider.initial_state("n1")
    (event,) = decider.decide(Register(registered=registered(public)), state, NOW)
    assert decider.evolve(state, event).public_key == public
    (event,) = decider.decide(Register(registered=registered(None)), state, NOW)
    assert decider.evolve(state, event).public_key is None
    # an event from before keys decodes, and leaves the node without one
    old = msgspec.json.encode(registered(None)).replace(b',"public_key":null', b"")
    assert b"public_key" not in old
    assert msgspec.json.decode(old, type=NodeRegistered).public_key is None


def test_receipts_are_stored_one_file_each_and_listed(tmp_path: Path) -> None:
    directory = receipts_dir(tmp_path, "laptop")
    assert directory == tmp_path / "node" / "laptop-receipts"
    assert stored_receipts(directory) == []
    key = ServiceKey("k1", Ed25519PrivateKey.generate())

    def receipt(job_id: str, verdict: Verdict) -> Receipt:
        return sign_receipt(
            key,
            job_id=job_id,
            attempt=1,
            node_id="n1",
            result_checksum=CHECKSUM,
            verdict=verdict,
            issued_at=NOW,
        )

    first = store_receipt(directory, receipt("job-1", "validated"))
    assert first.name == "job-1.1.json"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700 and stat.S_IMODE(first.stat().st_mode) == 0o600
    later = receipt("job-1", "finalised")
    assert store_receipt(directory, later) == first
    store_receipt(directory, receipt("job-2", "validated"))
    (directory / "zz.json").write_bytes(b"{not a receipt")
    listed = stored_receipts(directory)
    assert [path.name for path, _ in listed] == ["job-1.1.json", "job-2.1.json", "zz.json"]
    assert listed[0][1] == later
    assert isinstance(listed[2][1], MalformedReceipt)
    assert [p.name for p in directory.iterdir() if p.name.startswith(".")] == []  # no temporary left
