"""What the fetch proxy asks of the scheduler (a job's view, kept briefly; a cancel) and the
per-job fetch count shared by proxy replicas, against a NATS server of the test's own (so its
stand-in scheduler is the only one answering)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_core.commands import CommandClient, CommandContext, CommandServer
from ccn_core.errors import NotFound
from ccn_core.topology import FETCH_COUNTS
from ccn_fetch_proxy.job_access import FetchBudget, SchedulerJobs
from ccn_proto.scheduler import CancelJob, CancelJobReply, GetJob, JobView
from tests.support.fetch_fixtures import job_view


@pytest.fixture
async def own_nats(isolated_nats: str) -> AsyncIterator[NATS]:
    client = await nats.connect(isolated_nats)
    yield client
    await client.drain()


async def test_job_views_are_asked_of_the_scheduler_kept_briefly_and_cancels_sent(own_nats: NATS) -> None:
    asked: list[str] = []
    cancelled: list[CancelJob] = []

    async def get_job(command: GetJob, ctx: CommandContext) -> JobView:
        asked.append(command.job_id)
        if command.job_id == "job-missing":
            raise NotFound("no such job")
        return job_view(command.job_id, holder="node-1", prefix="https://grants.example.org/")

    async def cancel_job(command: CancelJob, ctx: CommandContext) -> CancelJobReply:
        cancelled.append(command)
        view = job_view(command.job_id, holder=None, prefix="", status="cancelled")
        return CancelJobReply(job_id=command.job_id, status=view.status, server_time=view.server_time)

    scheduler = CommandServer(own_nats, "scheduler")
    scheduler.register("get_job", GetJob, get_job)
    scheduler.register("cancel_job", CancelJob, cancel_job)
    await scheduler.start()
    now = [0.0]
    jobs = SchedulerJobs(CommandClient(own_nats, timeout=2.0), ttl_s=2.0, clock=lambda: now[0])
    try:
        first = await jobs.view("job-1", "t")
        assert first is not None and first.holder == "node-1"
        await jobs.view("job-1", "t")
        assert asked == ["job-1"]  # kept
        await jobs.view("job-1", "t", fresh=True)
        now[0] += 2.5
        await jobs.view("job-1", "t")
        assert asked == ["job-1"] * 3  # asked again when fresh is wanted and when it aged
        assert await jobs.view("job-missing", "t") is None
        await jobs.cancel("job-1", "robots.txt disallows https://grants.example.org/private", "t")
        assert cancelled == [
            CancelJob(job_id="job-1", reason="robots.txt disallows https://grants.example.org/private")
        ]
        await jobs.view("job-1", "t")
        assert asked[-1] == "job-1" and len(asked) == 5  # a cancel forgets the view
    finally:
        await scheduler.stop()


async def test_the_fetch_cap_holds_across_replicas_counting_at_once(own_nats: NATS) -> None:
    js = own_nats.jetstream()
    replicas = [FetchBudget(await js.key_value(FETCH_COUNTS.bucket)) for _ in range(3)]
    job_id = f"job-{secrets.token_hex(4)}"
    spent = await asyncio.gather(*(replicas[i % 3].spend(job_id, 1, 10) for i in range(30)))
    granted = sorted(count for count in spent if count is not None)
    assert granted == list(range(1, 11))  # each count given once, none past the cap
    assert await replicas[0].spend(job_id, 2, 10) == 1  # a new attempt counts afresh


async def test_a_refunded_fetch_can_be_asked_again_and_the_count_never_goes_below_zero(own_nats: NATS) -> None:
    budget = FetchBudget(await own_nats.jetstream().key_value(FETCH_COUNTS.bucket))
    job_id = f"job-{secrets.token_hex(4)}"
    assert await budget.spend(job_id, 1, 1) == 1
    assert await budget.spend(job_id, 1, 1) is None  # the cap: one fetch
    await budget.refund(job_id, 1)  # that fetch was a "not now": nothing was sent
    assert await budget.spend(job_id, 1, 1) == 1
    await budget.refund(job_id, 1)
    await budget.refund(job_id, 1)
    await budget.refund(f"job-{secrets.token_hex(4)}", 1)  # never counted: nothing to give back
    assert await budget.spend(job_id, 1, 2) == 1
