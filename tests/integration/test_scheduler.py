"""The scheduler against real NATS and Postgres, with several replicas at once: idempotent
creation, claims under contention, results only from the holder, lease expiry → retry → dead,
release on opt-out, and the read models. Each test has a NATS server and a database of its own
(its streams hold only its jobs). One replica at a time owns the claims (ADR 0016); the others
stand by and take over when it goes."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_core import ids, subjects
from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.commands import CommandClient
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.domain.job import ClaimJob, JobDecider
from ccn_core.domain.job import CreateJob as CreateJobCommand
from ccn_core.errors import BadInput, Conflict, NotFound, Unavailable, Unprocessable
from ccn_core.eventstore import EventStore
from ccn_core.projection import ProjectionRunner, rebuild
from ccn_core.retry_policy import RetryPolicy
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import JOBS, NODES
from ccn_proto.canonical import result_checksum
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobCreated, JobEvent
from ccn_proto.nodes import ConsentScope
from ccn_proto.registry import (
    ConsentReply,
    EndSession,
    EndSessionReply,
    OptOut,
    OptOutReply,
    RecordConsent,
    RegisterNode,
    RegisterNodeReply,
    StartSession,
    StartSessionReply,
)
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
    GetJob,
    HeldJobs,
    HeldJobsReply,
    JobView,
    ReleaseJob,
    ReleaseJobReply,
    RenewLeases,
    RenewLeasesReply,
    SubmitResult,
    SubmitResultReply,
)
from ccn_registry.app import start_registry
from ccn_scheduler import handlers as scheduler_handlers
from ccn_scheduler.app import SchedulerOptions, start_scheduler
from ccn_scheduler.job_service import JobRepository
from ccn_scheduler.owner import ClaimOwner
from ccn_scheduler.read_model import JobReadModel
from tests.conftest import make_settings
from tests.support.validation import validation_service

T = TypeVar("T")
R = TypeVar("R")


class EchoPayload(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class CountPayload(msgspec.Struct):
    n: int


JOB_TYPES: dict[str, type[msgspec.Struct]] = {"echo": EchoPayload, "count": CountPayload}
FAST = SchedulerOptions(
    retry_policy=RetryPolicy(base_s=0.2, cap_s=0.4),
    lease_scan_interval_s=0.2,
    projection_idle_wait_s=0.1,
    reconcile_interval_s=0.2,
)
_decode_job_event = msgspec.json.Decoder(Envelope[JobEvent]).decode
_decode_any_event = msgspec.json.Decoder(Envelope[Any]).decode


@pytest.fixture
def own_settings(isolated_nats: str, fresh_database: str, tmp_path: Path) -> Settings:
    return make_settings(isolated_nats, fresh_database, tmp_path)


class Replica:
    """One scheduler replica, with its own connection, event store and caches; `stop` ends it
    as a crash would end its ownership (its key is left to expire) or as a shutdown does."""

    def __init__(self, owner: ClaimOwner, stack: contextlib.AsyncExitStack) -> None:
        self.owner = owner
        self._stack = stack

    @property
    def owns(self) -> bool:
        return self.owner.handlers is not None

    async def stop(self) -> None:
        await self._stack.aclose()


@contextlib.asynccontextmanager
async def schedulers(settings: Settings, replicas: int) -> AsyncIterator[list[Replica]]:
    """N scheduler replicas, each a Runtime of its own: own connection, event store, caches."""
    started: list[Replica] = []
    try:
        for index in range(replicas):
            replica = msgspec.structs.replace(settings, replica_id=f"scheduler-{index}")
            stack = contextlib.AsyncExitStack()
            runtime = await stack.enter_async_context(open_runtime("scheduler", replica))
            owner = await start_scheduler(runtime, health=False, payload_types=JOB_TYPES, options=FAST)
            started.append(Replica(owner, stack))
        await answering(settings.effective_nats_url)
        async with validation_service(settings):  # results complete their jobs once judged
            yield started
    finally:
        for replica in reversed(started):
            await replica.stop()


async def answering(nats_url: str) -> None:
    """Wait until the scheduler answers on a connection that existed before it subscribed: such
    a connection's first request right after a (re)subscription can find no responders for a
    few milliseconds (seen on nats-server 2.15), which a caller meets as Unavailable and retries."""
    nc = await nats.connect(nats_url)
    client = CommandClient(nc, timeout=2.0)
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    await client.call("scheduler", "get_job", GetJob(job_id="probe"), JobView, correlation_id="probe")
                except NotFound:
                    return
                except Unavailable:
                    await asyncio.sleep(0.02)
    finally:
        await nc.drain()


UNAVAILABLE_PATIENCE_S = 20.0


class Scheduler:
    """A caller of ccn.cmd.scheduler.*, as the edge will be."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._client = CommandClient(nc, timeout=15.0)

    async def call(self, command: msgspec.Struct, reply_type: type[R], correlation_id: str | None = None) -> R:
        name = type(command).__struct_config__.tag
        assert isinstance(name, str)
        correlation_id = correlation_id or ids.new_correlation_id()
        # as a node does when the edge passes `unavailable` on: asks again until its patience
        # ends. Counted in time, not tries: an owner handing over (its commands in hand finished,
        # a standby's next look at the key, the stream replayed) takes seconds on a loaded machine
        deadline = time.monotonic() + UNAVAILABLE_PATIENCE_S
        while True:
            try:
                return await self._client.call("scheduler", name, command, reply_type, correlation_id=correlation_id)
            except Unavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.05)

    async def create(self, text: str = "hello", **fields: Any) -> CreateJobReply:
        return await self.call(CreateJob(job_type="echo", payload={"text": text}, **fields), CreateJobReply)

    async def claim(self, node: str, *, concurrency: int = 1, slots: int = 1, wait_s: float = 0.0) -> ClaimJobsReply:
        command = ClaimJobs(node_id=node, job_types=["echo"], concurrency=concurrency, slots=slots, wait_s=wait_s)
        return await self.call(command, ClaimJobsReply)

    async def submit(self, node: str, job_id: str, result: dict[str, Any], checksum: str | None = None) -> Any:
        command = SubmitResult(node_id=node, job_id=job_id, result=result, checksum=checksum or result_checksum(result))
        return await self.call(command, SubmitResultReply)

    async def job(self, job_id: str) -> JobView:
        return await self.call(GetJob(job_id=job_id), JobView)

    async def completed(self, job_id: str) -> JobView:
        """The job once its result is judged and it completed (ADR 0024)."""

        async def done() -> JobView | None:
            view = await self.job(job_id)
            return view if view.status == "completed" else None

        return await eventually(done)


@contextlib.asynccontextmanager
async def scheduler_client(nats_url: str) -> AsyncIterator[Scheduler]:
    nc = await nats.connect(nats_url)
    try:
        yield Scheduler(nc)
    finally:
        await nc.drain()


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 15.0) -> T:
    async with asyncio.timeout(timeout):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.05)


async def job_events(nc: NATS, job_id: str | None = None) -> list[Envelope[JobEvent]]:
    store = EventStore(nc)
    await store.start()
    try:
        stored = await store.read(JOBS.name, f"ccn.job.{job_id or '*'}.*")
    finally:
        await store.close()
    return [_decode_job_event(s.data) for s in stored]


async def projected_job(settings: Settings, job_id: str, status: str) -> asyncpg.Record:
    """The job's community_jobs row, once the projection has it in `status`."""

    async def row_in_status() -> asyncpg.Record | None:
        conn = await asyncpg.connect(settings.effective_database_url)
        try:
            row = await conn.fetchrow("SELECT * FROM community_jobs WHERE job_id = $1", job_id)
        finally:
            await conn.close()
        return row if row is not None and row["status"] == status else None

    return await eventually(row_in_status)


async def node_event(nc: NATS, node_id: str, name: str) -> Envelope[Any]:
    """The node's latest event of that name, as stored."""
    store = EventStore(nc)
    await store.start()
    try:
        stored = await store.read(NODES.name, subjects.event("node", node_id, name))
    finally:
        await store.close()
    return _decode_any_event(stored[-1].data)


def types_of(view: JobView) -> list[str]:
    return [entry.type for entry in view.history]


async def test_concurrent_retries_of_one_create_make_one_job(own_settings: Settings) -> None:
    key = "9f0c2b4e-6a7d-4e1f-8b3a-2c5d7e9f1a3b"
    async with schedulers(own_settings, 2), scheduler_client(own_settings.effective_nats_url) as api:
        replies = await asyncio.gather(*(api.create("same", idempotency_key=key) for _ in range(24)))
        assert len({r.job_id for r in replies}) == 1
        assert sum(r.created for r in replies) == 1
        assert {r.status for r in replies} == {"queued"}
        events = await job_events(api.nc)
        assert [e.type for e in events] == ["job.created"]
        assert isinstance(events[0].data, JobCreated) and events[0].data.payload == {"text": "same"}

        with pytest.raises(Conflict):
            await api.create("another body", idempotency_key=key)
        # a key too short to be unguessable is refused as bad input, before anything is written
        with pytest.raises(BadInput):
            await api.create("x", idempotency_key="short")
        assert len(await job_events(api.nc)) == 1


async def test_bad_payloads_and_unknown_types_write_nothing(own_settings: Settings) -> None:
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        with pytest.raises(BadInput) as bad:
            await api.call(CreateJob(job_type="echo", payload={"text": 5}), CreateJobReply)
        assert bad.value.field == "payload.text"
        with pytest.raises(BadInput) as unknown_field:
            await api.call(CreateJob(job_type="echo", payload={"text": "a", "extra": 1}), CreateJobReply)
        assert unknown_field.value.field == "payload.extra"
        with pytest.raises(Unprocessable):
            await api.call(CreateJob(job_type="translate", payload={}), CreateJobReply)
        with pytest.raises(Unprocessable):
            await api.call(ClaimJobs(node_id="node-x", job_types=["translate"], concurrency=1), ClaimJobsReply)
        batch = CreateBatch(
            batch_id="b-bad",
            jobs=[BatchJob(job_type="echo", payload={"text": "ok"}), BatchJob(job_type="echo", payload={})],
        )
        with pytest.raises(BadInput) as bad_item:
            await api.call(batch, CreateBatchReply)
        assert bad_item.value.field == "jobs[1].payload.text"
        with pytest.raises(NotFound):
            await api.job(str(ids.uuid7()))
        assert await job_events(api.nc) == []


async def test_a_requeued_batch_creates_no_duplicates(own_settings: Settings) -> None:
    items = [BatchJob(job_type="echo", payload={"text": f"record {i}"}, item_key=f"rec-{i}") for i in range(40)]
    batch = CreateBatch(batch_id="irs990-2026-11", dataset_source="irs990", dataset_version="2026.11", jobs=items)
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        first = await api.call(batch, CreateBatchReply)
        assert (first.created, first.existing) == (40, 0)
        # the batch failed half-way from the caller's view: it is sent again, twice at once
        again = await asyncio.gather(api.call(batch, CreateBatchReply), api.call(batch, CreateBatchReply))
        assert [(r.created, r.existing) for r in again] == [(0, 40), (0, 40)]
        assert all(r.job_ids == first.job_ids for r in again)
        assert len(await job_events(api.nc)) == 40
        view = await api.job(first.job_ids[7])
        assert (view.batch_id, view.dataset_source, view.dataset_version) == ("irs990-2026-11", "irs990", "2026.11")
        assert view.payload == {"text": "record 7"}
        # the same item key with another body under the same batch is a conflict
        changed = msgspec.structs.replace(
            batch, jobs=[BatchJob(job_type="echo", payload={"text": "changed"}, item_key="rec-0")]
        )
        with pytest.raises(Conflict):
            await api.call(changed, CreateBatchReply)


async def test_many_claimers_on_three_replicas_never_share_a_job_or_exceed_concurrency(
    own_settings: Settings,
) -> None:
    jobs, nodes, concurrency = 150, 12, 2
    holding: dict[str, set[str]] = {f"node-{n}": set() for n in range(nodes)}
    holder_of: dict[str, str] = {}
    completed: list[str] = []
    peak = Counter[str]()
    async with schedulers(own_settings, 3) as replicas, scheduler_client(own_settings.effective_nats_url) as api:
        batch = CreateBatch(
            batch_id="claims", jobs=[BatchJob(job_type="echo", payload={"text": str(i)}) for i in range(jobs)]
        )
        await api.call(batch, CreateBatchReply)

        # first, one node's claims reach all replicas at once: its concurrency holds
        for racer_concurrency in (1, 3):
            racer = f"racer-{racer_concurrency}"
            replies = await asyncio.gather(
                *(api.claim(racer, concurrency=racer_concurrency, slots=3, wait_s=0.5) for _ in range(8))
            )
            assert sum(len(r.offers) for r in replies) == racer_concurrency
            assert max(r.held for r in replies) == racer_concurrency
            for offer in (o for r in replies for o in r.offers):
                await api.submit(racer, offer.job_id, {"echo": offer.job_id})
                completed.append(offer.job_id)

        async def crash_the_owner_midway() -> None:
            # the owner goes while claims are in flight: a standby replays the stream and takes over
            while len(completed) < jobs // 2:
                await asyncio.sleep(0.02)
            [owner] = [replica for replica in replicas if replica.owns]
            await owner.stop()

        async def work(node: str, offer_job: str) -> None:
            await asyncio.sleep(random.uniform(0, 0.01))
            reply = await api.submit(node, offer_job, {"echo": offer_job})
            assert not reply.duplicate
            holding[node].discard(offer_job)
            del holder_of[offer_job]
            completed.append(offer_job)

        async def claimer(node: str) -> None:
            # two loops per node, as a node on two edge replicas would: they race for its slots
            while len(completed) < jobs:
                reply = await api.claim(node, concurrency=concurrency, slots=concurrency, wait_s=0.1)
                for offer in reply.offers:
                    assert offer.job_id not in holder_of, f"{offer.job_id} offered to {node} and {holder_of}"
                    holder_of[offer.job_id] = node
                    holding[node].add(offer.job_id)
                    peak[node] = max(peak[node], len(holding[node]))
                    assert len(holding[node]) <= concurrency
                await asyncio.gather(*(work(node, offer.job_id) for offer in reply.offers))

        async with asyncio.timeout(60):
            await asyncio.gather(crash_the_owner_midway(), *(claimer(node) for node in holding for _ in range(2)))

        assert sorted(completed) == sorted(set(completed)) and len(completed) == jobs
        assert max(peak.values()) <= concurrency

        async def all_judged() -> list[Envelope[JobEvent]] | None:
            events = await job_events(api.nc)
            return events if sum(e.type == "job.completed" for e in events) >= jobs else None

        events = await eventually(all_judged)
        by_type = Counter(e.type for e in events)
        # exactly once each: no job claimed twice, none completed twice
        assert by_type == Counter(
            {"job.created": jobs, "job.claimed": jobs, "job.result_submitted": jobs, "job.completed": jobs}
        )
        deciders = {e.data.replica for e in events if e.type == "job.claimed"}  # type: ignore[union-attr]
        assert len(deciders) == 2, f"one owner before the crash, one after: {deciders}"


async def test_an_owner_stopping_ends_its_waiting_claims_at_once_so_a_standby_answers_within_moments(
    own_settings: Settings,
) -> None:
    """A node's claim waits for work for up to its wait_s (the edge asks with 10 s). A stopping
    owner finishes the commands in hand before it lets go of the key; a claim waiting for work
    must end then with nothing, not hold the key (and every node's claims) for its whole wait."""
    async with schedulers(own_settings, 2) as replicas, scheduler_client(own_settings.effective_nats_url) as api:
        [owner] = [replica for replica in replicas if replica.owns]
        waiting = asyncio.create_task(api.claim("idle-node", wait_s=10.0))  # no job: it waits
        await asyncio.sleep(0.3)
        assert not waiting.done()
        stopping = time.monotonic()
        await owner.stop()
        reply = await waiting
        assert reply.offers == []
        created = await api.create("after the handover")  # answered by the standby, now the owner
        assert time.monotonic() - stopping < 5.0, "the stop waited out the claim's wait"
        job = await api.job(created.job_id)
        assert job.status == "queued"


async def test_a_job_written_behind_the_owners_back_is_claimable_within_moments(own_settings: Settings) -> None:
    """A queued job the owner's board does not know (a predecessor's last append landed after the
    takeover read the stream, an operator's tool) is found by the reconcile and offered."""
    async with (
        schedulers(own_settings, 1),
        scheduler_client(own_settings.effective_nats_url) as api,
        open_runtime("intruder", own_settings) as runtime,
    ):
        repository: JobRepository = AggregateRepository(runtime.store, JobDecider(), JobEvent, stream=JOBS.name)
        orphan = str(ids.uuid7())
        meta = EventMeta(correlation_id="corr-orphan", actor=Actor(kind="service", id="crashed-scheduler"))
        created = JobCreated(job_type="echo", payload={"text": "orphan"}, priority=5)
        await repository.execute(orphan, CreateJobCommand(created=created), meta)
        offers = (await api.claim("n1", wait_s=5)).offers
        assert [(o.job_id, o.payload, o.correlation_id) for o in offers] == [
            (orphan, {"text": "orphan"}, "corr-orphan")
        ]

        # a job the board holds as queued, claimed behind its back: the claim append fails its
        # OCC check, the board learns the truth, and the job is not offered twice
        queued = await api.create("claimed elsewhere")
        claimed_elsewhere = ClaimJob(node_id="n-elsewhere", now=datetime.now(UTC))
        await repository.execute(queued.job_id, claimed_elsewhere, meta)
        assert (await api.claim("n2", wait_s=0.5)).offers == []
        view = await api.job(queued.job_id)
        assert (view.status, view.holder) == ("claimed", "n-elsewhere")


async def test_only_the_holder_may_submit_once_with_a_true_checksum(own_settings: Settings) -> None:
    async with schedulers(own_settings, 2), scheduler_client(own_settings.effective_nats_url) as api:
        correlation = ids.new_correlation_id()
        job = await api.call(CreateJob(job_type="echo", payload={"text": "grant"}), CreateJobReply, correlation)
        offer = (await api.claim("n1", wait_s=2)).offers[0]
        assert offer.job_id == job.job_id and offer.payload == {"text": "grant"} and offer.attempt == 1
        result = {"text": "grant", "language": "en"}

        with pytest.raises(Conflict):
            await api.submit("n2", job.job_id, result)
        with pytest.raises(BadInput) as mismatch:
            await api.submit("n1", job.job_id, result, checksum=result_checksum({"text": "other"}))
        assert mismatch.value.field == "checksum"

        first, second = await asyncio.gather(api.submit("n1", job.job_id, result), api.submit("n1", job.job_id, result))
        assert sorted([first.duplicate, second.duplicate]) == [False, True]
        assert first.status == second.status == "validating"
        with pytest.raises(Conflict):
            await api.submit("n1", job.job_id, {"text": "changed my mind"})
        view = await api.completed(job.job_id)
        with pytest.raises(Conflict):
            await api.call(CancelJob(job_id=job.job_id), CancelJobReply)
        assert types_of(view) == ["job.created", "job.claimed", "job.result_submitted", "job.completed"]
        assert view.result == result and view.result_checksum == result_checksum(result)
        # the claim joins the job's thread: the offer tells the node which id to send on
        assert offer.correlation_id == correlation
        assert [e.correlation_id for e in view.history[:2]] == [correlation, correlation]

        async def projected() -> asyncpg.Record | None:
            conn = await asyncpg.connect(own_settings.effective_database_url)
            try:
                return await conn.fetchrow(
                    """SELECT j.status, j.claimed_by_node_id, j.attempt, j.correlation_id, j.claimed_by_replica,
                              j.finished_at IS NOT NULL AS finished, r.node_id, r.result_checksum, r.result_json
                       FROM community_jobs j JOIN community_job_results r USING (job_id) WHERE job_id = $1""",
                    job.job_id,
                )
            finally:
                await conn.close()

        row = await eventually(projected)
        assert row["status"] == "completed" and row["finished"]
        assert (row["claimed_by_node_id"], row["node_id"], row["attempt"]) == ("n1", "n1", 1)
        assert row["result_checksum"] == result_checksum(result)
        assert msgspec.json.decode(row["result_json"]) == result
        assert row["correlation_id"] == correlation
        assert row["claimed_by_replica"] in {"scheduler-0", "scheduler-1"}


async def test_a_cancelled_job_is_skipped_for_the_live_one_behind_it(own_settings: Settings) -> None:
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        cancelled = await api.create("not needed after all")
        live = await api.create("still wanted")
        await api.call(CancelJob(job_id=cancelled.job_id, reason="duplicate"), CancelJobReply)
        claimed = await api.claim("n1", slots=1, wait_s=2)
        assert [o.job_id for o in claimed.offers] == [live.job_id]
        assert types_of(await api.job(cancelled.job_id)) == ["job.created", "job.cancelled"]


async def test_higher_priority_jobs_are_claimed_first(own_settings: Settings) -> None:
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        low = await api.create("backfill", priority=-5)
        normal = [await api.create(f"routine {i}") for i in range(2)]
        high = await api.create("urgent", priority=10)
        order = [(await api.claim(f"n{i}", wait_s=2)).offers[0].job_id for i in range(4)]
        assert order == [high.job_id, normal[0].job_id, normal[1].job_id, low.job_id]


async def test_an_unrenewed_lease_is_abandoned_retried_and_finally_dead(own_settings: Settings) -> None:
    async with schedulers(own_settings, 2), scheduler_client(own_settings.effective_nats_url) as api:
        job = await api.create("flaky", max_retries=1, lease_s=1.2)
        first = await api.claim("n1", wait_s=2)
        assert [o.job_id for o in first.offers] == [job.job_id]

        # renewing keeps the lease past its first end, and appends nothing
        for _ in range(2):
            await asyncio.sleep(0.45)
            renewed = await api.call(RenewLeases(node_id="n1", job_ids=[job.job_id]), RenewLeasesReply)
            assert [lease.job_id for lease in renewed.renewed] == [job.job_id] and not renewed.lost
        assert (await api.job(job.job_id)).status == "claimed"

        # n1 stops renewing: its lease expires, the job is abandoned, then claimable again
        second = await api.claim("n2", wait_s=8)
        assert [o.job_id for o in second.offers] == [job.job_id] and second.offers[0].attempt == 2
        lost = await api.call(RenewLeases(node_id="n1", job_ids=[job.job_id]), RenewLeasesReply)
        assert [lease.code for lease in lost.lost] == ["conflict"]

        # n2 vanishes too: no attempts left, so the job dies
        async def dead() -> JobView | None:
            view = await api.job(job.job_id)
            return view if view.status == "dead" else None

        view = await eventually(dead)
        assert types_of(view) == [
            "job.created",
            "job.claimed",
            "job.abandoned",
            "job.claimed",
            "job.abandoned",
            "job.dead",
        ]
        assert [e.node_id for e in view.history if e.type == "job.abandoned"] == ["n1", "n2"]
        assert (await api.claim("n3")).offers == []

        row = await projected_job(own_settings, job.job_id, "dead")
        assert (row["attempt"], row["retry_count"], row["max_retries"]) == (2, 2, 1)
        assert row["lease_expires_at"] is None and row["retry_at"] is None and row["finished_at"] is not None
        assert row["last_error"] == "lease expired"


async def test_a_failed_job_waits_for_its_backoff_then_runs_again(own_settings: Settings) -> None:
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        job = await api.create("retry me", max_retries=2)
        await api.claim("n1", wait_s=2)
        with pytest.raises(Conflict):
            await api.call(FailJob(node_id="n2", job_id=job.job_id, reason="not mine"), FailJobReply)
        failed = await api.call(FailJob(node_id="n1", job_id=job.job_id, reason="parser crashed"), FailJobReply)
        assert failed.status == "retry_wait" and failed.retry_at is not None
        again = await api.claim("n2", wait_s=5)
        assert [o.job_id for o in again.offers] == [job.job_id]
        assert again.server_time >= failed.retry_at
        cancelled = await api.call(CancelJob(job_id=job.job_id, reason="operator"), CancelJobReply)
        assert cancelled.status == "cancelled"
        with pytest.raises(Conflict):
            await api.submit("n2", job.job_id, {"late": True})


async def test_a_released_job_is_claimable_at_once_on_the_same_attempt(own_settings: Settings) -> None:
    """The edge claimed a job for a node that left before the offer reached it: it hands the job
    back with release_job, which spends no attempt and sets no backoff."""
    async with schedulers(own_settings, 2), scheduler_client(own_settings.effective_nats_url) as api:
        correlation = ids.new_correlation_id()
        # no retries at all: a release that counted its attempt would leave none for the next node
        job = await api.call(
            CreateJob(job_type="echo", payload={"text": "undelivered"}, max_retries=0), CreateJobReply, correlation
        )
        first = await api.claim("n1", wait_s=2)
        assert [(o.job_id, o.attempt) for o in first.offers] == [(job.job_id, 1)]
        behind = await api.create("queued behind it")

        reason = "the node left before the offer reached it"
        with pytest.raises(Conflict):
            await api.call(ReleaseJob(node_id="n2", job_id=job.job_id, reason=reason), ReleaseJobReply, correlation)
        release = ReleaseJob(node_id="n1", job_id=job.job_id, reason=reason)
        released = await api.call(release, ReleaseJobReply, correlation)
        assert (released.job_id, released.status) == (job.job_id, "queued")
        # a retry after a lost reply is answered from the job and writes nothing
        assert (await api.call(release, ReleaseJobReply, correlation)).status == "queued"
        view = await api.job(job.job_id)
        assert (view.status, view.attempt, view.holder, view.retry_at) == ("queued", 0, None, None)

        # n1's slot is free at once (its concurrency is 1), and the queue kept its order: the
        # job queued before the release comes first
        mine = await api.claim("n1", wait_s=2)
        assert [o.job_id for o in mine.offers] == [behind.job_id]
        again = await api.claim("n2", wait_s=2)
        assert [(o.job_id, o.attempt, o.correlation_id) for o in again.offers] == [(job.job_id, 1, correlation)]
        await api.submit("n2", job.job_id, {"text": "delivered"})

        view = await api.completed(job.job_id)
        assert types_of(view) == [
            "job.created",
            "job.claimed",
            "job.released",
            "job.claimed",
            "job.result_submitted",
            "job.completed",
        ]
        history = [(e.node_id, e.attempt) for e in view.history[1:]]
        assert history == [("n1", 1), ("n1", 1), ("n2", 1), ("n2", 1), ("n2", 1)]
        released_entry = view.history[2]
        assert (released_entry.reason, released_entry.correlation_id) == (reason, correlation)
        # every step names the scheduler replica that decided it, a node's own requests too
        replicas = [getattr(e.data, "replica", None) for e in await job_events(api.nc, job.job_id)][1:]
        assert len(replicas) == 5 and set(replicas) <= {"scheduler-0", "scheduler-1"}, replicas

        row = await projected_job(own_settings, job.job_id, "completed")
        assert (row["attempt"], row["retry_count"], row["claimed_by_node_id"]) == (1, 0, "n2")
        assert row["retry_at"] is None and row["last_retry_at"] is None


async def registered_and_consenting(
    registry: CommandClient, scopes: list[ConsentScope] | None = None
) -> RegisterNodeReply:
    """A node as the reference node makes one: registered, and consenting to the current terms
    (without that the scheduler offers it nothing)."""
    node = await registry.call(
        "registry", "register", RegisterNode(consent_flag=True), RegisterNodeReply, correlation_id="corr-reg"
    )
    version = current_consent_version()
    consent = RecordConsent(
        api_token=node.api_token, consent_version=version, consent_hash=consent_catalogue()[version], scopes=scopes
    )
    await registry.call("registry", "consent", consent, ConsentReply, correlation_id="corr-consent")
    return node


async def test_an_opted_out_node_releases_its_jobs_at_once(own_settings: Settings) -> None:
    async with (
        open_runtime("registry", own_settings) as registry,
        schedulers(own_settings, 2),
        scheduler_client(own_settings.effective_nats_url) as api,
    ):
        await start_registry(registry, health=False, observe=False)
        await registry.nc.flush()  # its command subscription is on the server before we call
        registry_client = CommandClient(api.nc)
        node = await registered_and_consenting(registry_client)
        node_id = node.node_public_id
        created = [await api.create(f"job {i}", lease_s=600.0) for i in range(3)]
        claimed = await api.claim(node_id, concurrency=3, slots=3, wait_s=2)
        assert sorted(o.job_id for o in claimed.offers) == sorted(j.job_id for j in created)
        # at its concurrency, the node gets nothing more
        await api.create("one more")
        assert (await api.claim(node_id, concurrency=3, slots=1)).offers == []

        await registry_client.call(
            "registry", "opt_out", OptOut(api_token=node.api_token), OptOutReply, correlation_id="corr-optout"
        )
        # leases of 10 minutes, yet the jobs are back within moments
        other = await eventually(lambda: api.claim("n-other", concurrency=4, slots=4, wait_s=0.5), timeout=10)
        taken = set(o.job_id for o in other.offers)
        while len(taken) < 4:
            taken |= {o.job_id for o in (await api.claim("n-other", concurrency=8, slots=4, wait_s=1)).offers}
        assert {j.job_id for j in created} <= taken
        opted_out = await node_event(api.nc, node_id, "opted_out")
        assert opted_out.correlation_id == "corr-optout"
        for job in created:
            view = await api.job(job.job_id)
            abandoned = [e for e in view.history if e.type == "job.abandoned"]
            assert [(e.node_id, e.reason) for e in abandoned] == [(node_id, "node opted out")]
            # a step of the job's life, on the job's thread, caused by the opt-out event
            assert abandoned[0].correlation_id == view.history[0].correlation_id != "corr-optout"
            assert abandoned[0].causation_id == opted_out.event_id


async def test_jobs_are_released_when_the_nodes_last_session_ends(own_settings: Settings) -> None:
    async with (
        open_runtime("registry", own_settings) as registry,
        schedulers(own_settings, 1),
        scheduler_client(own_settings.effective_nats_url) as api,
    ):
        await start_registry(registry, health=False, observe=False)
        await registry.nc.flush()
        registry_client = CommandClient(api.nc)
        node = await registered_and_consenting(registry_client)
        second = await registry_client.call(
            "registry", "start_session", StartSession(api_token=node.api_token), StartSessionReply, correlation_id="c2"
        )
        job = await api.create("long", lease_s=600.0)
        assert [o.job_id for o in (await api.claim(node.node_public_id, wait_s=2)).offers] == [job.job_id]

        # one of its two sessions ends (a reconnect, a second edge): the node keeps its job
        await registry_client.call(
            "registry",
            "end_session",
            EndSession(session_token=node.session_token),
            EndSessionReply,
            correlation_id="c3",
        )
        await asyncio.sleep(0.5)
        assert (await api.job(job.job_id)).holder == node.node_public_id

        # its last session ends: the job goes back at once
        await registry_client.call(
            "registry",
            "end_session",
            EndSession(session_token=second.session_token),
            EndSessionReply,
            correlation_id="c4",
        )
        again = await api.claim("n-other", wait_s=5)
        assert [o.job_id for o in again.offers] == [job.job_id]
        view = await api.job(job.job_id)
        abandoned = [e for e in view.history if e.type == "job.abandoned"]
        ended = await node_event(api.nc, node.node_public_id, "session_ended")  # the last session's
        assert ended.correlation_id == "c4"
        assert [(e.reason, e.correlation_id, e.causation_id) for e in abandoned] == [
            ("node session ended", view.history[0].correlation_id, ended.event_id)
        ]


async def test_expiry_and_retries_survive_a_restart_of_every_scheduler(own_settings: Settings) -> None:
    """What is due is derived from durable state: no scheduler process holds a timer."""
    async with scheduler_client(own_settings.effective_nats_url) as api:
        async with schedulers(own_settings, 2):
            expiring = await api.create("expires while nobody runs", max_retries=3, lease_s=1.0)
            failing = await api.create("fails before the restart", max_retries=3)
            offers = (await api.claim("n1", concurrency=2, slots=2, wait_s=2)).offers
            assert {o.job_id for o in offers} == {expiring.job_id, failing.job_id}
            failed = await api.call(FailJob(node_id="n1", job_id=failing.job_id, reason="oom"), FailJobReply)
            assert failed.status == "retry_wait"
        # every scheduler is down while the lease runs out and the retry time passes
        await asyncio.sleep(1.0)
        async with schedulers(own_settings, 1):
            taken: set[str] = set()

            async def both_back() -> bool:
                taken.update(o.job_id for o in (await api.claim("n2", concurrency=2, slots=2, wait_s=0.3)).offers)
                return taken == {expiring.job_id, failing.job_id}

            await eventually(both_back, timeout=10)
            assert types_of(await api.job(expiring.job_id)) == [
                "job.created",
                "job.claimed",
                "job.abandoned",
                "job.claimed",
            ]
            assert types_of(await api.job(failing.job_id)) == [
                "job.created",
                "job.claimed",
                "job.failed",
                "job.claimed",
            ]


async def test_the_job_read_model_rebuilt_by_replay_equals_the_live_one(own_settings: Settings) -> None:
    query = "SELECT * FROM community_jobs ORDER BY job_id"
    results = "SELECT * FROM community_job_results ORDER BY job_id"
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        batch = CreateBatch(
            batch_id="rebuild", jobs=[BatchJob(job_type="echo", payload={"text": str(i)}) for i in range(9)]
        )
        created = await api.call(batch, CreateBatchReply)
        offers = (await api.claim("n1", concurrency=6, slots=6, wait_s=2)).offers
        for offer in offers[:3]:
            await api.submit("n1", offer.job_id, {"n": offer.job_id})
            await api.completed(offer.job_id)
        for offer in offers[3:5]:
            await api.call(FailJob(node_id="n1", job_id=offer.job_id, reason="bad page"), FailJobReply)
        await api.call(CancelJob(job_id=created.job_ids[-1], reason="dup"), CancelJobReply)
        await api.call(RenewLeases(node_id="n1", job_ids=[offers[5].job_id]), RenewLeasesReply)
        total = len(await job_events(api.nc))

        pool = await asyncpg.create_pool(own_settings.effective_database_url, min_size=1, max_size=2)
        try:

            async def caught_up() -> bool:
                seq = await pool.fetchval(
                    "SELECT last_seq FROM projection_checkpoints WHERE projection = $1", JobReadModel.spec.durable
                )
                return bool(seq == total)

            await eventually(caught_up)
            live = (await pool.fetch(query), await pool.fetch(results))
            assert len(live[0]) == 9 and len(live[1]) == 3
        finally:
            await pool.close()
    # the live projection stopped with its scheduler; a runner of our own replays into emptied tables
    pool = await asyncpg.create_pool(own_settings.effective_database_url, min_size=1, max_size=4)
    nc = await nats.connect(own_settings.effective_nats_url)
    try:
        await rebuild(pool, JobReadModel())
        assert await pool.fetchval("SELECT count(*) FROM community_jobs") == 0
        runner = ProjectionRunner(nc.jetstream(), pool, JobReadModel(), idle_wait_s=0.1)
        task = asyncio.create_task(runner.run())

        async def replayed() -> bool:
            return runner.position == total

        try:
            await eventually(replayed)
        finally:
            runner.stop()
            await task
        assert (await pool.fetch(query), await pool.fetch(results)) == live
    finally:
        await nc.drain()
        await pool.close()


async def test_an_event_that_does_not_decode_does_not_stop_the_owner_taking_over(own_settings: Settings) -> None:
    nc = await nats.connect(own_settings.effective_nats_url)
    try:
        broken = str(ids.uuid7())
        await nc.jetstream().publish(
            subjects.event("job", broken, "created"), b'{"type": "job.created", [', headers={"ccn-type": "job.created"}
        )
    finally:
        await nc.drain()
    async with schedulers(own_settings, 1) as [replica], scheduler_client(own_settings.effective_nats_url) as api:
        assert replica.owner.last_replay is not None and replica.owner.last_replay.skipped == 1
        job = await api.create("after the poison")
        assert [o.job_id for o in (await api.claim("n1", wait_s=2)).offers] == [job.job_id]


async def test_leases_expire_while_no_projection_runs(own_settings: Settings) -> None:
    """Expiry works from the owner's board, not from community_jobs: with no projector at all,
    an unrenewed lease still ends and the job goes to the next node."""
    async with (
        open_runtime("scheduler", msgspec.structs.replace(own_settings, replica_id="no-projector")) as runtime,
        scheduler_client(own_settings.effective_nats_url) as api,
    ):
        await start_scheduler(runtime, health=False, payload_types=JOB_TYPES, options=FAST, project=False)
        await answering(own_settings.effective_nats_url)
        job = await api.create("abandoned unprojected", lease_s=1.0)
        assert [o.job_id for o in (await api.claim("n1", wait_s=2)).offers] == [job.job_id]
        again = await api.claim("n2", wait_s=8)
        assert [(o.job_id, o.attempt) for o in again.offers] == [(job.job_id, 2)]
        conn = await asyncpg.connect(own_settings.effective_database_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM community_jobs") == 0  # nothing was projected
        finally:
            await conn.close()


async def test_creations_past_the_bound_are_refused_at_once_and_nothing_is_half_made(
    own_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_handlers, "MAX_CREATING", 4)
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        client = CommandClient(api.nc, timeout=10)

        async def batch(index: int) -> CreateBatchReply | Unavailable:
            command = CreateBatch(
                batch_id=f"flood-{index}", jobs=[BatchJob(job_type="echo", payload={"text": str(i)}) for i in range(3)]
            )
            try:
                return await client.call("scheduler", "create_batch", command, CreateBatchReply, correlation_id="c")
            except Unavailable as refused:
                return refused

        outcomes = await asyncio.gather(*(batch(index) for index in range(6)))
        refused = [o for o in outcomes if isinstance(o, Unavailable)]
        made = [o for o in outcomes if isinstance(o, CreateBatchReply)]
        assert refused and made, outcomes  # 3 + 3 > 4: the second of two at once waits at its caller
        assert all(o.retry_after is not None and o.retry_after > 0 for o in refused)
        assert all(o.created == 3 for o in made)  # a refused batch made nothing, an admitted one all
        created = [e for e in await job_events(api.nc) if e.type == "job.created"]
        assert len(created) == 3 * len(made)


async def test_a_creation_behind_one_waiting_past_the_bound_is_refused_but_a_begun_batch_goes_on(
    own_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait bound at 0: while a large batch is being created, another submission is refused
    at once with retry_after and makes nothing, while the next chunk of a batch already begun
    is admitted and made whole."""
    monkeypatch.setattr(scheduler_handlers, "CREATE_WAIT_BOUND_S", 0.0)
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        client = CommandClient(api.nc, timeout=30)

        def batch(name: str, jobs: int, *, continues: bool = False) -> CreateBatch:
            items = [BatchJob(job_type="echo", payload={"text": f"{name}-{i}"}) for i in range(jobs)]
            return CreateBatch(batch_id=name, jobs=items, continues_batch=continues)

        async def send(command: CreateBatch) -> CreateBatchReply | Unavailable:
            try:
                return await client.call("scheduler", "create_batch", command, CreateBatchReply, correlation_id="c")
            except Unavailable as refused:
                return refused

        # sent in this order on one connection: the later two reach the owner while the first
        # (a thousand appends) is in hand
        large, newcomer, chunk = await asyncio.gather(
            send(batch("large", 1000)), send(batch("newcomer", 5)), send(batch("begun", 5, continues=True))
        )
        assert isinstance(large, CreateBatchReply) and large.created == 1000
        assert isinstance(newcomer, Unavailable), newcomer
        assert newcomer.retry_after is not None and newcomer.retry_after > 0
        assert isinstance(chunk, CreateBatchReply) and chunk.created == 5
        created = [e for e in await job_events(api.nc) if e.type == "job.created"]
        assert len(created) == 1005  # the refused one made nothing
        again = await send(batch("newcomer", 5))  # nothing in hand now: admitted
        assert isinstance(again, CreateBatchReply) and again.created == 5


async def test_a_hello_naming_its_running_jobs_gives_back_the_others_at_once(own_settings: Settings) -> None:
    """An offer lost with a dead edge: the node's hello on its next connection does not name the
    job, so it goes back now instead of when a heartbeat or the lease says so."""
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        kept, lost = await api.create("still running", lease_s=600), await api.create("never arrived", lease_s=600)
        offers = (await api.claim("n1", concurrency=2, slots=2, wait_s=2)).offers
        assert {o.job_id for o in offers} == {kept.job_id, lost.job_id}
        held = await api.call(HeldJobs(node_id="n1", running=[kept.job_id]), HeldJobsReply)
        assert [job.job_id for job in held.jobs] == [kept.job_id]
        again = await api.claim("n2", wait_s=5)
        assert [o.job_id for o in again.offers] == [lost.job_id]
        assert (await api.job(kept.job_id)).holder == "n1"
