"""Job cleanup (CC-32) on the real NATS and Postgres: finished jobs move from the hot read-model
tables to the archive after the retention, with their results, once each, with scheduler
replicas running and across a replay; no event is deleted and an archived job stays visible."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import nats
import pytest

from ccn_core.errors import Conflict
from ccn_core.projection import ProjectionRunner, rebuild
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_proto.scheduler import (
    BatchJob,
    CancelJob,
    CancelJobReply,
    ClaimJobs,
    ClaimJobsReply,
    CreateBatch,
    CreateBatchReply,
    CreateJob,
    CreateJobReply,
    FailJob,
    FailJobReply,
)
from ccn_scheduler.app import SchedulerOptions, start_scheduler
from ccn_scheduler.cleanup import ArchivePolicy, JobArchiver
from ccn_scheduler.read_model import JobReadModel
from tests.conftest import make_settings
from tests.integration.test_scheduler import (
    FAST,
    JOB_TYPES,
    Scheduler,
    answering,
    eventually,
    job_events,
    scheduler_client,
    schedulers,
)
from tests.support.validation import validation_service

HOT_JOBS = "SELECT * FROM community_jobs ORDER BY job_id"
HOT_RESULTS = "SELECT * FROM community_job_results ORDER BY job_id"
ARCHIVED_JOBS = "SELECT * FROM community_jobs_archive ORDER BY job_id"
ARCHIVED_RESULTS = "SELECT * FROM community_job_results_archive ORDER BY job_id"
HOUR = 3600.0


@contextlib.asynccontextmanager
async def archiving_schedulers(settings: Settings, options: SchedulerOptions, replicas: int) -> AsyncIterator[None]:
    """Scheduler replicas whose archivers run often (the shared helper keeps the default interval)."""
    async with contextlib.AsyncExitStack() as stack:
        for index in range(replicas):
            replica = msgspec.structs.replace(settings, replica_id=f"scheduler-{index}")
            runtime = await stack.enter_async_context(open_runtime("scheduler", replica))
            await start_scheduler(runtime, health=False, payload_types=JOB_TYPES, options=options)
        await answering(settings.effective_nats_url)
        await stack.enter_async_context(validation_service(settings))
        yield


def settings_with_retention(nats_url: str, database_url: str, home: Path, retention_s: float) -> Settings:
    return msgspec.structs.replace(make_settings(nats_url, database_url, home), job_retention_s=retention_s)


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    db = await asyncpg.create_pool(fresh_database, min_size=1, max_size=4)
    yield db
    await db.close()


async def projected(api: Scheduler, pool: asyncpg.Pool) -> int:
    """Wait until the job projection has applied every event in the stream; returns their number."""
    total = len(await job_events(api.nc))

    async def caught_up() -> bool:
        seq = await pool.fetchval(
            "SELECT last_seq FROM projection_checkpoints WHERE projection = $1", JobReadModel.spec.durable
        )
        return bool(seq == total)

    await eventually(caught_up)
    return total


def by_id(rows: list[asyncpg.Record]) -> dict[str, dict[str, Any]]:
    return {str(row["job_id"]): dict(row) for row in rows}


def without_archive_stamps(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("archived_at", "archived_by")}


async def claim_one(api: Scheduler, node: str, job_type: str = "echo") -> str:
    command = ClaimJobs(node_id=node, job_types=[job_type], concurrency=1, slots=1, wait_s=5)
    offers = (await api.call(command, ClaimJobsReply)).offers
    assert len(offers) == 1
    return offers[0].job_id


async def test_jobs_finished_before_the_retention_move_to_the_archive_with_their_results(
    isolated_nats: str, fresh_database: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    settings = settings_with_retention(isolated_nats, fresh_database, tmp_path, HOUR)
    async with schedulers(settings, 1), scheduler_client(isolated_nats) as api:
        dead = (await api.create("dies", max_retries=0)).job_id
        assert await claim_one(api, "n1") == dead
        await api.call(FailJob(node_id="n1", job_id=dead, reason="corrupt page"), FailJobReply)
        cancelled = (await api.create("cancelled")).job_id
        await api.call(CancelJob(job_id=cancelled, reason="not needed"), CancelJobReply)
        completed = (await api.create("completes")).job_id
        assert await claim_one(api, "n1") == completed  # the cancelled job is skipped
        await api.submit("n1", completed, {"text": "done"})
        await api.completed(completed)
        recent = (await api.create("completes later")).job_id
        assert await claim_one(api, "n1") == recent
        await api.submit("n1", recent, {"text": "done later"})
        await api.completed(recent)
        claimed = (await api.create("held", lease_s=HOUR)).job_id
        assert await claim_one(api, "n2") == claimed
        waiting = (await api.call(CreateJob(job_type="count", payload={"n": 1}, max_retries=3), CreateJobReply)).job_id
        assert await claim_one(api, "n3", "count") == waiting
        await api.call(FailJob(node_id="n3", job_id=waiting, reason="timeout"), FailJobReply)
        queued = (await api.create("never claimed")).job_id
        events_before = [e.event_id for e in await job_events(api.nc)]
        await projected(api, pool)

        hot_before, results_before = by_id(await pool.fetch(HOT_JOBS)), by_id(await pool.fetch(HOT_RESULTS))
        assert {job: row["status"] for job, row in hot_before.items()} == {
            dead: "dead",
            cancelled: "cancelled",
            completed: "completed",
            recent: "completed",
            claimed: "claimed",
            waiting: "retry_wait",
            queued: "queued",
        }
        # the retention ends between the two completions: `recent` finished within it
        early, late = hot_before[completed]["finished_at"], hot_before[recent]["finished_at"]
        assert early < late
        now = early + (late - early) / 2 + timedelta(seconds=HOUR)
        policy = ArchivePolicy(retention_s=HOUR, batch_size=2)
        archiver = JobArchiver(pool, policy, replica="archiver-a", clock=lambda: now)

        assert await archiver.archive_due() == 3  # two batches: 2, then 1
        hot, archived = by_id(await pool.fetch(HOT_JOBS)), by_id(await pool.fetch(ARCHIVED_JOBS))
        assert set(archived) == {dead, cancelled, completed}
        assert set(hot) == {recent, claimed, waiting, queued}
        # the rows moved whole, stamped with who moved them and when
        for job, row in archived.items():
            assert without_archive_stamps(row) == hot_before[job]
            assert (row["archived_at"], row["archived_by"]) == (now, "archiver-a")
        # results move with their job; the recent job keeps its result in the hot table
        hot_results, archived_results = by_id(await pool.fetch(HOT_RESULTS)), by_id(await pool.fetch(ARCHIVED_RESULTS))
        assert set(hot_results) == {recent} and set(archived_results) == {completed}
        assert {k: v for k, v in archived_results[completed].items() if k != "archived_at"} == results_before[completed]
        assert archived_results[completed]["result_json"] == '{"text": "done"}'
        # the SQL and the policy agree, row by row
        assert all(policy.is_due(r["status"], r["finished_at"], now) for r in archived.values())
        assert not any(policy.is_due(r["status"], r["finished_at"], now) for r in hot.values())
        assert await archiver.archive_due() == 0

        # years later, only the other finished job moves: running and waiting jobs never do
        decade = JobArchiver(pool, policy, replica="archiver-b", clock=lambda: now + timedelta(days=3650))
        assert await decade.archive_due() == 1
        assert set(by_id(await pool.fetch(HOT_JOBS))) == {claimed, waiting, queued}

        # an archived job is still whole: GET /jobs/{id} reads its history, not the tables
        view = await api.job(completed)
        assert (view.status, view.result) == ("completed", {"text": "done"})
        assert [e.type for e in view.history] == [
            "job.created",
            "job.claimed",
            "job.result_submitted",
            "job.completed",
        ]
        assert (await api.job(dead)).status == "dead"
        assert [e.reason for e in (await api.job(cancelled)).history] == [None, "not needed"]
        # commands on archived jobs write nothing, so nothing comes back into the hot tables
        again = await api.submit("n1", completed, {"text": "done"})
        assert again.duplicate
        with pytest.raises(Conflict):
            await api.call(CancelJob(job_id=dead), CancelJobReply)
        assert [e.event_id for e in await job_events(api.nc)] == events_before
        assert set(by_id(await pool.fetch(HOT_JOBS))) == {claimed, waiting, queued}
        assert set(by_id(await pool.fetch(ARCHIVED_JOBS))) == {dead, cancelled, completed, recent}


async def finish_a_batch(api: Scheduler, size: int) -> tuple[list[str], list[str]]:
    """Creates `size` jobs; completes the first half of what is claimed, cancels the rest."""
    batch = CreateBatch(batch_id="old", jobs=[BatchJob(job_type="echo", payload={"text": str(i)}) for i in range(size)])
    created = (await api.call(batch, CreateBatchReply)).job_ids
    half = size // 2
    offers = (await api.claim("n1", concurrency=half, slots=half, wait_s=2)).offers
    assert len(offers) == half
    completed = [offer.job_id for offer in offers]
    for job in completed:
        await api.submit("n1", job, {"echo": job})
        await api.completed(job)
    cancelled = [job for job in created if job not in completed]
    for job in cancelled:
        await api.call(CancelJob(job_id=job, reason="superseded"), CancelJobReply)
    return completed, cancelled


async def test_two_scheduler_replicas_archive_each_job_once(
    isolated_nats: str, fresh_database: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    settings = settings_with_retention(isolated_nats, fresh_database, tmp_path, 0.5)
    options = msgspec.structs.replace(FAST, archive_interval_s=0.2)
    async with archiving_schedulers(settings, options, 2), scheduler_client(isolated_nats) as api:
        completed, cancelled = await finish_a_batch(api, 12)
        events = [e.event_id for e in await job_events(api.nc)]

        async def all_archived() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM community_jobs_archive") == 12)

        await eventually(all_archived)
        assert await pool.fetchval("SELECT count(*) FROM community_jobs") == 0
        archived = by_id(await pool.fetch(ARCHIVED_JOBS))
        assert set(archived) == set(completed) | set(cancelled)
        assert {row["status"] for job, row in archived.items() if job in completed} == {"completed"}
        assert {row["status"] for job, row in archived.items() if job in cancelled} == {"cancelled"}
        # one leader archived everything; the other replica never moved a row
        assert len({row["archived_by"] for row in archived.values()}) == 1
        assert {row["archived_by"] for row in archived.values()} <= {"scheduler-0", "scheduler-1"}
        assert all(row["archived_at"] - row["finished_at"] >= timedelta(seconds=0.5) for row in archived.values())
        assert set(by_id(await pool.fetch(ARCHIVED_RESULTS))) == set(completed)
        assert await pool.fetchval("SELECT count(*) FROM community_job_results") == 0
        # the stream still holds every event of every archived job
        assert [e.event_id for e in await job_events(api.nc)] == events
        assert sorted(e.type for e in await job_events(api.nc)) == sorted(
            ["job.created"] * 12 + ["job.claimed", "job.result_submitted", "job.completed"] * 6 + ["job.cancelled"] * 6
        )


async def test_a_replay_after_archiving_neither_loses_nor_duplicates_archive_rows(
    isolated_nats: str, fresh_database: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    settings = settings_with_retention(isolated_nats, fresh_database, tmp_path, 0.2)
    options = msgspec.structs.replace(FAST, archive_interval_s=0.1)
    async with archiving_schedulers(settings, options, 1), scheduler_client(isolated_nats) as api:
        completed, cancelled = await finish_a_batch(api, 6)
        total = len(await job_events(api.nc))

        async def all_archived() -> bool:
            return bool(await pool.fetchval("SELECT count(*) FROM community_jobs_archive") == 6)

        await eventually(all_archived)
    archive = (await pool.fetch(ARCHIVED_JOBS), await pool.fetch(ARCHIVED_RESULTS))
    assert len(archive[0]) == 6 and len(archive[1]) == 3

    # a rebuild empties the hot tables only; the replay brings every archived job back into them
    await rebuild(pool, JobReadModel())
    nc = await nats.connect(isolated_nats)
    try:
        runner = ProjectionRunner(nc.jetstream(), pool, JobReadModel(), idle_wait_s=0.1)
        task = asyncio.create_task(runner.run())

        async def replayed() -> bool:
            return runner.position == total

        try:
            await eventually(replayed)
        finally:
            runner.stop()
            await task
        replayed_jobs = by_id(await pool.fetch(HOT_JOBS))
        assert set(replayed_jobs) == set(completed) | set(cancelled)
        for job, row in by_id(archive[0]).items():
            assert without_archive_stamps(row) == replayed_jobs[job]

        # two archivers at once (a leader that has just lost its lock, and the next): each job moves once
        policy = ArchivePolicy(retention_s=0.2, batch_size=2)
        archivers = [JobArchiver(pool, policy, replica=f"late-{i}") for i in range(2)]
        moved = await asyncio.gather(*(archiver.archive_due() for archiver in archivers))
        assert sum(moved) == 6
        assert await pool.fetchval("SELECT count(*) FROM community_jobs") == 0
        assert await pool.fetchval("SELECT count(*) FROM community_job_results") == 0
        # the archive kept its first row of each job, stamps included: nothing lost, nothing twice
        assert (await pool.fetch(ARCHIVED_JOBS), await pool.fetch(ARCHIVED_RESULTS)) == archive
        assert len(await job_events(nc)) == total
    finally:
        await nc.drain()
