"""Event store figures: raw JetStream publish as the baseline, then ccn_core's OCC appends and
aggregate loads over the same server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

import msgspec
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from bench.measure import Clock, Figure, figure, relate
from ccn_core import ids
from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.eventstore import EventStore, OutgoingEvent
from ccn_core.settings import Settings
from ccn_core.topology import StreamSpec, stream_config
from ccn_proto.envelope import Actor

BENCH = StreamSpec(name="BENCH_TALLY", subjects=("ccn.tally.>",), description="benchmark aggregate")
PAYLOAD = b'{"event_id":"0190b6d2-0000-7000-8000-000000000000","type":"tally.added","data":{"n":1}}'


class Added(msgspec.Struct, tag="tally.added", frozen=True):
    n: int


class Add(msgspec.Struct, frozen=True):
    n: int


class Tally(msgspec.Struct, frozen=True):
    count: int = 0


class TallyDecider:
    """One event per command, as a job's claim or a node's consent would be."""

    aggregate = "tally"

    def initial_state(self, aggregate_id: str) -> Tally:
        return Tally()

    def decide(self, command: Add, state: Tally, now: object) -> list[Added]:
        return [Added(n=command.n)]

    def evolve(self, state: Tally, event: Added) -> Tally:
        return Tally(count=state.count + 1)


class PairDecider(TallyDecider):
    """Two events per command: a decision appended as a JetStream atomic batch. nats-server
    stages each batch of a file-backed stream in a file store of its own (ADR 0027), so this
    row shows what a hot path pays for deciding two events instead of one."""

    def decide(self, command: Add, state: Tally, now: object) -> list[Added]:
        return [Added(n=command.n), Added(n=command.n)]


META = EventMeta(correlation_id="bench", actor=Actor(kind="service", id="bench"))


async def fresh_bench_stream(nc: NATS, settings: Settings, spec: StreamSpec = BENCH) -> None:
    """`spec`'s stream, empty: an earlier run's is deleted first."""
    js = nc.jetstream()
    with contextlib.suppress(NotFoundError):  # absent on the first run
        await js.delete_stream(spec.name)
    await js.add_stream(stream_config(spec, settings))


async def raw_sync_publish(nc: NATS, n: int) -> Figure:
    js = nc.jetstream()
    latencies = []
    with Clock() as clock:
        for i in range(n):
            start = time.perf_counter()
            await js.publish(f"ccn.tally.raw{i % 1000}.added", PAYLOAD)
            latencies.append(time.perf_counter() - start)
    return figure("raw js.publish, sequential", "baseline: raw JetStream", n, clock.seconds, latencies)


async def raw_async_publish(nc: NATS, n: int) -> Figure:
    js = nc.jetstream(publish_async_max_pending=1024)
    latencies: list[float] = []
    futures = []
    with Clock() as clock:
        for i in range(n):
            start = time.perf_counter()
            future = await js.publish_async(f"ccn.tally.raw{i % 1000}.added", PAYLOAD)
            future.add_done_callback(lambda _, s=start: latencies.append(time.perf_counter() - s))
            futures.append(future)
        await asyncio.gather(*futures)
    return figure(
        "raw js.publish_async, 1024 in flight",
        "baseline: raw JetStream",
        n,
        clock.seconds,
        latencies,
        notes="no OCC, no envelope: the ceiling for appends from one Python process",
    )


async def _occ_run(
    repo: AggregateRepository, aggregates: list[str], n: int, concurrency: int
) -> tuple[float, list[float]]:  # type: ignore[type-arg]
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            start = time.perf_counter()
            await repo.execute(aggregates[i % len(aggregates)], Add(n=i), META)
            latencies.append(time.perf_counter() - start)

    with Clock() as clock:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return clock.seconds, latencies


async def occ_appends(
    nc: NATS, settings: Settings, baseline_async: Figure, baseline_sync: Figure, n_seq: int, n_conc: int
) -> list[Figure]:
    await fresh_bench_stream(nc, settings)
    store = EventStore(nc, timeout=30)
    await store.start()
    figures = []
    single = [ids.new_public_id()]
    distinct = [ids.new_public_id() for _ in range(1000)]
    one, two = TallyDecider(), PairDecider()
    cases = [
        ("OCC append, 1 aggregate, sequential", single, n_seq, 1, baseline_sync, None, one),
        ("OCC append, 1 aggregate, 32 concurrent", single, n_seq, 32, baseline_sync, None, one),
        ("OCC append, 1,000 aggregates, sequential", distinct, n_seq, 1, baseline_sync, None, one),
        ("OCC append, 1,000 aggregates, 512 concurrent", distinct, n_conc, 512, baseline_async, 0.5, one),
        # a tenth of the count: an atomic batch is two orders of magnitude slower
        (
            "OCC decision of 2 events (atomic batch), 1,000 aggregates, 512 concurrent",
            distinct,
            n_conc // 10,
            512,
            baseline_async,
            None,
            two,
        ),
    ]
    for name, aggregates, n, concurrency, baseline, target, decider in cases:
        repo = AggregateRepository(store, decider, Added, stream=BENCH.name, deadline_s=60)  # type: ignore[arg-type]
        seconds, latencies = await _occ_run(repo, aggregates, n, concurrency)
        fig = figure(name, "ccn_core: OCC append", n, seconds, latencies, notes=f"conflicts retried: {repo.conflicts}")
        figures.append(relate(fig, baseline, target))
    await store.close()
    return figures


async def aggregate_loads(
    nc: NATS, settings: Settings, events_per_aggregate: int = 20, aggregates: int = 500
) -> list[Figure]:
    await fresh_bench_stream(nc, settings)
    store = EventStore(nc, timeout=30)
    await store.start()
    writer = AggregateRepository(store, TallyDecider(), Added, stream=BENCH.name)  # type: ignore[arg-type]
    ids_ = [ids.new_public_id() for _ in range(aggregates)]
    sem = asyncio.Semaphore(256)

    async def fill(aggregate: str) -> None:
        async with sem:
            for i in range(events_per_aggregate):
                await writer.execute(aggregate, Add(n=i), META)

    await asyncio.gather(*(fill(a) for a in ids_))
    figures = []
    for name, warm, fresh in (
        (f"load {events_per_aggregate}-event aggregate, cold (no cache)", False, True),
        ("load, cached + freshness check (1 round trip)", True, True),
        ("load, cached, trusted (writer path)", True, False),
    ):
        repo = AggregateRepository(store, TallyDecider(), Added, stream=BENCH.name)  # type: ignore[arg-type]
        if warm:
            for aggregate in ids_:
                await repo.load(aggregate)
        latencies = []
        with Clock() as clock:
            for aggregate in ids_:
                start = time.perf_counter()
                loaded = await repo.load(aggregate, fresh=fresh)
                latencies.append(time.perf_counter() - start)
                assert loaded.state.count == events_per_aggregate  # type: ignore[attr-defined]
        figures.append(figure(name, "ccn_core: aggregate load", aggregates, clock.seconds, latencies))
    await store.close()
    return figures


async def history_reads(nc: NATS, settings: Settings, aggregates: int = 30_000, sample: int = 300) -> list[Figure]:
    """A job-shaped history (created with a 4 kB page, claimed, completed: three subjects),
    read cold from a stream holding `aggregates` of them, as a scheduler replica that did not
    handle the job's last step reads it (ADR 0010): along the OCC chain, and by the subject-filter
    scan it replaced, whose cost grows with the stream."""
    await fresh_bench_stream(nc, settings)
    store = EventStore(nc, timeout=30)
    await store.start()
    page = b'{"html":"' + b"x" * 4000 + b'"}'
    aggregate_ids = [ids.new_public_id() for _ in range(aggregates)]
    last: dict[str, int] = {}

    async def append(aggregate: str, name: str, data: bytes) -> None:
        event = OutgoingEvent(subject=f"ccn.tally.{aggregate}.{name}", data=data, headers={})
        scope = f"ccn.tally.{aggregate}.*"
        last[aggregate] = (await store.append(event, expected_last_seq=last.get(aggregate, 0), occ_scope=scope)).seq

    # each step of every job in turn, so a job's events lie far apart, as in a live stream
    for name, data in (("created", page), ("claimed", b"{}"), ("completed", b"{}")):
        for start in range(0, aggregates, 500):
            await asyncio.gather(*(append(a, name, data) for a in aggregate_ids[start : start + 500]))
    chosen = aggregate_ids[:: max(1, aggregates // sample)][:sample]
    figures = []
    for name, read in (
        (f"read a 3-event job history, cold, {3 * aggregates:,} events stored", store.read),
        ("  the same by subject-filter scan (before ADR 0010)", functools.partial(store._scan, from_seq=1)),
    ):
        latencies = []
        with Clock() as clock:
            for aggregate in chosen:
                start = time.perf_counter()
                history = await read(BENCH.name, f"ccn.tally.{aggregate}.*")
                latencies.append(time.perf_counter() - start)
                assert len(history) == 3
        figures.append(figure(name, "ccn_core: aggregate load", len(chosen), clock.seconds, latencies))
    await store.close()
    return figures
