"""Bench group `merge`, through the service: final normalize_funders results appended to
CCN_JOBS on a NATS of its own, merged by the merge service (its reactor, its single writer, OCC
appends to CCN_DATASETS) until every record is in: merge throughput in fields per second, with
proposals appended in groups (as the service runs) and one at a time (the A/B that decided
for groups); then the time to publish a version of every record through the `publish_version`
command (100,000 records; CCN_BENCH_QUICK: 5,000)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import nats
import psutil

from bench.measure import Figure, figure
from ccn_cli.stack.ports import free_port
from ccn_core import ids
from ccn_core.aggregate import outgoing_event
from ccn_core.commands import CommandClient
from ccn_core.eventstore import EventStore, OutgoingEvent
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import apply_topology
from ccn_merge import writer as writer_module
from ccn_merge.app import start_merge
from ccn_merge.dataset import DatasetDecider
from ccn_merge.merge_service import MergeService
from ccn_merge.writer import DatasetWriter
from ccn_proto import merge as api
from ccn_proto.datasets import PublishVersion
from ccn_proto.envelope import Actor
from ccn_proto.jobs import JobCompleted, JobCreated
from tests.support.servers import start_nats

GROUP = "merge"
RECORDS_PER_JOB = 500  # normalize_funders' MAX_RECORDS: a job's batch
FIELDS_PER_RECORD = 7  # name, EIN, website, city, region, country, categories
SCHEDULER = Actor(kind="service", id="scheduler")


_SYLLABLES = ("ka", "lo", "mi", "ren", "tar", "vel", "sun", "dor", "bel", "fin")


def _word(index: int, salt: int) -> str:
    """A made-up word of its own for each index: names that share no word, so that stitching
    finds no candidate to weigh and the figure is the service's, not the matcher's (the matcher's
    cost, 40 candidates a record, is the decider bench's `merge stitched records`)."""
    digits = f"{index * 7 + salt:07d}"
    return "".join(_SYLLABLES[int(d)] for d in digits).capitalize()


def _funder(index: int) -> dict[str, Any]:
    """A normalised funder as normalize_funders returns it (built directly: the bench measures
    the merge, not the normalisation)."""
    name = f"{_word(index, 1)} {_word(index, 3)}"  # two words: no acronym key shared by all
    return {
        "source": "irs-bmf",
        "source_record_id": f"bmf-{index}",
        "name": name,
        "name_key": name.lower(),
        "aliases": [],
        "alias_keys": [],
        "ein": f"{10 + index % 89:02d}-{index:07d}",
        "address": {"lines": [], "city": "Springfield", "region": "US-IL", "country": "US"},
        "website": f"https://{_word(index, 5).lower()}.org/",
        "categories": ["education"],
        "ntee_codes": [],
        "issues": [],
    }


def _result(job: int, per_job: int) -> dict[str, Any]:
    start = job * per_job
    records = [_funder(index) for index in range(start, start + per_job)]
    return {"version": "1", "vocabulary_version": "1", "records": records, "records_with_issues": 0}


def _outgoing(job_id: str, event: msgspec.Struct) -> OutgoingEvent:
    return outgoing_event("job", job_id, event, correlation_id=job_id, actor=SCHEDULER)


async def _append_completed_jobs(store: EventStore, jobs: int, per_job: int) -> None:
    for job in range(jobs):
        job_id = f"bench-{job:06d}"
        result = _result(job, per_job)
        checksum = hashlib.sha256(msgspec.json.encode(result)).hexdigest()
        await store.append(_outgoing(job_id, JobCreated(job_type="normalize_funders", payload={"records": []})))
        await store.append(
            _outgoing(job_id, JobCompleted(node_id="node-1", attempt=1, result=result, checksum=checksum))
        )


@contextmanager
def _group_size(commands: int) -> Iterator[None]:
    kept = writer_module.MAX_GROUP_COMMANDS
    writer_module.MAX_GROUP_COMMANDS = commands
    try:
        yield
    finally:
        writer_module.MAX_GROUP_COMMANDS = kept


async def _merged(service: MergeService, records: int, timeout_s: float = 600.0) -> None:
    writer = service.writer(api.DEFAULT_DATASET)
    async with asyncio.timeout(timeout_s):
        while True:
            if len(writer.state.records) >= records:
                return
            await asyncio.sleep(0.02)


class _Run(msgspec.Struct):
    merge_s: float
    service: MergeService
    publish_s: float = 0.0
    fold_s: float = 0.0
    fold_mib: float = 0.0


async def _run(settings: Settings, jobs: int, per_job: int, *, group: int, publish: bool) -> _Run:
    """Append `jobs` completed jobs, then start the merge service and time it to merge them all
    (and, with `publish`, to publish them as a version, and a fresh writer to fold them)."""
    async with open_runtime("bench-jobs", settings, needs_postgres=False) as producer:
        await _append_completed_jobs(producer.store, jobs, per_job)
    with _group_size(group):
        async with open_runtime("merge", settings, needs_postgres=False) as runtime:
            started = time.perf_counter()
            service = await start_merge(runtime, health=False)
            await _merged(service, jobs * per_job)
            run = _Run(merge_s=time.perf_counter() - started, service=service)
            if publish:
                run.publish_s = await _publish(runtime.nc)
                gc.collect()
                before = psutil.Process().memory_info().rss
                fresh = DatasetWriter(runtime.store, DatasetDecider(), api.DEFAULT_DATASET)
                started = time.perf_counter()
                await fresh.load()  # what a restarted service does first
                run.fold_s = time.perf_counter() - started
                run.fold_mib = (psutil.Process().memory_info().rss - before) / 2**20
    return run


async def _publish(nc: Any) -> float:
    client = CommandClient(nc, timeout=300.0)
    started = time.perf_counter()
    await client.call(
        api.SERVICE,
        "publish_version",
        PublishVersion(dataset=api.DEFAULT_DATASET, by="bench"),
        api.VersionView,
        correlation_id=ids.new_correlation_id(),
    )
    return time.perf_counter() - started


async def _scenario(
    workdir: Path, jobs: int, per_job: int, group: int, label: str, *, quick: bool, publish: bool
) -> list[Figure]:
    records = jobs * per_job
    server = start_nats(workdir / f"nats-merge-{per_job}-{group}", free_port())
    try:
        settings = Settings(nats_url=server.url, home=workdir / f"merge-{per_job}-{group}")
        client = await nats.connect(server.url)
        try:
            await apply_topology(client.jetstream(), settings)
        finally:
            await client.drain()
        run = await _run(settings, jobs, per_job, group=group, publish=publish)
    finally:
        server.stop()
    writer = run.service.writer(api.DEFAULT_DATASET)
    scale = " (CCN_BENCH_QUICK)" if quick else ""
    figures = [
        figure(
            f"merge through the service, {per_job} records a job, {label} (fields/s)",
            GROUP,
            records * FIELDS_PER_RECORD,
            run.merge_s,
            notes=(
                f"{jobs:,} completed normalize_funders jobs of {per_job} funders, {FIELDS_PER_RECORD} fields each, "
                f"from the reactor's pull to the writer's fold; {writer.appends:,} appends for "
                f"{writer.commands:,} proposals{scale}"
            ),
        )
    ]
    if publish:
        figures.append(
            figure(
                f"publish a version of {records:,} records through the service",
                GROUP,
                records,
                run.publish_s,
                notes=f"records/s; the publish_version command: every record's canonical bytes hashed{scale}",
            )
        )
        figures.append(
            figure(
                f"fold a dataset of {records:,} records from the stream (a restart)",
                GROUP,
                records,
                run.fold_s,
                notes=f"records/s; the process grew by {run.fold_mib:,.0f} MiB holding the fold{scale}",
            )
        )
    return figures


async def _figures(workdir: Path, *, quick: bool) -> list[Figure]:
    """A/B of appending in groups against one append a proposal, on big results (a job's 500
    funders: the decider's work dominates) and small ones (5 funders: the appends would); the
    big run with grouping publishes the whole dataset (100,000 records; quick: 5,000)."""
    big_jobs = 10 if quick else 200
    small_jobs = 200 if quick else 2_000
    grouped = writer_module.MAX_GROUP_COMMANDS
    figures: list[Figure] = []
    for jobs, per_job in ((big_jobs, RECORDS_PER_JOB), (small_jobs, 5)):
        for group, label in ((grouped, "in groups"), (1, "one append a proposal")):
            publish = per_job == RECORDS_PER_JOB and group == grouped
            figures += await _scenario(workdir, jobs, per_job, group, label, quick=quick, publish=publish)
    return figures


def merge_service_figures(workdir: Path, *, quick: bool) -> list[Figure]:
    return asyncio.run(_figures(workdir, quick=quick))
