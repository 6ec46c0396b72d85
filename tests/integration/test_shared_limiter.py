"""The shared limiter against a real NATS key-value bucket: three replicas, each with its own
cache, deciding on one key at once never allow more than the limit between them; chunks keep
the limit within one chunk per replica; a key deleted or rewritten behind a replica's back is
read again, never trusted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.js.kv import KeyValue

from ccn_core.rate_limit_config import LimitRule
from ccn_core.ratelimit import NS_PER_S
from ccn_core.shared_limiter import SharedLimiter
from tests.support.rate_limit_state import Clock, rate_limit_bucket

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def bucket(nats_url: str) -> AsyncIterator[KeyValue]:
    async with rate_limit_bucket(nats_url) as kv:
        yield kv


async def test_three_replicas_at_once_never_allow_more_than_the_limit(bucket: KeyValue) -> None:
    clock = Clock()
    replicas = [SharedLimiter(bucket, clock=clock) for _ in range(3)]
    rule = LimitRule(rate=10, period_s=1.0, burst=5)
    key = f"test.{uuid.uuid4().hex}"
    allowed = 0
    for step in range(20):  # 2 s of simulated time, each replica asked 4 times at every 100 ms
        decisions = await asyncio.gather(*(replica.take(key, rule) for replica in replicas for _ in range(4)))
        allowed += sum(decision.allowed for decision in decisions)
        if step < 19:
            clock.now += NS_PER_S // 10
    # the burst, then exactly one per 100 ms interval
    assert allowed == 5 + 19


async def test_a_denial_from_the_cache_costs_no_round_trip(bucket: KeyValue) -> None:
    clock = Clock()
    limiter = SharedLimiter(bucket, clock=clock)
    rule = LimitRule(rate=1, period_s=60.0, burst=2)
    key = f"test.{uuid.uuid4().hex}"
    assert [(await limiter.take(key, rule)).allowed for _ in range(2)] == [True, True]
    trips = limiter.round_trips
    for _ in range(100):
        refused = await limiter.take(key, rule)
        assert not refused.allowed and refused.retry_after_s == pytest.approx(60.0)
    assert limiter.round_trips == trips


async def test_chunks_hold_the_limit_within_one_chunk_per_replica(bucket: KeyValue) -> None:
    clock = Clock()
    replicas = [SharedLimiter(bucket, clock=clock) for _ in range(3)]
    rule = LimitRule(rate=100, period_s=1.0, burst=50, chunk=10)
    key = f"test.{uuid.uuid4().hex}"
    allowed = 0
    for step in range(100):  # 1 s, every 10 ms: each replica asked 5 times
        for replica in replicas:
            for _ in range(5):
                allowed += (await replica.take(key, rule)).allowed
        if step < 99:
            clock.now += NS_PER_S // 100
    exact = 50 + 99
    assert exact - 3 * rule.chunk <= allowed <= exact + 3 * rule.chunk


async def test_chunks_spare_round_trips_at_the_rate(bucket: KeyValue) -> None:
    clock = Clock()
    limiter = SharedLimiter(bucket, clock=clock)
    rule = LimitRule(rate=100, period_s=1.0, burst=50, chunk=10)
    key = f"test.{uuid.uuid4().hex}"
    for _ in range(200):  # 2 s at the rate: every request allowed, one write per chunk
        assert (await limiter.take(key, rule)).allowed
        clock.now += NS_PER_S // 100
    assert limiter.round_trips <= 25  # the chunk grows 1, 2, 4, 8, then 10 a write


async def test_a_key_changed_behind_a_replicas_back_is_read_again(bucket: KeyValue) -> None:
    clock = Clock()
    one, other = SharedLimiter(bucket, clock=clock), SharedLimiter(bucket, clock=clock)
    rule = LimitRule(rate=1, period_s=10.0, burst=2)
    key = f"test.{uuid.uuid4().hex}"
    assert (await one.take(key, rule)).allowed
    assert (await other.take(key, rule)).allowed  # conflicts with one's create, reads, decides again
    assert not (await one.take(key, rule)).allowed  # one's cache is stale-lenient, the write refused
    await bucket.delete(key)  # gone (deleted by an operator): idle again for whoever reads it
    third = SharedLimiter(bucket, clock=clock)
    assert (await third.take(key, rule)).allowed
    await bucket.put(key, b"not a state")  # garbage is overwritten, neither trusted nor fatal
    clock.now += 30 * NS_PER_S
    assert (await one.take(key, rule)).allowed
    assert (await one.take(key, rule)).allowed
    assert not (await one.take(key, rule)).allowed
