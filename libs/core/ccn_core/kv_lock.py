"""A lock held in a NATS key-value bucket, for one-shot jobs that several processes may start at
once (a `ccn topology apply` Job and a `ccn up` on the same servers, two rollouts overlapping).

Taking the lock is `create` of its key, which the server grants to one caller only. The bucket's
TTL frees a lock whose holder died without releasing it, so the TTL must exceed the longest
time a holder keeps it; release deletes the key only at the revision this holder wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

LOCK_BUCKET = "ccn_locks"


class LockTimeout(TimeoutError):
    """Someone else held the lock for longer than the caller would wait."""


async def lock_bucket(js: JetStreamContext, *, ttl_s: float, replicas: int) -> KeyValue:
    try:
        return await js.key_value(LOCK_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(
                bucket=LOCK_BUCKET,
                description="Locks of one-shot jobs (topology apply); each key expires after its TTL",
                history=1,
                ttl=ttl_s,
                storage=StorageType.FILE,
                replicas=replicas,
            )
        )


@asynccontextmanager
async def held_lock(
    js: JetStreamContext,
    key: str,
    *,
    wait_s: float,
    ttl_s: float = 120.0,
    replicas: int = 1,
    poll_s: float = 0.2,
) -> AsyncIterator[None]:
    """Hold `key` for the block; wait up to wait_s for another holder, then LockTimeout."""
    bucket = await lock_bucket(js, ttl_s=ttl_s, replicas=replicas)
    holder = f"{socket.gethostname()}:{os.getpid()}".encode()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            revision = await bucket.create(key, holder)
            break
        except KeyWrongLastSequenceError:
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"lock {key!r} still held by {await _holder(bucket, key)} after {wait_s:.0f}s"
                ) from None
            await asyncio.sleep(poll_s)
    try:
        yield
    finally:
        # only our own revision: if the TTL freed it and another took it, theirs stays
        with contextlib.suppress(KeyWrongLastSequenceError):
            await bucket.delete(key, last=revision)


async def _holder(bucket: KeyValue, key: str) -> str:
    try:
        entry = await bucket.get(key)
    except NotFoundError:  # released or expired just now (key not found, or deleted)
        return "a holder that has just let go"
    return (entry.value or b"?").decode(errors="replace")
