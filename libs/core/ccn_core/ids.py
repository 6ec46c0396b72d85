"""Identifiers, tokens and one-way hashes: randomness and secrets enter the system here only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid


def uuid7(now_ms: int | None = None, rand: bytes | None = None) -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): sorts by creation, so event ids index well."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    tail = os.urandom(10) if rand is None else rand
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | int.from_bytes(tail, "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


def new_event_id() -> str:
    return str(uuid7())


def derived_event_id(*parts: str) -> str:
    """An event id fixed by its inputs, so a retried command writes the same Nats-Msg-Id."""
    value = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:16], "big")
    value = (value & ~(0xF << 76)) | (0x8 << 76)  # version 8: custom (RFC 9562)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def new_correlation_id() -> str:
    return str(uuid7())


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def keyed_secret(key: str, *parts: str) -> str:
    """A secret only the holder of `key` can recompute, e.g. to answer a retried registration."""
    mac = hmac.new(key.encode(), "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def keyed_uuid4(key: str, *parts: str) -> uuid.UUID:
    mac = hmac.new(key.encode(), "\x1f".join(parts).encode(), hashlib.sha256).digest()
    return uuid.UUID(bytes=mac[:16], version=4)


def token_hash(secret: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()


def token_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(secret), stored_hash)


def ip_hash(ip: str, salt: str) -> str:
    """Raw IPs are never stored: a salted HMAC lets abuse be grouped without keeping the address."""
    return hmac.new(salt.encode(), ip.encode(), hashlib.sha256).hexdigest()


def new_public_id() -> str:
    """Ids shown to the public (nodes, sessions) are random UUIDv4: they reveal no time or order."""
    return str(uuid.uuid4())
