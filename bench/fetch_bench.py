"""The fetch proxy's politeness figures (issue #16): the cost of one pure decision, and how
exactly three proxy replicas sharing a domain's limits in NATS KV hold them against 50
requesters at once.

Accuracy: three DomainLimiters, each on a connection of its own (as three fetch-proxy replicas
are), serve 50 requesters asking for one domain as fast as they are refused (each waits the
refusal's retry_after, capped, as a node would); an admitted fetch holds its permit for a
simulated fetch time, then releases it. The allowed count is compared with what the limit
allows over the run (burst + rate x seconds of the GCRA that ccn_core.politeness derives from
requests per minute), the starts are checked against the limit in every sliding minute, and
the most fetches in flight against max_concurrent. The target is the issue's: the domain limit
is never exceeded. AutoThrottle is off here (it would space fetches by the simulated latency,
which measures the throttle, not the limit); the pure decision includes it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import nats

from bench.governance_bench import micros
from bench.measure import Figure, figure
from ccn_cli.stack.ports import free_port
from ccn_core.autothrottle import ThrottleConfig
from ccn_core.domain_limiter import DomainLimiter, Permit
from ccn_core.politeness import DomainLimits, DomainTraffic, FetchResult, PolitenessConfig, admit, complete, window_rule
from ccn_core.settings import Settings
from ccn_core.topology import RATE_LIMIT_STATE, ensure_streams
from tests.support.servers import start_nats

GROUP = "fetch"
REQUESTERS = 50
REPLICAS = 3
NO_THROTTLE = PolitenessConfig(throttle=ThrottleConfig(start_delay_s=0.0, max_delay_s=0.0))
MAX_WAIT_S = 0.05  # a requester refused waits retry_after, at most this (so the limit is pressed hard)


def pure_decisions(count: int) -> Figure:
    """admit + complete on one domain's state, as a replica does per fetch (no KV)."""
    limits = DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=8)
    config = PolitenessConfig()
    traffic = DomainTraffic()
    latencies: list[float] = []
    now = time.time_ns()
    started = time.perf_counter()
    for i in range(count):
        now += 200_000_000  # 5 fetches a second: each is admitted
        before = time.perf_counter()
        admission = admit(traffic, "bench.example.org", limits, 0.1, now, f"l{i}", config)
        traffic = admission.traffic
        if admission.lease is not None:
            result = FetchResult(status=200, latency_s=0.05)
            traffic, _ = complete(traffic, "bench.example.org", admission.lease.id, result, now, config)
        latencies.append(time.perf_counter() - before)
    return figure(
        "politeness decision, pure (admit + complete)",
        GROUP,
        count,
        time.perf_counter() - started,
        latencies,
        notes=micros(latencies),
    )


def most_in_any_minute(starts: list[float]) -> int:
    ordered = sorted(starts)
    most, first = 0, 0
    for last, start in enumerate(ordered):
        while start - ordered[first] >= 60.0:
            first += 1
        most = max(most, last - first + 1)
    return most


async def limit_accuracy(nats_url: str, limits: DomainLimits, fetch_s: float, seconds: float, label: str) -> Figure:
    clients = [await nats.connect(nats_url) for _ in range(REPLICAS)]
    try:
        buckets = [await client.jetstream().key_value(RATE_LIMIT_STATE.bucket) for client in clients]
        limiters = [DomainLimiter(bucket, config=NO_THROTTLE) for bucket in buckets]
        domain = f"bench-{uuid.uuid4().hex[:10]}.example.org"
        starts: list[float] = []
        refusals: dict[str, int] = {}
        in_flight, most_in_flight = 0, 0
        started = time.perf_counter()

        async def requester(index: int) -> None:
            nonlocal in_flight, most_in_flight
            limiter = limiters[index % REPLICAS]
            while time.perf_counter() - started < seconds:
                answer = await limiter.acquire(domain, limits)
                if isinstance(answer, Permit):
                    starts.append(time.perf_counter() - started)
                    in_flight += 1
                    most_in_flight = max(most_in_flight, in_flight)
                    await asyncio.sleep(fetch_s)
                    await limiters[(index + 1) % REPLICAS].release(answer, FetchResult(status=200, latency_s=fetch_s))
                    in_flight -= 1
                else:
                    refusals[answer.limit] = refusals.get(answer.limit, 0) + 1
                    await asyncio.sleep(min(answer.retry_after_s, MAX_WAIT_S))

        await asyncio.gather(*(requester(index) for index in range(REQUESTERS)))
        elapsed = time.perf_counter() - started
        round_trips = sum(limiter.round_trips for limiter in limiters)
    finally:
        for client in clients:
            await client.close()
    minute = window_rule(limits.per_minute, 60.0, 20)
    allowed = len(starts)
    bound = minute.burst + minute.rate * elapsed / 60.0
    by_concurrency = limits.max_concurrent * elapsed / fetch_s
    limit = min(bound, by_concurrency)
    asked = allowed + sum(refusals.values())
    in_minute = most_in_any_minute(starts)
    refused = ", ".join(f"{kind} {count}" for kind, count in sorted(refusals.items()))
    result = figure(
        f"domain limit, {REPLICAS} replicas x {REQUESTERS} requesters ({label})",
        GROUP,
        asked,
        elapsed,
        notes=f"allowed {allowed} of {asked} asked (refused: {refused or 'none'}); the limits allow {limit:.0f} "
        f"({limits.per_minute}/min as burst {minute.burst} + {minute.rate}/min, {limits.max_concurrent} at once x "
        f"{fetch_s * 1000:.0f} ms fetches); most in any 60 s {in_minute}, most in flight {most_in_flight}; "
        f"{round_trips} KV round trips",
    )
    result.target = "allowed <= limit; never more in flight than max_concurrent"
    result.meets_target = (
        allowed <= bound + 1 and in_minute <= limits.per_minute and most_in_flight <= limits.max_concurrent
    )
    result.ratio_to_baseline = round(allowed / limit, 4) if limit else None
    result.baseline = "what the limits allow"
    return result


async def _figures(nats_url: str, *, quick: bool) -> list[Figure]:
    client = await nats.connect(nats_url)
    try:
        await ensure_streams(client.jetstream(), Settings(nats_url=nats_url))
    finally:
        await client.close()
    seconds = 3.0 if quick else 15.0
    return [
        pure_decisions(2_000 if quick else 50_000),
        await limit_accuracy(
            nats_url, DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=8), 0.005, seconds, "per minute"
        ),
        await limit_accuracy(
            nats_url, DomainLimits(per_minute=600, per_hour=36_000, max_concurrent=2), 0.5, seconds, "concurrency"
        ),
    ]


def fetch_figures(workdir: Path, *, quick: bool) -> list[Figure]:
    server = start_nats(workdir / "nats-fetch", free_port())
    try:
        return asyncio.run(_figures(server.url, quick=quick))
    finally:
        server.stop()
