"""What the tests of the limiters kept in NATS KV share: one clock for every replica, moved by
the test (exact counts, no sleeps), and the rate-limit state bucket on a test's own connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.js.kv import KeyValue

from ccn_core.ratelimit import NS_PER_S
from ccn_core.topology import RATE_LIMIT_STATE

T0 = 1_800_000_000 * NS_PER_S


class Clock:
    """One clock for all replicas, moved by the test: exact counts, no sleeps."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@asynccontextmanager
async def rate_limit_bucket(nats_url: str) -> AsyncIterator[KeyValue]:
    client = await nats.connect(nats_url)
    try:
        yield await client.jetstream().key_value(RATE_LIMIT_STATE.bucket)
    finally:
        await client.drain()
