"""The orchestrator log against real NATS and Postgres, fed by the real scheduler (two replicas)
and registry: every step of six jobs' lives — completed, failed and retried to death, cancelled,
abandoned on lease expiry, released when its node opted out and reassigned, handed back unworked
and claimed again — and every step of a registered node's own life becomes rows with the right
node, replica, correlation and causation; GET /admin/orchestrator-log filters, pages and refuses;
`ccn log` prints a job's life and a node's (its own steps and its jobs', interleaved); dropping
and replaying both streams rebuilds it row for row.

The module shares one NATS server and database of its own and one written history: the tests
read it, and the rebuild test compares the whole table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_analytics.__main__ import start_analytics
from ccn_analytics.orchestrator_node_projection import orchestrator_log_projections
from ccn_core.commands import CommandClient
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.errors import Unavailable
from ccn_core.eventstore import EventStore
from ccn_core.projection import rebuild
from ccn_core.retry_policy import RetryPolicy
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import JOBS, NODES, ORCHESTRATOR_LOG, ORCHESTRATOR_NODE_LOG
from ccn_proto.canonical import result_checksum
from ccn_proto.envelope import Envelope
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
    CancelJob,
    CancelJobReply,
    ClaimJobs,
    ClaimJobsReply,
    CreateJob,
    CreateJobReply,
    FailJob,
    FailJobReply,
    GetJob,
    JobView,
    ReleaseJob,
    ReleaseJobReply,
    SubmitResult,
    SubmitResultReply,
)
from ccn_registry.app import start_registry
from ccn_scheduler.app import SchedulerOptions, start_scheduler
from tests.conftest import free_port, make_settings, migrated_database, with_topology
from tests.support.servers import start_nats
from tests.support.validation import validation_service

R = TypeVar("R")
REPLICAS = {"scheduler-0", "scheduler-1"}
FAST = SchedulerOptions(
    retry_policy=RetryPolicy(base_s=0.2, cap_s=0.4), lease_scan_interval_s=0.2, projection_idle_wait_s=0.1
)
_decode = msgspec.json.Decoder(Envelope[Any]).decode


class EchoPayload(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class Story(msgspec.Struct, kw_only=True):
    started: datetime
    jobs: dict[str, str]  # label -> job id
    correlations: dict[str, str]  # label -> the creating request's correlation id
    nodes: dict[str, str]  # label -> node id
    optout_correlation: str
    optout_event_id: str
    node_correlations: list[str]  # the registered node's own requests, in the order it made them
    secrets: list[str]  # payload and result texts: none may reach the log


class World(msgspec.Struct, kw_only=True):
    settings: Settings
    story: Story


class Caller:
    """Commands over NATS as the edge sends them, retrying briefly on Unavailable."""

    def __init__(self, nc: NATS) -> None:
        self.client = CommandClient(nc, timeout=15.0)

    async def call(self, service: str, command: msgspec.Struct, reply_type: type[R], correlation_id: str) -> R:
        name = type(command).__struct_config__.tag
        assert isinstance(name, str)
        for _ in range(40):
            try:
                return await self.client.call(service, name, command, reply_type, correlation_id=correlation_id)
            except Unavailable as exc:
                unavailable = exc
                await asyncio.sleep(0.05)
        raise unavailable


async def write_story(caller: Caller) -> Story:
    tag = secrets.token_hex(3)
    corr = {label: f"corr-{label}-{tag}" for label in "ABCDEF"}
    nodes = {label: f"{label}-{tag}" for label in ("n1", "n2", "n3")}
    jobs: dict[str, str] = {}
    texts: list[str] = []

    async def scheduler(command: msgspec.Struct, reply_type: type[R], correlation_id: str) -> R:
        return await caller.call("scheduler", command, reply_type, correlation_id)

    async def create(label: str, **fields: Any) -> str:
        text = f"payload-{label}-{tag}"
        texts.append(text)
        command = CreateJob(job_type="echo", payload={"text": text}, **fields)
        jobs[label] = (await scheduler(command, CreateJobReply, corr[label])).job_id
        return jobs[label]

    async def claim(node: str, job_id: str) -> None:
        command = ClaimJobs(node_id=node, job_types=["echo"], concurrency=1, slots=1, wait_s=5)
        reply = await scheduler(command, ClaimJobsReply, f"claim-{secrets.token_hex(4)}")
        assert [offer.job_id for offer in reply.offers] == [job_id]

    async def submit(label: str, node: str) -> None:
        result = {"text": f"result-{label}-{tag}"}
        texts.append(result["text"])
        command = SubmitResult(node_id=node, job_id=jobs[label], result=result, checksum=result_checksum(result))
        assert (await scheduler(command, SubmitResultReply, corr[label])).status == "validating"
        await settled(label, "completed")  # judged before the story goes on: its steps keep their order

    async def fail(label: str, node: str) -> FailJobReply:
        return await scheduler(
            FailJob(node_id=node, job_id=jobs[label], reason="parser crashed"), FailJobReply, corr[label]
        )

    async def settled(label: str, status: str) -> None:
        async with asyncio.timeout(15):
            while (await scheduler(GetJob(job_id=jobs[label]), JobView, "probe")).status != status:
                await asyncio.sleep(0.05)

    started = datetime.now(UTC)
    # A: claimed, result submitted, completed
    await claim(nodes["n1"], await create("A"))
    await submit("A", nodes["n1"])
    # F: handed back unworked (its node left before the offer reached it), claimed again: the
    # same attempt, at once
    await claim(nodes["n3"], await create("F"))
    released = ReleaseJob(node_id=nodes["n3"], job_id=jobs["F"], reason="the node left before the offer reached it")
    assert (await scheduler(released, ReleaseJobReply, corr["F"])).status == "queued"
    await claim(nodes["n2"], jobs["F"])
    await submit("F", nodes["n2"])
    # B: fails, is retried on another node, fails again with no retries left: dead
    await claim(nodes["n1"], await create("B", max_retries=1))
    assert (await fail("B", nodes["n1"])).status == "retry_wait"
    await claim(nodes["n2"], jobs["B"])
    assert (await fail("B", nodes["n2"])).status == "dead"
    # C: cancelled before anyone claims it
    await create("C")
    await scheduler(CancelJob(job_id=jobs["C"], reason="operator"), CancelJobReply, corr["C"])
    # D: its lease runs out unrenewed; no retries: abandoned, then dead (the claim owner's lease sweep decides)
    await claim(nodes["n3"], await create("D", lease_s=1.0, max_retries=0))
    await settled("D", "dead")
    # E: its node (a registered one, whose own life is logged too: registered, consent, a
    # second session that ends) opts out while holding it; released at once, reassigned, completed
    node_corr = [f"corr-{step}-{tag}" for step in ("reg", "consent", "session", "bye")]
    registered = await caller.call("registry", RegisterNode(consent_flag=True), RegisterNodeReply, node_corr[0])
    nodes["registered"] = registered.node_public_id
    version = current_consent_version()
    consent = RecordConsent(
        api_token=registered.api_token, consent_version=version, consent_hash=consent_catalogue()[version]
    )
    await caller.call("registry", consent, ConsentReply, node_corr[1])
    session = StartSession(api_token=registered.api_token)
    second = await caller.call("registry", session, StartSessionReply, node_corr[2])
    await claim(registered.node_public_id, await create("E", lease_s=600.0))
    # one of its two sessions ends: it keeps its job
    await caller.call("registry", EndSession(session_token=second.session_token), EndSessionReply, node_corr[3])
    optout = f"corr-optout-{tag}"
    await caller.call("registry", OptOut(api_token=registered.api_token), OptOutReply, optout)
    await claim(nodes["n1"], jobs["E"])
    await submit("E", nodes["n1"])
    return Story(
        started=started,
        jobs=jobs,
        correlations=corr,
        nodes=nodes,
        optout_correlation=optout,
        optout_event_id="",
        node_correlations=[*node_corr, optout],
        secrets=texts,
    )


async def read_events(nc: NATS, stream: str, subjects: str) -> list[tuple[int, Envelope[Any]]]:
    store = EventStore(nc)
    await store.start()
    try:
        return [(stored.seq, _decode(stored.data)) for stored in await store.read(stream, subjects)]
    finally:
        await store.close()


@pytest.fixture(scope="module")
async def world(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    home = tmp_path_factory.mktemp("orchestrator-log")
    server = start_nats(home / "nats", free_port())
    try:
        dsn = await migrated_database(postgres_server, f"ccn_orch_{secrets.token_hex(6)}")
        settings = make_settings(await with_topology(str(server.url)), dsn, home)
        async with contextlib.AsyncExitStack() as stack:
            registry = await stack.enter_async_context(open_runtime("registry", settings))
            await start_registry(registry, health=False, observe=False)
            for index in range(2):
                replica = msgspec.structs.replace(settings, replica_id=f"scheduler-{index}")
                runtime = await stack.enter_async_context(open_runtime("scheduler", replica))
                await start_scheduler(runtime, health=False, payload_types={"echo": EchoPayload}, options=FAST)
            await stack.enter_async_context(validation_service(settings))
            nc = await nats.connect(settings.effective_nats_url)
            stack.push_async_callback(nc.drain)
            story = await write_story(Caller(nc))
            opted_out = await read_events(nc, NODES.name, f"ccn.node.{story.nodes['registered']}.opted_out")
            story.optout_event_id = opted_out[0][1].event_id
            yield World(settings=settings, story=story)
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def pool(world: World) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(world.settings.effective_database_url, min_size=1, max_size=4) as created:
        yield created


def base_url(settings: Settings) -> str:
    return f"http://{settings.analytics_host}:{settings.analytics_port}"


@contextlib.asynccontextmanager
async def running_analytics(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[None]:
    """The analytics service as wired by its __main__, caught up with the job and node streams."""
    async with open_runtime("analytics", settings) as runtime:
        await start_analytics(runtime)
        nc = runtime.nc
        async with httpx.AsyncClient(base_url=base_url(settings)) as client, asyncio.timeout(20):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
            query = "SELECT last_seq FROM projection_checkpoints WHERE projection = $1"
            for stream, durable in ((JOBS.name, ORCHESTRATOR_LOG.durable), (NODES.name, ORCHESTRATOR_NODE_LOG.durable)):
                last = (await nc.jetstream().stream_info(stream)).state.last_seq
                while (await pool.fetchval(query, durable) or 0) < last:
                    await asyncio.sleep(0.05)
        yield


@pytest.fixture
async def admin(world: World, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {world.settings.admin_token}"}
    async with (
        running_analytics(world.settings, pool),
        httpx.AsyncClient(base_url=base_url(world.settings), headers=headers) as client,
    ):
        yield client


_ORDER = "occurred_at, stream_seq, stream, step"


async def all_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT *, event_id::text AS id FROM orchestrator_log ORDER BY {_ORDER}")


EXPECTED_STEPS = {
    "A": ["job_created", "job_claimed", "job_result_submitted", "job_completed"],
    "B": [
        "job_created",
        "job_claimed",
        "job_failed",
        "job_retried",
        "job_reassigned",
        "job_failed",
        "job_dead",
    ],
    "C": ["job_created", "job_cancelled"],
    "D": ["job_created", "job_claimed", "job_abandoned", "job_dead"],
    "E": [
        "job_created",
        "job_claimed",
        "job_abandoned",
        "job_retried",
        "job_reassigned",
        "job_result_submitted",
        "job_completed",
    ],
    # the release spends no attempt: the second claim is the first attempt again
    "F": ["job_created", "job_claimed", "job_released", "job_claimed", "job_result_submitted", "job_completed"],
}
# n2's steps: it completed F (claimed after n3 released it), then failed B's second attempt
N2_STEPS = ["job_claimed", "job_result_submitted", "job_completed", "job_reassigned", "job_failed"]
# the registered node's whole life, its own steps and its job's interleaved in time
NODE_LIFE = [
    "node_registered",
    "node_consent_recorded",
    "node_session_started",
    "job_claimed",
    "node_session_ended",
    "node_opted_out",
    "job_abandoned",
]


async def test_each_step_of_each_job_is_a_row_with_node_replica_and_why(
    world: World, pool: asyncpg.Pool, admin: httpx.AsyncClient
) -> None:
    story = world.story
    nc = await nats.connect(world.settings.effective_nats_url)
    try:
        events = {env.event_id: (seq, env) for seq, env in await read_events(nc, JOBS.name, "ccn.job.*.*")}
    finally:
        await nc.drain()
    n1, n2, n3, registered = (story.nodes[k] for k in ("n1", "n2", "n3", "registered"))
    for label, steps in EXPECTED_STEPS.items():
        rows = [r for r in await all_rows(pool) if r["job_id"] == story.jobs[label]]
        assert [r["event"] for r in rows] == steps, label
        for row in rows:
            seq, env = events[row["id"]]
            assert (row["stream"], row["stream_seq"], row["occurred_at"]) == ("CCN_JOBS", seq, env.occurred_at)
            assert (row["event_type"], row["actor_kind"], row["actor_id"]) == (env.type, env.actor.kind, env.actor.id)
            assert (row["correlation_id"], row["causation_id"]) == (env.correlation_id, env.causation_id)
            assert row["recorded_at"] >= row["occurred_at"]
            # the replica that decided it, for a node's own requests (result, failure, release) too
            assert row["replica"] in REPLICAS, row
        by_step = {(r["event"], r["attempt"]): r for r in rows}
        if label == "A":
            assert [r["node_id"] for r in rows] == [None, n1, n1, n1]
            assert {r["correlation_id"] for r in rows} == {story.correlations["A"]}, "one thread, claims included"
            created = msgspec.json.decode(rows[0]["details"])
            assert created == {"job_type": "echo", "priority": 0, "max_retries": 3, "lease_s": 60.0}
        if label == "B":
            assert [(r["node_id"], r["attempt"]) for r in rows] == [
                (None, None), (n1, 1), (n1, 1), (None, 2), (n2, 2), (n2, 2), (None, 2)
            ]  # fmt: skip
            assert '"reason": "parser crashed"' in by_step[("job_failed", 1)]["details"]
            assert '"retry_at"' in by_step[("job_retried", 2)]["details"]
        if label == "D":
            abandoned = by_step[("job_abandoned", 1)]
            assert (abandoned["node_id"], abandoned["actor_kind"], abandoned["causation_id"]) == (n3, "service", None)
            assert '"reason": "lease expired"' in abandoned["details"]
            assert abandoned["correlation_id"] == story.correlations["D"]
        if label == "E":
            released = by_step[("job_abandoned", 1)]
            assert released["node_id"] == registered
            assert '"reason": "node opted out"' in released["details"]
            # caused by the opt-out event, on the job's own thread: one id pulls its whole life
            assert released["causation_id"] == story.optout_event_id
            assert {r["correlation_id"] for r in rows} == {story.correlations["E"]}
            assert by_step[("job_reassigned", 2)]["node_id"] == n1
        if label == "F":
            assert [(r["node_id"], r["attempt"]) for r in rows] == [
                (None, None), (n3, 1), (n3, 1), (n2, 1), (n2, 1), (n2, 1)
            ]  # fmt: skip
            released = rows[2]
            assert (released["actor_kind"], released["actor_id"], released["causation_id"]) == ("node", n3, None)
            assert '"reason": "the node left before the offer reached it"' in released["details"]
            assert {r["correlation_id"] for r in rows} == {story.correlations["F"]}
    stored = " ".join(r["details"] for r in await all_rows(pool))
    assert story.secrets and not any(text in stored for text in story.secrets)
    assert "hash" not in stored and "fingerprint" not in stored and "payload" not in stored


async def test_each_filter_returns_exactly_the_expected_rows(
    world: World, pool: asyncpg.Pool, admin: httpx.AsyncClient
) -> None:
    story, rows = world.story, await all_rows(pool)

    async def log(**params: Any) -> list[tuple[str, int]]:
        response = await admin.get("/admin/orchestrator-log", params={"limit": 1000, **params})
        assert response.status_code == 200, response.text
        return [(entry["event_id"], entry["step"]) for entry in response.json()["entries"]]

    def expected(keep: Any) -> list[tuple[str, int]]:
        found = [(r["id"], r["step"]) for r in rows if keep(r)]
        assert found, "a filter test needs rows to find"
        return found

    for job_id in story.jobs.values():
        assert await log(job_id=job_id) == expected(lambda r, j=job_id: r["job_id"] == j)
    n2 = story.nodes["n2"]
    assert await log(node_id=n2) == expected(lambda r: r["node_id"] == n2)
    assert [r["event"] for r in rows if r["node_id"] == n2] == N2_STEPS
    registered = story.nodes["registered"]
    assert await log(node_id=registered) == expected(lambda r: r["node_id"] == registered)
    assert await log(event="node_session_ended") == expected(lambda r: r["event"] == "node_session_ended")
    corr_b = story.correlations["B"]
    assert await log(correlation_id=corr_b) == expected(lambda r: r["job_id"] == story.jobs["B"])
    optout = story.optout_correlation
    assert await log(correlation_id=optout) == expected(lambda r: r["correlation_id"] == optout)
    # the opt-out's thread is the node's step; the job steps it caused name it as their cause
    assert [r["event"] for r in rows if r["correlation_id"] == optout] == ["node_opted_out"]
    assert [r["event"] for r in rows if r["causation_id"] == story.optout_event_id] == [
        "job_abandoned",
        "job_retried",
    ]
    assert await log(event="job_reassigned") == expected(lambda r: r["event"] == "job_reassigned")
    since = next(r for r in rows if r["event"] == "job_cancelled")["occurred_at"]
    assert await log(since=since.isoformat()) == expected(lambda r: r["occurred_at"] >= since)
    assert await log(event="job_dead", since=since.isoformat()) == expected(
        lambda r: r["event"] == "job_dead" and r["occurred_at"] >= since
    )
    assert await log(job_id=story.jobs["C"], node_id=n2) == []
    assert await log(since=datetime.now(UTC).isoformat().replace("+", " ")) == []


async def test_a_nodes_own_steps_are_rows_of_the_node_stream_interleaved_with_its_jobs(
    world: World, pool: asyncpg.Pool, admin: httpx.AsyncClient
) -> None:
    story = world.story
    registered = story.nodes["registered"]
    nc = await nats.connect(world.settings.effective_nats_url)
    try:
        events = {
            env.event_id: (seq, env) for seq, env in await read_events(nc, NODES.name, f"ccn.node.{registered}.*")
        }
    finally:
        await nc.drain()
    response = await admin.get("/admin/orchestrator-log", params={"node_id": registered})
    entries = response.json()["entries"]
    assert [e["event"] for e in entries] == NODE_LIFE
    own = [e for e in entries if e["event"].startswith("node_")]
    assert len(own) == len(events) == 5
    for entry in own:
        seq, env = events[entry["event_id"]]
        assert (entry["stream"], entry["stream_seq"], entry["event_type"]) == ("CCN_NODES", seq, env.type)
        assert (entry["job_id"], entry["node_id"], entry["attempt"], entry["step"]) == (None, registered, None, 0)
        assert (entry["correlation_id"], entry["causation_id"]) == (env.correlation_id, env.causation_id)
        assert entry["actor"] == {"kind": env.actor.kind, "id": env.actor.id}
    # each of the node's requests is its own thread
    assert [e["correlation_id"] for e in own] == story.node_correlations
    details = {e["event"]: e["details"] for e in own}
    assert details["node_registered"]["consent_flag"] is True
    assert details["node_consent_recorded"]["consent_version"] == current_consent_version()
    started = details["node_session_started"]["session_id"]
    assert details["node_session_ended"] == {"session_id": started}
    assert details["node_opted_out"]["ended_session_ids"] == [details["node_registered"]["session_id"]]
    assert "hash" not in msgspec.json.encode(details).decode()  # token and ip hashes stay out


async def test_entries_carry_the_row_and_page_by_cursor(world: World, admin: httpx.AsyncClient) -> None:
    job_b = world.story.jobs["B"]
    whole = (await admin.get("/admin/orchestrator-log", params={"job_id": job_b})).json()
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"job_id": job_b, "limit": 2}
    while True:
        page = (await admin.get("/admin/orchestrator-log", params=params)).json()
        pages.append(page)
        params["cursor"] = page["next_cursor"]
        if not page["has_more"]:
            break
    assert [len(p["entries"]) for p in pages] == [2, 2, 2, 1]
    assert [e for p in pages for e in p["entries"]] == whole["entries"]
    first = whole["entries"][0]
    assert (first["event"], first["event_type"], first["job_id"], first["node_id"]) == (
        "job_created",
        "job.created",
        job_b,
        None,
    )
    assert first["actor"]["kind"] == "service" and first["replica"] == first["actor"]["id"] in REPLICAS
    assert first["correlation_id"] == world.story.correlations["B"]
    assert first["details"]["max_retries"] == 1
    tail = (await admin.get("/admin/orchestrator-log", params=params)).json()
    assert tail == {"entries": [], "next_cursor": params["cursor"], "has_more": False}


async def test_the_log_refuses_callers_without_the_token_and_bad_parameters(
    world: World, admin: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=base_url(world.settings)) as anonymous:
        token = world.settings.admin_token
        for headers in ({}, {"Authorization": f"Bearer {token}x"}, {"Authorization": f"Basic {token}"}):
            response = await anonymous.get("/admin/orchestrator-log", params={"event": "nope"}, headers=headers)
            assert response.status_code == 401
            assert (response.json()["code"], response.json()["field"]) == ("unauthorized", None)
    for params, field in [
        ({"event": "job_lease_renewed"}, "event"),
        ({"event": "job.created"}, "event"),
        ({"job_id": "a b"}, "job_id"),
        ({"since": "2025-01-31T12:00:00"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ]:
        response = await admin.get("/admin/orchestrator-log", params=params)
        assert response.status_code == 400, (params, response.text)
        assert (response.json()["code"], response.json()["field"]) == ("bad_input", field)
    schema = (await admin.get("/schema/openapi.json")).json()
    operation = schema["paths"]["/admin/orchestrator-log"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "job_id",
        "node_id",
        "correlation_id",
        "event",
        "since",
        "cursor",
        "limit",
    }
    assert operation["security"] == [{"AdminToken": []}]


COLUMNS = ("time (UTC)", "event", "attempt", "job", "node", "replica", "correlation id", "note")


def cells(lines: list[str]) -> list[dict[str, str]]:
    """The rows of `ccn log`'s table, cut at the header's column starts (cells may be empty)."""
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    starts = [header.index(name) for name in COLUMNS]
    ends = [*starts[1:], None]
    return [{name: row[a:b].strip() for name, a, b in zip(COLUMNS, starts, ends, strict=True)} for row in rows]


class Ran(msgspec.Struct):
    code: int
    out: str
    err: str


async def run_ccn(env: dict[str, str], *argv: str) -> Ran:
    """`ccn` as a user runs it: its own process, configured by the environment only."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccn_cli.main",
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def test_ccn_log_prints_a_jobs_whole_life(world: World, admin: httpx.AsyncClient, tmp_path: Path) -> None:
    settings, story = world.settings, world.story
    env = {
        "CCN_HOME": str(tmp_path),  # no stack state there: the configured analytics address is used
        "CCN_ANALYTICS_HOST": settings.analytics_host,
        "CCN_ANALYTICS_PORT": str(settings.analytics_port),
        "CCN_ADMIN_TOKEN": settings.admin_token,
        "COLUMNS": "300",
    }
    ran = await run_ccn(env, "log", "--job", story.jobs["E"])
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    table = cells(lines[: 1 + len(EXPECTED_STEPS["E"])])
    assert [row["event"] for row in table] == EXPECTED_STEPS["E"]
    assert {row["job"] for row in table} == {story.jobs["E"]}
    registered, n1 = story.nodes["registered"], story.nodes["n1"]
    assert [row["node"] for row in table] == ["-", registered, registered, "-", n1, n1, n1]
    assert [row["attempt"] for row in table] == ["", "1", "1", "2", "2", "2", "2"]
    assert table[0]["replica"] in REPLICAS and table[0]["correlation id"] == story.correlations["E"]
    assert table[2]["note"].startswith("node opted out; retry at ")
    assert {row["correlation id"] for row in table} == {story.correlations["E"]}
    assert lines[-1] == f"the request that created it: ccn log --correlation-id {story.correlations['E']}"

    for label in ("B", "E"):  # E's release by the opt-out reactor included
        ran = await run_ccn(env, "log", "--correlation-id", story.correlations[label])
        assert [row["event"] for row in cells(ran.out.splitlines())] == EXPECTED_STEPS[label]
    ran = await run_ccn(env, "log", "--node", story.nodes["n2"])
    assert [row["event"] for row in cells(ran.out.splitlines())] == N2_STEPS
    # a node's whole life: its own steps (no job) and its job's, in time order
    ran = await run_ccn(env, "log", "--node", registered)
    assert ran.code == 0, ran.err
    table = cells(ran.out.splitlines())
    assert [row["event"] for row in table] == NODE_LIFE
    assert [row["job"] for row in table] == ["-", "-", "-", story.jobs["E"], "-", "-", story.jobs["E"]]
    assert {row["node"] for row in table} == {registered}

    ran = await run_ccn(env, "log", "--job", "no-such-job")
    assert (ran.code, ran.out) == (1, "")
    assert "no orchestrator log entries for job_id=no-such-job" in ran.err
    ran = await run_ccn({**env, "CCN_ADMIN_TOKEN": "wrong"}, "log", "--job", story.jobs["A"])
    assert ran.code == 1 and "refused the admin token" in ran.err
    ran = await run_ccn({**env, "CCN_ANALYTICS_PORT": str(free_port())}, "log", "--job", story.jobs["A"])
    assert ran.code == 1 and "not reachable" in ran.err and "ccn up" in ran.err


async def snapshot(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    # recorded_at says when a row was projected, so it is the one column a replay changes
    rows = await pool.fetch(
        "SELECT event_id, step, stream, stream_seq, occurred_at, event, event_type, job_id, node_id, replica,"
        " actor_kind, actor_id, correlation_id, causation_id, attempt, details::text"
        " FROM orchestrator_log ORDER BY stream, stream_seq, step"
    )
    return [tuple(row) for row in rows]


async def test_rebuild_by_replay_equals_the_live_table(world: World, pool: asyncpg.Pool) -> None:
    async with running_analytics(world.settings, pool):
        live = await snapshot(pool)
    node_rows = len([step for step in NODE_LIFE if step.startswith("node_")])
    assert len(live) == sum(len(steps) for steps in EXPECTED_STEPS.values()) + node_rows
    assert {row[2] for row in live} == {"CCN_JOBS", "CCN_NODES"}

    await rebuild(pool, *orchestrator_log_projections())
    assert await snapshot(pool) == []
    async with running_analytics(world.settings, pool):
        assert await snapshot(pool) == live
