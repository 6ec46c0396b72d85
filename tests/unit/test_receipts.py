"""Receipts and result signatures: sign/verify round trips, every kind of tampering, unknown and
retired keys, malformed receipts and key sets, and the key ring on disk (creation, modes,
rotation, reloading)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccn_core.receipts import (
    KEYS_FILE,
    BadNodeSignature,
    InvalidReceipt,
    KeyRingError,
    KeyRingSource,
    MalformedKeySet,
    MalformedReceipt,
    ServiceKey,
    UnknownKey,
    b64url,
    decode_key_set,
    decode_receipt,
    encode_key_set,
    ensure_key_ring,
    from_b64url,
    load_key_ring,
    load_key_set,
    new_private_key,
    private_key,
    public_key_of,
    receipt_signing_bytes,
    rotate_key_ring,
    sign_receipt,
    sign_result,
    valid_public_key,
    verify_receipt,
    verify_result_signature,
)
from ccn_proto.receipts import MAX_RECEIPT_BYTES, KeySet, PublishedKey, Receipt

T0 = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
CHECKSUM = "a" * 64


def _key(key_id: str = "k1") -> ServiceKey:
    return ServiceKey(key_id, Ed25519PrivateKey.generate())


def _published(key: ServiceKey, *, since: datetime = T0, until: datetime | None = None) -> PublishedKey:
    return PublishedKey(
        key_id=key.key_id,
        public_key=key.public_key,
        valid_from=since,
        valid_until=until,
        status="active" if until is None else "retired",
    )


def _receipt(key: ServiceKey, *, at: datetime = T0 + timedelta(hours=1), node_signature: str | None = None) -> Receipt:
    return sign_receipt(
        key,
        job_id="01JOB-1",
        attempt=2,
        node_id="node-7",
        result_checksum=CHECKSUM,
        verdict="validated",
        issued_at=at,
        node_signature=node_signature,
    )


def test_a_signed_receipt_verifies_and_survives_a_json_round_trip() -> None:
    key = _key()
    receipt = _receipt(key, node_signature=sign_result(Ed25519PrivateKey.generate(), "01JOB-1", 2, CHECKSUM))
    keys = KeySet(keys=[_published(key)])
    assert verify_receipt(receipt, keys).key_id == "k1"
    again = decode_receipt(msgspec.json.encode(receipt))
    assert again == receipt
    assert verify_receipt(again, keys).key_id == "k1"


def test_the_signed_bytes_are_the_documented_canonical_form() -> None:
    receipt = _receipt(_key())
    signed = receipt_signing_bytes(receipt)
    assert signed.startswith(b"ccn-receipt/1\n{")
    body = msgspec.json.decode(signed.removeprefix(b"ccn-receipt/1\n"))
    assert list(body) == sorted(body) and "signature" not in body
    assert body["issued_at"] == "2026-12-07T05:00:00.000000Z"
    assert body["node_signature"] is None and body["format"] == 1


def test_an_offset_spelling_of_the_same_instant_still_verifies() -> None:
    key = _key()
    receipt = _receipt(key)
    text = msgspec.json.encode(receipt).replace(b"2026-12-07T05:00:00Z", b"2026-12-07T06:00:00+01:00")
    assert b"+01:00" in text
    assert verify_receipt(decode_receipt(text), KeySet(keys=[_published(key)])).key_id == "k1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("job_id", "01JOB-2"),
        ("attempt", 3),
        ("node_id", "node-8"),
        ("result_checksum", "b" * 64),
        ("verdict", "rejected"),
        ("issued_at", T0 + timedelta(hours=1, microseconds=1)),
        ("node_signature", b64url(b"\x01" * 64)),
    ],
)
def test_changing_any_signed_field_breaks_the_signature(field: str, value: object) -> None:
    key = _key()
    tampered = msgspec.structs.replace(_receipt(key), **{field: value})
    with pytest.raises(InvalidReceipt, match="signature does not match") as caught:
        verify_receipt(tampered, KeySet(keys=[_published(key)]))
    assert caught.value.field == "signature"


def test_a_forged_signature_and_another_keys_signature_fail() -> None:
    key, other = _key(), _key()
    keys = KeySet(keys=[_published(key)])
    forged = msgspec.structs.replace(_receipt(key), signature=b64url(b"\x00" * 64))
    with pytest.raises(InvalidReceipt, match="signature"):
        verify_receipt(forged, keys)
    by_other = sign_receipt(
        ServiceKey("k1", other.private),
        job_id="j",
        attempt=0,
        node_id="n",
        result_checksum=CHECKSUM,
        verdict="validated",
        issued_at=T0 + timedelta(hours=1),
    )
    with pytest.raises(InvalidReceipt, match="did not sign it"):
        verify_receipt(by_other, keys)


def test_an_unknown_key_id_is_its_own_error() -> None:
    key = _key("k1")
    receipt = _receipt(key)
    with pytest.raises(UnknownKey, match="'k1'"):
        verify_receipt(receipt, KeySet(keys=[_published(_key("k2"))]))
    with pytest.raises(UnknownKey):
        verify_receipt(msgspec.structs.replace(receipt, key_id="k9"), KeySet(keys=[_published(key)]))


def test_a_retired_key_verifies_its_old_receipts_but_not_later_ones() -> None:
    old, new = _key("old"), _key("new")
    rotated = T0 + timedelta(days=30)
    keys = KeySet(keys=[_published(old, until=rotated), _published(new, since=rotated)])
    assert verify_receipt(_receipt(old, at=rotated - timedelta(seconds=1)), keys).key_id == "old"
    assert verify_receipt(_receipt(new, at=rotated), keys).key_id == "new"
    with pytest.raises(InvalidReceipt, match="after key old was retired"):
        verify_receipt(_receipt(old, at=rotated), keys)
    with pytest.raises(InvalidReceipt, match="before key new was valid"):
        verify_receipt(_receipt(new, at=rotated - timedelta(seconds=1)), keys)


def test_node_result_signatures_bind_job_attempt_and_checksum() -> None:
    node = Ed25519PrivateKey.generate()
    public = public_key_of(node)
    signature = sign_result(node, "job-1", 1, CHECKSUM)
    verify_result_signature(public, "job-1", 1, CHECKSUM, signature)
    for job_id, attempt, checksum in [("job-2", 1, CHECKSUM), ("job-1", 2, CHECKSUM), ("job-1", 1, "b" * 64)]:
        with pytest.raises(BadNodeSignature) as caught:
            verify_result_signature(public, job_id, attempt, checksum, signature)
        assert caught.value.code == "bad_signature" and caught.value.http_status == 422
    with pytest.raises(BadNodeSignature):
        verify_result_signature(public_key_of(Ed25519PrivateKey.generate()), "job-1", 1, CHECKSUM, signature)
    for garbage in ["", "!" * 86, signature[:-1], signature + "A"]:
        with pytest.raises(BadNodeSignature):
            verify_result_signature(public, "job-1", 1, CHECKSUM, garbage)


def test_a_receipt_signature_never_passes_for_a_result_signature() -> None:
    key = _key()
    receipt = _receipt(key)
    with pytest.raises(BadNodeSignature):
        verify_result_signature(key.public_key, receipt.job_id, receipt.attempt, CHECKSUM, receipt.signature)


def test_private_keys_round_trip_and_reject_garbage() -> None:
    text = new_private_key()
    assert len(text) == 43 and b64url(from_b64url(text, 32) or b"") == text
    assert public_key_of(private_key(text)) == public_key_of(private_key(text))
    for garbage in ["", "abc", text + "A", "=" * 43]:
        with pytest.raises(ValueError, match="not an Ed25519 private key"):
            private_key(garbage)


def test_non_canonical_base64_is_refused() -> None:
    raw = os.urandom(32)
    canonical = b64url(raw)
    last = canonical[-1]
    # the last of 43 characters carries 4 bits and 2 spare ones: setting a spare bit keeps the bytes
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]
    assert from_b64url(canonical, 32) == raw
    assert from_b64url(canonical[:-1] + sibling, 32) is None


# -- decoding untrusted receipts and key sets ----------------------------------------------------


def _receipt_json(**changes: object) -> bytes:
    body = msgspec.to_builtins(_receipt(_key()))
    body.update(changes)
    return msgspec.json.encode(body)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "not a receipt"),
        (b"{", "not a receipt"),
        (b"[]", "not a receipt"),
        (b"\xff\xfe", "not a receipt"),
        (b'{"job_id": "\xff\xfe"}', "not valid UTF-8"),
        (b" " * (MAX_RECEIPT_BYTES + 1), "larger than any receipt"),
        (b"[" * 3000, "not a receipt"),
    ],
)
def test_garbage_is_a_malformed_receipt(raw: bytes, expected: str) -> None:
    with pytest.raises(MalformedReceipt, match=expected):
        decode_receipt(raw)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"job_id": "job\n1"}, "job_id"),
        ({"node_id": "node\x00"}, "node_id"),
        ({"result_checksum": "A" * 64}, "result_checksum"),
        ({"verdict": "great"}, "verdict"),
        ({"issued_at": "2026-12-07T05:00:00"}, "issued_at"),
        ({"key_id": "k\u202e1"}, "key_id"),
        ({"signature": "x"}, "signature"),
        ({"format": 2}, "format"),
        ({"attempt": -1}, "attempt"),
        ({"extra": 1}, None),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, object], field: str | None) -> None:
    with pytest.raises(MalformedReceipt) as caught:
        decode_receipt(_receipt_json(**changes))
    assert caught.value.code == "malformed_receipt"
    if field is not None:
        assert caught.value.field == field


def test_a_non_canonical_signature_encoding_is_malformed() -> None:
    receipt = _receipt(_key())
    spare_bits_set = receipt.signature[:-1] + ("B" if receipt.signature[-1] == "A" else "A")
    if from_b64url(spare_bits_set, 64) is not None:  # that flip changed real bits: pick the spare ones
        spare_bits_set = receipt.signature[:-1] + chr(ord(receipt.signature[-1]) ^ 1)
    raw = msgspec.json.encode(msgspec.structs.replace(receipt, signature=spare_bits_set))
    with pytest.raises((MalformedReceipt, InvalidReceipt)):
        verify_receipt(decode_receipt(raw), KeySet(keys=[]))


def test_key_sets_are_checked_key_by_key() -> None:
    key = _key()
    good = KeySet(keys=[_published(key)])
    assert decode_key_set(encode_key_set(good)) == good
    twice = KeySet(keys=[_published(key), _published(key)])
    with pytest.raises(MalformedKeySet, match="appears twice"):
        decode_key_set(encode_key_set(twice))
    backwards = KeySet(keys=[_published(key, until=T0 - timedelta(days=1))])
    with pytest.raises(MalformedKeySet, match="ends before it starts"):
        decode_key_set(encode_key_set(backwards))
    bad_point = msgspec.structs.replace(_published(key), public_key="_" * 43)
    with pytest.raises(MalformedKeySet, match="not an Ed25519 public key"):
        decode_key_set(encode_key_set(KeySet(keys=[bad_point])))
    for raw in [b"{}", b"not json", b'{"keys": [{}]}', b" " * 70_000]:
        with pytest.raises(MalformedKeySet):
            decode_key_set(raw)


# -- the key ring on disk --------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_creates_a_private_ring_once(tmp_path: Path) -> None:
    directory = tmp_path / "receipt-keys"
    ring = ensure_key_ring(directory, T0)
    assert _mode(directory) == 0o700
    assert _mode(directory / f"{ring.active.key_id}.key") == 0o600
    assert [key.status for key in ring.keys.keys] == ["active"]
    again = ensure_key_ring(directory, T0 + timedelta(days=1))
    assert again.active.key_id == ring.active.key_id and again.keys == ring.keys
    receipt = ring.issue_receipt(
        job_id="j1", attempt=1, node_id="n1", result_checksum=CHECKSUM, verdict="finalised", now=T0
    )
    assert verify_receipt(receipt, load_key_set(directory)).key_id == ring.active.key_id


def test_rotation_keeps_old_receipts_verifiable_and_deletes_the_old_private_key(tmp_path: Path) -> None:
    ring = ensure_key_ring(tmp_path, T0)
    old_receipt = ring.issue_receipt(
        job_id="j1", attempt=1, node_id="n1", result_checksum=CHECKSUM, verdict="validated", now=T0
    )
    rotated_at = T0 + timedelta(days=90)
    rotated = rotate_key_ring(tmp_path, rotated_at, overlap=timedelta(minutes=5))
    assert rotated.active.key_id != ring.active.key_id
    assert not (tmp_path / f"{ring.active.key_id}.key").exists()
    statuses = {key.key_id: (key.status, key.valid_until) for key in rotated.keys.keys}
    assert statuses[ring.active.key_id] == ("retired", rotated_at + timedelta(minutes=5))
    assert statuses[rotated.active.key_id] == ("active", None)
    published = load_key_set(tmp_path)
    assert verify_receipt(old_receipt, published).key_id == ring.active.key_id
    new_receipt = rotated.issue_receipt(
        job_id="j2", attempt=1, node_id="n1", result_checksum=CHECKSUM, verdict="validated", now=rotated_at
    )
    assert verify_receipt(new_receipt, published).key_id == rotated.active.key_id
    assert load_key_ring(tmp_path).active.key_id == rotated.active.key_id


def test_the_source_reloads_after_a_rotation(tmp_path: Path) -> None:
    first = ensure_key_ring(tmp_path, T0)
    now = [0.0]
    source = KeyRingSource(tmp_path, recheck_s=1.0, clock=lambda: now[0])
    assert source.ring().active.key_id == first.active.key_id
    assert source.ring() is source.ring()  # unchanged file: no reload
    second = rotate_key_ring(tmp_path, T0 + timedelta(days=1))
    now[0] = 0.5  # looked at half a second ago: the ring in hand is signed with
    assert source.ring().active.key_id == first.active.key_id
    now[0] = 1.0
    assert source.ring().active.key_id == second.active.key_id


def test_a_damaged_ring_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError, match="ccn up"):
        load_key_ring(tmp_path)
    with pytest.raises(KeyRingError):
        KeyRingSource(tmp_path).ring()
    ring = ensure_key_ring(tmp_path, T0)
    private = tmp_path / f"{ring.active.key_id}.key"
    private.chmod(0o644)
    with pytest.raises(KeyRingError, match="readable by others"):
        load_key_ring(tmp_path)
    private.chmod(0o600)
    private.write_text(new_private_key())
    with pytest.raises(KeyRingError, match="does not hold the private half"):
        load_key_ring(tmp_path)
    private.write_text("garbage")
    with pytest.raises(KeyRingError, match="not an Ed25519 private key"):
        load_key_ring(tmp_path)
    private.unlink()
    with pytest.raises(KeyRingError, match="missing"):
        load_key_ring(tmp_path)
    (tmp_path / KEYS_FILE).write_bytes(b"{")
    with pytest.raises(KeyRingError, match="not a key set"):
        load_key_ring(tmp_path)
    (tmp_path / KEYS_FILE).write_bytes(encode_key_set(KeySet(keys=[])))
    with pytest.raises(KeyRingError, match="0 active keys"):
        load_key_ring(tmp_path)


def _encoded(y: int, sign: int = 0) -> str:
    return b64url((y | sign << 255).to_bytes(32, "little"))


def test_public_keys_must_be_curve_points_outside_the_small_order_subgroup() -> None:
    prime = 2**255 - 19
    for _ in range(20):
        assert valid_public_key(public_key_of(Ed25519PrivateKey.generate()))
    small_order = {
        "identity (order 1)": _encoded(1),
        "y = -1 (order 2)": _encoded(prime - 1),
        "y = 0 (order 4)": _encoded(0),
        "y = 0, the other x (order 4)": _encoded(0, sign=1),
    }
    for why, key in small_order.items():
        assert not valid_public_key(key), why
    assert not valid_public_key(_encoded(prime + 1))  # a non-canonical spelling of the identity
    assert not valid_public_key(_encoded(2))  # y = 2 is on no point of the curve
    # why: with the identity as public key, one "signature" verifies for every message, so
    # anyone could sign for that node; the check at registration is what stops it
    identity_signature = b64url(_encoded_bytes(1) + bytes(32))
    for job_id, attempt in [("job-1", 1), ("job-2", 7)]:
        verify_result_signature(_encoded(1), job_id, attempt, CHECKSUM, identity_signature)


def _encoded_bytes(y: int) -> bytes:
    return y.to_bytes(32, "little")
