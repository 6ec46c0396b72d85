"""Ed25519 receipts and result signatures: sign and verify (pure, given keys), and the
service's key ring on disk.

Pure part: `sign_receipt` / `verify_receipt` for the service's receipts, `sign_result` /
`verify_result_signature` for a node's signature over its result, and the decoders that turn
untrusted bytes into a Receipt or a KeySet or a typed error. What is signed is defined in
ccn_proto.receipts, so a verifier in another language computes the same bytes.

The key ring (I/O): the service's keys live in one directory under its secrets
(Settings.receipt_keys_path, mode 0700): `keys.json`, the published set (public keys only,
oldest first), and `<key_id>.key` (mode 0600), the private key of the active key and nothing
else. `ccn up` creates it on the first start of the stack if absent (`ensure_key_ring`); keys
are made here, never downloaded. `rotate_key_ring` makes a new active key and retires the old
one: its private key is deleted, its public key stays in the set with `valid_until`, so every
receipt it signed still verifies. A retired key's validity ends ROTATION_OVERLAP after the
rotation, so a signer that has not yet re-read the ring (KeyRingSource re-reads it when the file
changes) still issues receipts that verify.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from ccn_core.atomic_files import write_atomic
from ccn_core.errors import BadInput, CcnError, Unprocessable
from ccn_core.untrusted import decode_untrusted, untrusted_decoder
from ccn_proto.receipts import (
    MAX_KEY_SET_BYTES,
    MAX_RECEIPT_BYTES,
    RECEIPT_DOMAIN,
    RESULT_DOMAIN,
    KeySet,
    PublishedKey,
    Receipt,
    Verdict,
)

KEYS_FILE = "keys.json"
DIR_MODE = 0o700
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
ROTATION_OVERLAP = timedelta(minutes=5)
_PRIVATE_KEY_CHARS = 43  # 32 bytes, unpadded base64url
_MAX_PRIVATE_FILE_BYTES = 256


# -- typed errors: every way a receipt, a key or a signature can be wrong has its own ------------


class MalformedReceipt(BadInput):
    """Not a receipt at all: too large, not JSON, a field missing, unknown or out of shape."""

    code = "malformed_receipt"


class MalformedKeySet(BadInput):
    """Not a key set: too large, not JSON, a key that is not an Ed25519 public key, ids repeated."""

    code = "malformed_key_set"


class InvalidReceipt(Unprocessable):
    """A well-formed receipt that does not verify: the message says why."""

    code = "invalid_receipt"


class UnknownKey(InvalidReceipt):
    code = "unknown_key"


class BadNodeSignature(Unprocessable):
    """A node's signature over its result does not verify against the key it registered."""

    code = "bad_signature"


class KeyRingError(CcnError):
    """The service's key ring on disk cannot be used; the message names the file."""

    code = "key_ring"


# -- encodings ---------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str, size: int) -> bytes | None:
    """The `size` bytes `text` encodes, or None: a wrong length or a non-canonical encoding
    (spare bits set) is refused, so one key or signature has exactly one spelling."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(data) != size or b64url(data) != text:
        return None
    return data


def utc_text(moment: datetime) -> str:
    """A time as signed: RFC 3339, UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def receipt_signing_bytes(receipt: Receipt) -> bytes:
    """What a receipt's `signature` signs (ccn_proto.receipts says it in words)."""
    body = msgspec.structs.asdict(receipt)
    del body["signature"]
    body["issued_at"] = utc_text(receipt.issued_at)
    return RECEIPT_DOMAIN + msgspec.json.encode(body, order="sorted")


def result_signing_bytes(job_id: str, attempt: int, checksum: str) -> bytes:
    """What a node's signature over its result signs."""
    return RESULT_DOMAIN + f"{job_id}\n{attempt}\n{checksum}".encode()


# -- node keys and result signatures -----------------------------------------------------------


def new_private_key() -> str:
    """A fresh Ed25519 private key, as unpadded base64url of its 32 raw bytes."""
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return b64url(raw)


def private_key(text: str) -> Ed25519PrivateKey:
    raw = from_b64url(text, 32)
    if raw is None:
        raise ValueError("not an Ed25519 private key (32 bytes, unpadded base64url)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def public_key_of(key: Ed25519PrivateKey) -> str:
    return b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


# Curve25519 in Edwards form (RFC 8032 §5.1): the field prime, the curve constant d, sqrt(-1)
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _decoded_point(raw: bytes) -> tuple[int, int] | None:
    """The point `raw` encodes (RFC 8032 §5.1.3), or None: not canonical or not on the curve."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    sign = raw[31] >> 7
    if y >= _P:
        return None
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    if (v * x * x - u) % _P != 0:
        x = x * _SQRT_M1 % _P
        if (v * x * x - u) % _P != 0:
            return None
    if x == 0 and sign:
        return None
    return (_P - x, y) if x % 2 != sign else (x, y)


def _doubled(point: tuple[int, int]) -> tuple[int, int]:
    x, y = point
    xy = x * y % _P
    denominator = _D * xy * xy % _P
    return (
        2 * xy * pow(1 + denominator, _P - 2, _P) % _P,
        (y * y + x * x) * pow(1 - denominator, _P - 2, _P) % _P,
    )


def _usable_public_key(raw: bytes) -> bool:
    """A canonical encoding of a curve point outside the small-order subgroup. OpenSSL takes any
    32 bytes, and with a small-order key (the identity, say) one signature passes for every
    message: such a key proves nothing, so it is refused up front."""
    point = _decoded_point(raw)
    if point is None:
        return False
    for _ in range(3):  # eight times the point: the identity for exactly the small-order points
        point = _doubled(point)
    return point != (0, 1)


@lru_cache(maxsize=4096)
def _public_key(text: str) -> Ed25519PublicKey | None:
    """The key to verify with. Its point is not checked here (that costs milliseconds in
    Python): keys are checked once where they enter, by `valid_public_key` at registration and
    in `decode_key_set`, and a key that slipped past would still verify nothing it should not
    for anyone but its own node."""
    raw = from_b64url(text, 32)
    if raw is None:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


def valid_public_key(text: str) -> bool:
    """Whether `text` may be registered or published as a public key: canonical base64url of a
    point on the curve outside its small-order subgroup."""
    raw = from_b64url(text, 32)
    return raw is not None and _usable_public_key(raw) and _public_key(text) is not None


def _verifies(public_key: str, signature: str, message: bytes) -> bool:
    key = _public_key(public_key)
    raw = from_b64url(signature, 64)
    if key is None or raw is None:
        return False
    try:
        key.verify(raw, message)
    except InvalidSignature:
        return False
    return True


def sign_result(private: Ed25519PrivateKey, job_id: str, attempt: int, checksum: str) -> str:
    return b64url(private.sign(result_signing_bytes(job_id, attempt, checksum)))


def verify_result_signature(public_key: str, job_id: str, attempt: int, checksum: str, signature: str) -> None:
    """None when `signature` is the node's over (job, attempt, checksum); BadNodeSignature otherwise."""
    if not _verifies(public_key, signature, result_signing_bytes(job_id, attempt, checksum)):
        raise BadNodeSignature(
            f"the result's signature does not verify against the node's registered key "
            f"(it signs job {job_id}, attempt {attempt} and the result's checksum)",
            field="signature",
        )


# -- receipts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceKey:
    key_id: str
    private: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        return public_key_of(self.private)


def sign_receipt(
    key: ServiceKey,
    *,
    job_id: str,
    attempt: int,
    node_id: str,
    result_checksum: str,
    verdict: Verdict,
    issued_at: datetime,
    node_signature: str | None = None,
) -> Receipt:
    unsigned = Receipt(
        job_id=job_id,
        attempt=attempt,
        node_id=node_id,
        result_checksum=result_checksum,
        verdict=verdict,
        issued_at=issued_at.astimezone(UTC),
        node_signature=node_signature,
        key_id=key.key_id,
        signature="",
    )
    signature = b64url(key.private.sign(receipt_signing_bytes(unsigned)))
    return msgspec.structs.replace(unsigned, signature=signature)


def verify_receipt(receipt: Receipt, keys: KeySet) -> PublishedKey:
    """The published key that signed `receipt`; InvalidReceipt (UnknownKey) saying why not."""
    key = next((k for k in keys.keys if k.key_id == receipt.key_id), None)
    if key is None:
        raise UnknownKey(f"no published key has id {receipt.key_id!r}", field="key_id")
    if receipt.issued_at < key.valid_from:
        raise InvalidReceipt(
            f"issued at {utc_text(receipt.issued_at)}, before key {key.key_id} was valid "
            f"(from {utc_text(key.valid_from)})",
            field="issued_at",
        )
    if key.valid_until is not None and receipt.issued_at >= key.valid_until:
        raise InvalidReceipt(
            f"issued at {utc_text(receipt.issued_at)}, after key {key.key_id} was retired "
            f"(valid until {utc_text(key.valid_until)})",
            field="issued_at",
        )
    if not _verifies(key.public_key, receipt.signature, receipt_signing_bytes(receipt)):
        raise InvalidReceipt(
            f"the signature does not match the receipt: a field was changed after signing, or key "
            f"{key.key_id} did not sign it",
            field="signature",
        )
    return key


_receipt_decoder = untrusted_decoder(Receipt)
_key_set_decoder = untrusted_decoder(KeySet)


def decode_receipt(raw: bytes) -> Receipt:
    """A receipt from untrusted bytes, or MalformedReceipt naming what is wrong."""
    if len(raw) > MAX_RECEIPT_BYTES:
        raise MalformedReceipt(f"{len(raw)} bytes is larger than any receipt (at most {MAX_RECEIPT_BYTES})")
    try:
        receipt: Receipt = decode_untrusted(raw, _receipt_decoder)
    except BadInput as exc:
        raise MalformedReceipt(f"not a receipt: {exc.message}", field=exc.field) from None
    if from_b64url(receipt.signature, 64) is None:
        raise MalformedReceipt("signature is not a canonical base64url Ed25519 signature", field="signature")
    if receipt.node_signature is not None and from_b64url(receipt.node_signature, 64) is None:
        raise MalformedReceipt("node_signature is not a canonical base64url Ed25519 signature", field="node_signature")
    return receipt


def decode_key_set(raw: bytes) -> KeySet:
    """A key set from untrusted bytes, or MalformedKeySet naming what is wrong."""
    if len(raw) > MAX_KEY_SET_BYTES:
        raise MalformedKeySet(f"{len(raw)} bytes is larger than any key set (at most {MAX_KEY_SET_BYTES})")
    try:
        keys: KeySet = decode_untrusted(raw, _key_set_decoder)
    except BadInput as exc:
        raise MalformedKeySet(f"not a key set: {exc.message}", field=exc.field) from None
    seen: set[str] = set()
    for index, key in enumerate(keys.keys):
        if key.key_id in seen:
            raise MalformedKeySet(f"key id {key.key_id!r} appears twice", field=f"keys[{index}].key_id")
        seen.add(key.key_id)
        if not valid_public_key(key.public_key):
            raise MalformedKeySet(f"key {key.key_id} is not an Ed25519 public key", field=f"keys[{index}].public_key")
        if key.valid_until is not None and key.valid_until <= key.valid_from:
            raise MalformedKeySet(f"key {key.key_id} ends before it starts", field=f"keys[{index}].valid_until")
    return keys


def encode_key_set(keys: KeySet) -> bytes:
    return msgspec.json.format(msgspec.json.encode(keys)) + b"\n"


# -- the service's key ring on disk ------------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    """The published set and the active key's private half."""

    keys: KeySet
    active: ServiceKey

    def issue_receipt(
        self,
        *,
        job_id: str,
        attempt: int,
        node_id: str,
        result_checksum: str,
        verdict: Verdict,
        now: datetime,
        node_signature: str | None = None,
    ) -> Receipt:
        """The validation service's receipt for a result it judged, signed with the active key."""
        return sign_receipt(
            self.active,
            job_id=job_id,
            attempt=attempt,
            node_id=node_id,
            result_checksum=result_checksum,
            verdict=verdict,
            issued_at=now,
            node_signature=node_signature,
        )


def new_key_id(now: datetime) -> str:
    return f"rk-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def load_key_set(directory: Path) -> KeySet:
    """The published set in `directory` (public: what the edge serves); KeyRingError if absent
    or damaged."""
    path = directory / KEYS_FILE
    try:
        raw = _read_bounded(path, MAX_KEY_SET_BYTES)
    except FileNotFoundError:
        raise KeyRingError(f"no receipt keys at {path}: `ccn up` creates them on first start") from None
    try:
        return decode_key_set(raw)
    except MalformedKeySet as exc:
        raise KeyRingError(f"{path}: {exc.message}") from None


def load_key_ring(directory: Path) -> KeyRing:
    """The ring in `directory`, its active key's private half checked against the published
    public key; KeyRingError otherwise. Services load it; only `ensure_key_ring` creates one."""
    keys = load_key_set(directory)
    active = [key for key in keys.keys if key.status == "active"]
    if len(active) != 1:
        raise KeyRingError(f"{directory / KEYS_FILE} has {len(active)} active keys; a ring has exactly one")
    published = active[0]
    path = directory / f"{published.key_id}.key"
    try:
        text = _read_bounded(path, _MAX_PRIVATE_FILE_BYTES, private=True).decode("ascii").strip()
        key = private_key(text)
    except FileNotFoundError:
        raise KeyRingError(f"the active key's private half {path} is missing") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise KeyRingError(f"{path}: {exc}") from None
    if public_key_of(key) != published.public_key:
        raise KeyRingError(f"{path} does not hold the private half of published key {published.key_id}")
    return KeyRing(keys=keys, active=ServiceKey(published.key_id, key))


def ensure_key_ring(directory: Path, now: datetime) -> KeyRing:
    """The ring in `directory`, made (one active key) if there is none yet."""
    if (directory / KEYS_FILE).exists():
        return load_key_ring(directory)
    return _write_ring(directory, [], now)


def rotate_key_ring(directory: Path, now: datetime, overlap: timedelta = ROTATION_OVERLAP) -> KeyRing:
    """A new active key; the old one retired (valid until `now + overlap`), its public key kept
    in the set so its receipts verify, its private key deleted."""
    ring = load_key_ring(directory)
    retired = [
        msgspec.structs.replace(key, status="retired", valid_until=now + overlap) if key.status == "active" else key
        for key in ring.keys.keys
    ]
    rotated = _write_ring(directory, retired, now)
    (directory / f"{ring.active.key_id}.key").unlink(missing_ok=True)
    return rotated


def _write_ring(directory: Path, earlier: list[PublishedKey], now: datetime) -> KeyRing:
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(directory, DIR_MODE)
    key = ServiceKey(new_key_id(now), Ed25519PrivateKey.generate())
    raw = key.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    # the private half first: a crash between the two writes leaves an unused file, never a
    # published key without its private half
    write_atomic(directory / f"{key.key_id}.key", (b64url(raw) + "\n").encode(), PRIVATE_MODE)
    published = PublishedKey(
        key_id=key.key_id, public_key=key.public_key, valid_from=now.astimezone(UTC), status="active"
    )
    keys = KeySet(keys=[*earlier, published])
    write_atomic(directory / KEYS_FILE, encode_key_set(keys), PUBLIC_MODE)
    return KeyRing(keys=keys, active=key)


class KeyRingSource:
    """The ring a signer uses, re-read whenever `keys.json` changes (a rotation by `ccn
    receipts rotate`), so a long-running validation service signs with the new key without a
    restart. The file is looked at (one stat) at most every `recheck_s`: a signer signs a
    receipt per result, and a rotation keeps the retired key valid far longer than that."""

    def __init__(
        self,
        directory: Path,
        loader: Callable[[Path], KeyRing] = load_key_ring,
        *,
        recheck_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._keys_file = str(directory / KEYS_FILE)
        self._loader = loader
        self._recheck_s = recheck_s
        self._clock = clock
        self._checked_at = -math.inf
        self._seen: tuple[int, int, int] | None = None
        self._ring: KeyRing | None = None

    def ring(self) -> KeyRing:
        now = self._clock()
        if self._ring is not None and now - self._checked_at < self._recheck_s:
            return self._ring
        try:
            info = os.stat(self._keys_file)
        except FileNotFoundError:
            raise KeyRingError(f"no receipt keys at {self._keys_file}") from None
        seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        if self._ring is None or seen != self._seen:
            self._ring = self._loader(self._directory)
            self._seen = seen
        self._checked_at = now
        return self._ring


def _read_bounded(path: Path, max_bytes: int, *, private: bool = False) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyRingError(f"cannot read {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode) or (private and stat.S_IMODE(mode) & 0o077):
        os.close(fd)
        if not stat.S_ISREG(mode):
            raise KeyRingError(f"{path} is not a regular file")
        raise KeyRingError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    with os.fdopen(fd, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise KeyRingError(f"{path} is larger than {max_bytes} bytes")
    return data
