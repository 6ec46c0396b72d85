"""The merge service against real NATS (with the real scheduler and validation service where jobs
are re-queued or run their whole path): a completed normalize_funders job becomes a merged record
with its provenance, a redelivered or re-appended result proposes nothing twice, the published
versions fold byte for byte the same from the stream, a retraction restores the previous values
and re-queues the node's jobs once, and a merge service stopped mid-run loses nothing.

Most tests append `job.completed` to CCN_JOBS directly (as the scheduler does once the validation
service settles a result), each after its `job.created`, where the merge service reads the job's
type; one runs the whole path through the scheduler and the validation service."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ccn_cli.stack.ports import free_port
from ccn_cli.stack.supervisor import service_env
from ccn_core import ids, subjects
from ccn_core.aggregate import outgoing_event
from ccn_core.commands import CommandClient
from ccn_core.errors import NotFound
from ccn_core.eventstore import EventStore
from ccn_core.service import Runtime, open_runtime
from ccn_core.settings import Settings
from ccn_jobs.normalize_funders import NormalizeFundersPayload, RawFunder, normalize_funders
from ccn_merge.app import start_merge
from ccn_merge.dataset import DatasetDecider
from ccn_merge.merge_service import MergeService
from ccn_merge.published import canonical_bytes
from ccn_proto import merge as api
from ccn_proto.canonical import result_checksum
from ccn_proto.datasets import STREAM, DatasetEvent, PublishVersion, VersionPublished
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobCompleted, JobCreated
from ccn_proto.scheduler import (
    ClaimJobs,
    ClaimJobsReply,
    CreateJob,
    CreateJobReply,
    SubmitResult,
    SubmitResultReply,
)
from ccn_scheduler.app import start_scheduler
from tests.conftest import make_settings
from tests.integration.test_scheduler import FAST, Scheduler, answering, eventually
from tests.support.validation import validation_service

SCHEDULER = Actor(kind="service", id="scheduler")
_decode_dataset_event = msgspec.json.Decoder(Envelope[DatasetEvent]).decode


def funder(name: str, *, ein: str | None = None, website: str | None = None, source: str = "irs-bmf") -> RawFunder:
    return RawFunder(
        source=source,
        source_record_id=hashlib.sha256(f"{source}{name}".encode()).hexdigest()[:16],
        name=name,
        ein=ein,
        website=website,
        city="Springfield",
        region="IL",
        country="US",
    )


def made_up_name(index: int) -> str:
    """Two words no other index shares: a record that stitching has no candidate for."""
    digest = hashlib.sha256(str(index).encode()).hexdigest()
    first, second = ("".join(chr(97 + int(c, 16)) for c in part) for part in (digest[:8], digest[8:16]))
    return f"{first.capitalize()} {second.capitalize()}"


def funders_payload(*records: RawFunder) -> dict[str, Any]:
    return msgspec.to_builtins(NormalizeFundersPayload(records=records))  # type: ignore[no-any-return]


async def append_job_event(store: EventStore, job_id: str, event: msgspec.Struct, correlation_id: str) -> None:
    await store.append(outgoing_event("job", job_id, event, correlation_id=correlation_id, actor=SCHEDULER))


def completion(payload: dict[str, Any], node_id: str) -> JobCompleted:
    """The job's final answer: the normalize_funders result a node computes, with its checksum."""
    result = msgspec.to_builtins(normalize_funders(msgspec.convert(payload, NormalizeFundersPayload)))
    return JobCompleted(node_id=node_id, attempt=1, result=result, checksum=result_checksum(result))


async def completed_funders_job(store: EventStore, payload: dict[str, Any], node_id: str) -> str:
    """A normalize_funders job created and completed, as the scheduler records both."""
    return await completed_job(store, payload, completion(payload, node_id))


async def completed_job(store: EventStore, payload: dict[str, Any], completed: JobCompleted) -> str:
    job_id = ids.new_public_id()
    correlation = ids.new_correlation_id()
    await append_job_event(store, job_id, JobCreated(job_type="normalize_funders", payload=payload), correlation)
    await append_job_event(store, job_id, completed, correlation)
    return job_id


async def dataset_events(store: EventStore, name: str = api.DEFAULT_DATASET) -> list[Envelope[DatasetEvent]]:
    scope = subjects.aggregate_filter("dataset", name)
    return [_decode_dataset_event(e.data) for batch in [await store.read(STREAM, scope)] for e in batch]


async def call(client: CommandClient, name: str, request: msgspec.Struct, reply: type[Any]) -> Any:
    return await client.call(api.SERVICE, name, request, reply, correlation_id=ids.new_correlation_id())


@pytest.fixture
def own_settings(isolated_nats: str, fresh_database: str, tmp_path: Path) -> Settings:
    return make_settings(isolated_nats, fresh_database, tmp_path)


@contextlib.asynccontextmanager
async def merge_service(settings: Settings) -> AsyncIterator[tuple[Runtime, MergeService]]:
    async with open_runtime("merge", settings, needs_postgres=False) as runtime:
        yield runtime, await start_merge(runtime, health=False)


@pytest.fixture
async def merging(own_settings: Settings) -> AsyncIterator[tuple[Runtime, MergeService, CommandClient]]:
    async with merge_service(own_settings) as (runtime, service):
        yield runtime, service, CommandClient(runtime.nc, timeout=10.0)


async def merged_records(service: MergeService) -> dict[str, dict[str, Any]]:
    writer = service.writer(api.DEFAULT_DATASET)
    return await writer.read(lambda state: {rid: dict(r.values()) for rid, r in state.records.items()})


async def test_a_completed_normalize_funders_job_becomes_a_merged_record_with_provenance(
    merging: tuple[Runtime, MergeService, CommandClient],
) -> None:
    runtime, service, client = merging
    payload = funders_payload(funder("ACME COMMUNITY FOUNDATION INC", ein="12-3456789"))
    job_id = await completed_funders_job(runtime.store, payload, "node-a")

    records = await eventually(lambda: merged_records(service))
    [(record_id, values)] = records.items()
    assert values["name"] == "Acme Community Foundation Inc"
    assert values["ein"] == "12-3456789"
    assert values["region"] and values["country"] == "US"

    explained: api.FieldExplanation = await call(
        client, "explain_field", api.ExplainField(record_id=record_id, field="ein"), api.FieldExplanation
    )
    [winner] = explained.winners
    result = completion(payload, "node-a")
    assert (winner.source, winner.job_id, winner.node_id, winner.result_checksum) == (
        "irs-bmf",
        job_id,
        "node-a",
        result.checksum,
    )
    assert explained.rule == "prefer_source" and job_id in explained.text
    record: api.RecordView = await call(client, "get_record", api.GetRecord(record_id=record_id), api.RecordView)
    assert record.fields["name"].jobs == [job_id] and record.fields["name"].sources == ["irs-bmf"]

    # the same final result again (a redelivery, or re-appended outside the duplicate window)
    await append_job_event(runtime.store, job_id, result, ids.new_correlation_id())
    other = await completed_funders_job(runtime.store, funders_payload(funder("Unrelated Trust")), "node-b")
    await eventually(lambda: _has_records(service, 2))
    merges = [e for e in await dataset_events(runtime.store) if e.type == "dataset.merge_applied"]
    assert [e.data.provenance.job_id for e in merges] == [job_id, other]  # type: ignore[union-attr]
    assert merges[0].causation_id is not None and merges[0].actor == Actor(kind="service", id="merge")


async def _has_records(service: MergeService, count: int) -> bool:
    return len(await merged_records(service)) >= count


async def test_replaying_the_stream_gives_byte_identical_published_versions(own_settings: Settings) -> None:
    async with merge_service(own_settings) as (runtime, service):
        client = CommandClient(runtime.nc, timeout=10.0)
        for index, name in enumerate(("Alpha Fund", "Beta Trust", "Gamma Foundation")):
            payload = funders_payload(funder(name, ein=f"12-345678{index}", website=f"https://{index}.example/"))
            await completed_funders_job(runtime.store, payload, f"node-{index}")
        await eventually(lambda: _has_records(service, 3))
        first: api.VersionView = await call(
            client, "publish_version", PublishVersion(dataset="grants", by="tester"), api.VersionView
        )
        await completed_funders_job(runtime.store, funders_payload(funder("Delta Fund", ein="98-7654321")), "node-9")
        await eventually(lambda: _has_records(service, 4))
        second: api.VersionView = await call(
            client, "publish_version", PublishVersion(dataset="grants", by="tester"), api.VersionView
        )
        live = canonical_bytes(service.decider.schema, service.writer("grants").state)
        events = await dataset_events(runtime.store)
        # the diff from the versions kept as published equals the one folded from the history
        diff = api.DiffVersions(from_version=1, to_version=2, table=True)
        kept: api.DiffReply = await call(client, "diff_versions", diff, api.DiffReply)
        service.writer("grants").snapshots.clear()
        folded: api.DiffReply = await call(client, "diff_versions", diff, api.DiffReply)
        assert kept == folded
        [added] = kept.added
        assert {f.field: f.after for f in added.fields}["name"] == "Delta Fund" and "Delta Fund" in (kept.table or "")

    assert (first.version, second.version) == (1, 2)
    replays = []
    for _ in range(2):
        decider = DatasetDecider()
        state = decider.initial_state("grants")
        hashes = []
        for envelope in events:
            decider.evolve(state, envelope.data)
            if isinstance(envelope.data, VersionPublished):
                hashes.append(
                    (envelope.data.content_hash, hashlib.sha256(canonical_bytes(decider.schema, state)).hexdigest())
                )
        replays.append((canonical_bytes(decider.schema, state), hashes))
    assert replays[0] == replays[1]
    assert replays[0][0] == live
    assert [stored for stored, _ in replays[0][1]] == [folded for _, folded in replays[0][1]]
    assert [stored for stored, _ in replays[0][1]] == [first.content_hash, second.content_hash]

    # a new merge service folds the same stream to the same state
    async with merge_service(own_settings) as (_, restarted):
        assert canonical_bytes(restarted.decider.schema, restarted.writer("grants").state) == live


async def test_a_merge_service_killed_mid_run_loses_nothing_and_merges_nothing_twice(
    own_settings: Settings, tmp_path: Path
) -> None:
    """`python -m ccn_merge` SIGKILLed once it has merged something, with results still coming: a
    fresh service merges every result, each once (a group appended but never acknowledged is
    not proposed again)."""
    payloads = [
        funders_payload(*(funder(made_up_name(job * 100 + n), ein=f"{20 + job}-{n:07d}") for n in range(10)))
        for job in range(16)
    ]
    completions = [completion(payload, "node-a") for payload in payloads]
    settings = msgspec.structs.replace(own_settings, merge_health_port=free_port())
    jobs: list[str] = []
    with (tmp_path / "merge.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ccn_merge"], env=service_env(settings), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            async with open_runtime("producer", settings, needs_postgres=False) as runtime:
                for payload, completed in zip(payloads[:8], completions, strict=False):
                    jobs.append(await completed_job(runtime.store, payload, completed))

                async def some_merged() -> bool:
                    return any(e.type == "dataset.merge_applied" for e in await dataset_events(runtime.store))

                await eventually(some_merged, timeout=30)
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
                for payload, completed in zip(payloads[8:], completions[8:], strict=True):
                    jobs.append(await completed_job(runtime.store, payload, completed))
        finally:
            if process.poll() is None:
                process.kill()
    async with merge_service(settings) as (runtime, service):
        await eventually(lambda: _has_records(service, 16 * 10), timeout=30)
        merges = [e for e in await dataset_events(runtime.store) if e.type == "dataset.merge_applied"]
    merged_jobs = [e.data.provenance.job_id for e in merges]  # type: ignore[union-attr]
    assert sorted(merged_jobs) == sorted(jobs)


async def test_retracting_a_node_restores_the_previous_values_and_requeues_its_jobs_once(
    own_settings: Settings,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        scheduler = await stack.enter_async_context(open_runtime("scheduler", own_settings))
        await start_scheduler(scheduler, health=False, options=FAST)
        await answering(own_settings.effective_nats_url)
        runtime, service = await stack.enter_async_context(merge_service(own_settings))
        client = CommandClient(runtime.nc, timeout=15.0)

        async def scheduled_and_completed(payload: dict[str, Any], node_id: str) -> str:
            created: CreateJobReply = await client.call(
                "scheduler",
                "create_job",
                CreateJob(job_type="normalize_funders", payload=payload),
                CreateJobReply,
                correlation_id=ids.new_correlation_id(),
            )
            await append_job_event(runtime.store, created.job_id, completion(payload, node_id), "c")
            return created.job_id

        honest = funder("Harbor Light Foundation", ein="31-1234567", website="https://harborlight.example/")
        await scheduled_and_completed(funders_payload(honest), "node-honest")
        await eventually(lambda: _has_records(service, 1))
        [before] = (await merged_records(service)).values()
        forged = funder("Harbor Light Foundation", ein="31-1234567", website="https://harbor-light.forged.example/")
        forged_job = await scheduled_and_completed(funders_payload(forged), "node-bad")

        async def website() -> Any:
            [values] = (await merged_records(service)).values()
            return values["website"] if "forged" in values["website"] else None

        assert "harbor-light.forged.example" in await eventually(website)
        since = datetime.now(UTC) - timedelta(hours=1)
        retract = api.RetractNodeEverywhere(node_id="node-bad", since=since, by="tester", reason="forged results")
        reply: api.RetractionReply = await call(client, "retract_node", retract, api.RetractionReply)
        [values] = (await merged_records(service)).values()
        assert values == before
        [grants] = reply.datasets
        assert grants.dataset == "grants" and grants.version == 1 and grants.fields_changed >= 1
        [requeued] = reply.requeued
        assert requeued.job_id == forged_job and requeued.created and requeued.new_job_id != forged_job

        again: api.RetractionReply = await call(client, "retract_node", retract, api.RetractionReply)
        assert again.datasets[0].version is None
        assert [(r.job_id, r.new_job_id, r.created) for r in again.requeued] == [
            (forged_job, requeued.new_job_id, False)
        ]
        versions: api.VersionList = await call(client, "list_versions", api.ListVersions(), api.VersionList)
        assert [v.version for v in versions.versions] == [1] and "node-bad" in versions.versions[0].note
        with pytest.raises(NotFound):
            await call(client, "list_versions", api.ListVersions(dataset="nothing-here"), api.VersionList)


async def test_a_result_judged_by_the_validation_service_merges_once_its_job_completes(own_settings: Settings) -> None:
    """The whole path: scheduled, claimed, submitted, validated, completed, merged."""
    async with contextlib.AsyncExitStack() as stack:
        scheduler = await stack.enter_async_context(open_runtime("scheduler", own_settings))
        await start_scheduler(scheduler, health=False, options=FAST)
        await answering(own_settings.effective_nats_url)
        await stack.enter_async_context(validation_service(own_settings))
        runtime, service = await stack.enter_async_context(merge_service(own_settings))
        api = Scheduler(runtime.nc)
        payload = funders_payload(funder("Northwind Arts Council", ein="44-5556667", source="grants-gov"))
        correlation = ids.new_correlation_id()
        created = await api.call(CreateJob(job_type="normalize_funders", payload=payload), CreateJobReply, correlation)
        claimed = await api.call(
            ClaimJobs(node_id="node-v", job_types=["normalize_funders"], concurrency=1), ClaimJobsReply
        )
        [offer] = claimed.offers
        result = completion(offer.payload, "node-v")
        # the node answers on the job's thread, as the offer tells it
        submit = SubmitResult(node_id="node-v", job_id=offer.job_id, result=result.result, checksum=result.checksum)
        await api.call(submit, SubmitResultReply, offer.correlation_id)
        await eventually(lambda: _has_records(service, 1))
        [merged] = [e for e in await dataset_events(runtime.store) if e.type == "dataset.merge_applied"]
    assert merged.data.provenance.job_id == created.job_id  # type: ignore[union-attr]
    assert merged.data.provenance.node_id == "node-v"  # type: ignore[union-attr]
    assert merged.correlation_id == correlation
