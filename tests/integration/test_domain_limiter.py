"""The domain limiter against a real NATS key-value bucket: three limiter instances (three proxy
replicas) with 50 requesters at once never exceed a domain's per-minute limit in any sliding
minute nor its concurrency; a replica that dies mid-fetch frees its slots when their leases
expire; the breaker, Retry-After and limit alerts are shared by every replica."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
from nats.js.kv import KeyValue

from ccn_core.autothrottle import ThrottleConfig
from ccn_core.circuit_breaker import BreakerConfig
from ccn_core.domain.domain_policy import PolicyLimits
from ccn_core.domain_limiter import DomainLimiter, Permit, Refusal, traffic_key
from ccn_core.errors import BadInput
from ccn_core.politeness import NOT_SENT, AlarmConfig, DomainLimits, FetchResult, PolitenessConfig
from ccn_core.ratelimit import NS_PER_S
from ccn_proto.fetch import BreakerChanged, DomainLimitAlert
from tests.support.rate_limit_state import T0, Clock, rate_limit_bucket

pytestmark = pytest.mark.timeout(60)
NO_THROTTLE = PolitenessConfig(throttle=ThrottleConfig(start_delay_s=0.0, max_delay_s=0.0), lease_s=30.0)


@pytest.fixture
async def bucket(nats_url: str) -> AsyncIterator[KeyValue]:
    async with rate_limit_bucket(nats_url) as kv:
        yield kv


def fresh_domain() -> str:
    return f"d{uuid.uuid4().hex[:12]}.example.org"


def replicas(bucket: KeyValue, clock: Clock, config: PolitenessConfig = NO_THROTTLE) -> list[DomainLimiter]:
    return [DomainLimiter(bucket, config=config, clock=clock) for _ in range(3)]


async def test_three_replicas_and_fifty_requesters_never_exceed_the_minute_or_the_concurrency(
    bucket: KeyValue,
) -> None:
    clock, domain = Clock(), fresh_domain()
    limiters = replicas(bucket, clock)
    limits = DomainLimits(per_minute=60, per_hour=36_000, max_concurrent=3)
    starts: list[int] = []
    in_flight, most_in_flight = 0, 0
    rng = random.Random(7)

    async def requester(index: int) -> None:
        nonlocal in_flight, most_in_flight
        answer = await limiters[index % 3].acquire(domain, limits)
        if isinstance(answer, Permit):
            starts.append(clock.now)
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            for _ in range(rng.randrange(1, 4)):
                await asyncio.sleep(0)  # other requesters run while this fetch is "in flight"
            # released through any replica: a permit is not tied to the one that gave it
            await limiters[rng.randrange(3)].release(answer, FetchResult(status=200, latency_s=0.05))
            in_flight -= 1

    for _ in range(400):  # 80 s of simulated time; every 200 ms all 50 requesters ask at once
        await asyncio.gather(*(requester(index) for index in range(50)))
        clock.now += NS_PER_S // 5
    assert most_in_flight <= 3
    window = 60 * NS_PER_S
    for first, start in enumerate(starts):
        assert sum(1 for later in starts[first:] if later < start + window) <= 60
    # and it is not refusing what the limit allows: the burst of 3, then one each 60/58 s
    assert len(starts) >= 3 + 75


async def test_fifty_requesters_holding_fetches_never_exceed_the_concurrency(bucket: KeyValue) -> None:
    clock, domain = Clock(), fresh_domain()
    limiters = replicas(bucket, clock)
    limits = DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=3)
    in_flight, most_in_flight, admitted = 0, 0, 0

    async def requester(index: int) -> None:
        nonlocal in_flight, most_in_flight, admitted
        for _ in range(5):
            answer = await limiters[index % 3].acquire(domain, limits)
            if isinstance(answer, Permit):
                admitted += 1
                in_flight += 1
                most_in_flight = max(most_in_flight, in_flight)
                await asyncio.sleep(0.002)  # a fetch that lasts
                await limiters[(index + 1) % 3].release(answer, FetchResult(status=200, latency_s=0.002))
                in_flight -= 1  # its slot is held until the release is written
            else:
                assert answer.limit in ("concurrent", "per_minute")
                await asyncio.sleep(0.001)

    await asyncio.gather(*(requester(index) for index in range(50)))
    assert most_in_flight == 3
    assert admitted <= 30  # the minute's burst at one instant of the test clock


async def test_a_replica_that_dies_mid_fetch_frees_its_slots_when_their_leases_expire(bucket: KeyValue) -> None:
    clock, domain = Clock(), fresh_domain()
    dead, alive = replicas(bucket, clock)[:2]
    limits = PolicyLimits(requests_per_minute=600, requests_per_hour=36_000, max_concurrent=2)
    held = [await dead.acquire(domain, limits) for _ in range(2)]
    assert all(isinstance(answer, Permit) for answer in held)
    del dead  # never releases
    clock.now += NS_PER_S
    refused = await alive.acquire(domain, limits)
    assert isinstance(refused, Refusal) and refused.limit == "concurrent"
    clock.now = T0 + 30 * NS_PER_S - 1
    assert isinstance(await alive.acquire(domain, limits), Refusal)
    clock.now = T0 + 30 * NS_PER_S
    assert isinstance(await alive.acquire(domain, limits), Permit)


async def test_the_breaker_is_shared_by_every_replica(bucket: KeyValue) -> None:
    clock, domain = Clock(), fresh_domain()
    config = msgspec.structs.replace(NO_THROTTLE, breaker=BreakerConfig(failure_threshold=3, cool_down_s=10.0))
    first, second, third = replicas(bucket, clock, config)
    limits = DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=8)
    events: list[BreakerChanged] = []
    for _ in range(3):
        permit = await first.acquire(domain, limits)
        assert isinstance(permit, Permit)
        events += await first.release(permit, FetchResult(failure="timeout", latency_s=5.0))
    assert [(event.previous, event.state, event.consecutive_failures) for event in events] == [("closed", "open", 3)]
    refused = await second.acquire(domain, limits)
    assert isinstance(refused, Refusal) and (refused.limit, refused.retry_after_s) == ("breaker", 10.0)
    clock.now += 10 * NS_PER_S
    probe = await third.acquire(domain, limits)
    assert isinstance(probe, Permit) and probe.probe
    assert [(event.previous, event.state) for event in probe.events if isinstance(event, BreakerChanged)] == [
        ("open", "half_open")
    ]
    while_probing = await second.acquire(domain, limits)
    assert isinstance(while_probing, Refusal) and while_probing.limit == "breaker"
    closed = await first.release(probe, FetchResult(status=200, latency_s=0.1))
    assert [(event.previous, event.state) for event in closed] == [("half_open", "closed")]
    assert isinstance(await second.acquire(domain, limits), Permit)


async def test_retry_after_and_crawl_delay_hold_across_replicas(bucket: KeyValue) -> None:
    clock, domain = Clock(), fresh_domain()
    first, second, _ = replicas(bucket, clock)
    limits = DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=8)
    permit = await first.acquire(domain, limits, crawl_delay_s=2.0)
    assert isinstance(permit, Permit)
    refused = await second.acquire(domain, limits, crawl_delay_s=2.0)
    assert isinstance(refused, Refusal) and (refused.limit, refused.retry_after_s) == ("crawl_delay", 2.0)
    await first.release(permit, FetchResult(status=429, latency_s=0.1, retry_after_s=120.0))
    clock.now += 2 * NS_PER_S
    waiting = await second.acquire(domain, limits, crawl_delay_s=2.0)
    assert isinstance(waiting, Refusal) and (waiting.limit, waiting.retry_after_s) == ("retry_after", 118.0)
    clock.now = T0 + 120 * NS_PER_S
    assert isinstance(await second.acquire(domain, limits, crawl_delay_s=2.0), Permit)


async def test_a_final_refusal_from_the_cache_costs_no_round_trip(bucket: KeyValue) -> None:
    clock, domain = Clock(), fresh_domain()
    limiter = replicas(bucket, clock)[0]
    limits = DomainLimits(per_minute=1, per_hour=36_000, max_concurrent=8)
    assert isinstance(await limiter.acquire(domain, limits), Permit)
    trips = limiter.round_trips
    for _ in range(20):  # fewer than the alert's threshold: raising it is a round trip
        refused = await limiter.acquire(domain, limits)
        assert isinstance(refused, Refusal) and refused.limit == "per_minute"
    assert limiter.round_trips == trips


async def test_one_limit_alert_per_window_across_replicas(bucket: KeyValue) -> None:
    clock, domain = Clock(), fresh_domain()
    config = msgspec.structs.replace(NO_THROTTLE, alarm=AlarmConfig(denials=3, window_s=60.0))
    limiters = replicas(bucket, clock, config)
    limits = DomainLimits(per_minute=1, per_hour=36_000, max_concurrent=8)
    assert isinstance(await limiters[0].acquire(domain, limits), Permit)
    alerts: list[BreakerChanged | DomainLimitAlert] = []
    for limiter in itertools.islice(itertools.cycle(limiters), 30):
        refused = await limiter.acquire(domain, limits)
        assert isinstance(refused, Refusal)
        alerts += refused.events
    assert alerts == [DomainLimitAlert(domain=domain, limit="per_minute", denials=3, window_s=60.0)]


async def test_an_unreadable_stored_state_is_started_afresh_and_overwritten(bucket: KeyValue) -> None:
    clock, domain = Clock(), fresh_domain()
    await bucket.put(traffic_key(domain), b"\x00not json")
    limiter = replicas(bucket, clock)[0]
    permit = await limiter.acquire(domain, DomainLimits(per_minute=60, per_hour=36_000, max_concurrent=1))
    assert isinstance(permit, Permit)
    entry = await bucket.get(traffic_key(domain))
    assert entry.value is not None and permit.lease_id.encode() in entry.value
    assert await limiter.release(permit, NOT_SENT) == []


@pytest.mark.parametrize("domain", ["", "a b.org", "x.org.>", "*.org", "ÿ.org", "a" * 200 + ".org"])
async def test_a_domain_that_is_not_canonical_is_bad_input_not_a_key(bucket: KeyValue, domain: str) -> None:
    limiter = replicas(bucket, Clock())[0]
    with pytest.raises(BadInput):
        await limiter.acquire(domain, DomainLimits(per_minute=1, per_hour=1, max_concurrent=1))
    assert limiter.round_trips == 0
