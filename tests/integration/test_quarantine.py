"""Quarantine and receipt delivery against real NATS and PostgreSQL, through the edge: admins
release and discard rejected results (POST /admin/quarantine/{job_id}/release|discard) and every
bad request gets a typed error; a release settles the job with the submitted result, or says the
job completed otherwise; the quarantine read model lists and shows them, the audit trail has
each decision with its admin and correlation id, and a replay rebuilds the table row for row; a
receipt reaches the node it names and no other (GET /compute/jobs/{job_id}/receipt), and the
node's background fetcher stores a receipt issued after it started asking. And the whole way with
the real scheduler and validation service: a forged result is rejected, its node gets the
receipt of the rejection, and an admin's release completes the job with it.

Most tests here write the job and verdict events directly and answer settle_results with a
recording stand-in (FakeScheduler), so each sees exactly what a release asks of the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.js import JetStreamContext

from ccn_analytics.__main__ import start_analytics
from ccn_analytics.quarantine_projection import QuarantineReadModel
from ccn_cli.main import main
from ccn_cli.node.edge_http import EdgeHttp
from ccn_cli.node.receipt_fetcher import PendingReceipts, ReceiptFetcher
from ccn_cli.node.receipts_store import stored_receipts
from ccn_core.aggregate import outgoing_event
from ccn_core.commands import CommandClient as Commands
from ccn_core.commands import CommandContext, CommandServer
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.errors import Conflict
from ccn_core.eventstore import EventStore
from ccn_core.projection import rebuild
from ccn_core.receipts import ServiceKey, sign_receipt
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import AUDIT_RESULTS_LOG, QUARANTINE_READ_MODEL, RESULTS
from ccn_edge.app import start_edge
from ccn_jobs.result_validation import Verdict
from ccn_proto.canonical import result_checksum
from ccn_proto.commands import CommandError
from ccn_proto.consensus import ConsensusPartial
from ccn_proto.envelope import Actor
from ccn_proto.jobs import JobClaimed, JobCreated, JobResultSubmitted
from ccn_proto.receipts import Receipt
from ccn_proto.results import Reason, ReceiptIssued, ResultDiscarded, ResultRejected, ResultValidated
from ccn_proto.scheduler import (
    ClaimJobs,
    ClaimJobsReply,
    CreateJob,
    CreateJobReply,
    GetJob,
    JobView,
    SettledOutcome,
    SettledResult,
    SettleResults,
    SettleResultsReply,
    SubmitResult,
    SubmitResultReply,
)
from ccn_registry.app import start_registry
from ccn_scheduler.app import start_scheduler
from ccn_validation.quarantine_commands import QuarantineCommands
from tests.conftest import make_settings
from tests.integration.test_domains_cli import SERVER_LOG_LINE
from tests.integration.test_scheduler import FAST, JOB_TYPES, answering
from tests.support.servers import until_ready
from tests.support.validation import judge_with_test_types, validation_service

pytestmark = pytest.mark.timeout(120)

SERVICE = Actor(kind="service", id="test")
KEY = ServiceKey("k-test", Ed25519PrivateKey.generate())


@dataclass
class FakeScheduler:
    """settle_results only: records each item; a job in `completed_elsewhere` is refused as the
    scheduler refuses a job no longer waiting for this result."""

    settled: list[SettledResult] = field(default_factory=list)
    completed_elsewhere: set[str] = field(default_factory=set)

    async def settle(self, command: SettleResults, ctx: CommandContext) -> SettleResultsReply:
        outcomes = []
        for item in command.items:
            self.settled.append(item)
            if item.job_id in self.completed_elsewhere:
                error = CommandError(code=Conflict.code, message=f"job {item.job_id} is completed")
                outcomes.append(SettledOutcome(job_id=item.job_id, error=error))
            else:
                outcomes.append(SettledOutcome(job_id=item.job_id, status="completed"))
        return SettleResultsReply(outcomes=outcomes)


@dataclass
class Stack:
    settings: Settings
    url: str
    store: EventStore
    js: JetStreamContext
    scheduler: FakeScheduler
    pool: asyncpg.Pool
    http: aiohttp.ClientSession

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.admin_token}"}


@contextlib.asynccontextmanager
async def analytics_running(settings: Settings) -> AsyncIterator[None]:
    async with open_runtime("analytics", settings) as runtime:
        await start_analytics(runtime)
        yield


@pytest.fixture
async def stack(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = make_settings(isolated_nats, fresh_database, tmp_path)
    scheduler = FakeScheduler()
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_runtime("registry", settings))
        await start_registry(registry, health=False, observe=False)
        validation = await stack.enter_async_context(open_runtime("validation", settings, needs_postgres=False))
        commands = CommandServer(validation.nc, "validation")
        QuarantineCommands(validation.store, Commands(validation.nc, timeout=5)).register_all(commands)
        await commands.start()
        stack.push_async_callback(commands.stop)
        settle = CommandServer(validation.nc, "scheduler")
        settle.register("settle_results", SettleResults, scheduler.settle)
        await settle.start()
        stack.push_async_callback(settle.stop)
        edge = await stack.enter_async_context(open_runtime("edge", settings, needs_postgres=False))
        start_edge(edge)
        pool = await stack.enter_async_context(
            asyncpg.create_pool(settings.effective_database_url, min_size=1, max_size=4)
        )
        http = await stack.enter_async_context(aiohttp.ClientSession())
        url = f"http://127.0.0.1:{settings.edge_port}"
        await until_ready(http, url)
        yield Stack(
            settings=settings,
            url=url,
            store=validation.store,
            js=validation.js,
            scheduler=scheduler,
            pool=pool,
            http=http,
        )


async def append(store: EventStore, aggregate: str, aggregate_id: str, event: Any, correlation_id: str) -> int:
    ack = await store.append(
        outgoing_event(aggregate, aggregate_id, event, correlation_id=correlation_id, actor=SERVICE)
    )
    return ack.seq


@dataclass(frozen=True)
class Rejected:
    job_id: str
    node_id: str
    attempt: int
    checksum: str
    result: dict[str, Any]

    def body(self, comment: str = "checked by hand: the source says so", **changes: Any) -> dict[str, Any]:
        return {"node_id": self.node_id, "attempt": self.attempt, "checksum": self.checksum, "comment": comment} | (
            changes
        )


async def rejected_result(stack: Stack, node_id: str = "node-a", job_type: str = "extract_text") -> Rejected:
    """A job whose node submitted a result that the validation service rejected, as the events say."""
    job_id = f"job-{uuid.uuid4().hex[:12]}"
    result = {"text": "", "language": "xx"}
    checksum = result_checksum(result)
    store, thread = stack.store, f"thread-{job_id}"
    await append(store, "job", job_id, JobCreated(job_type=job_type, payload={"url": "https://example.org"}), thread)
    lease = datetime.now(UTC) + timedelta(minutes=1)
    await append(store, "job", job_id, JobClaimed(node_id=node_id, attempt=1, lease_until=lease), thread)
    submitted = JobResultSubmitted(node_id=node_id, attempt=1, job_type=job_type, result=result, checksum=checksum)
    await append(store, "job", job_id, submitted, thread)
    reasons = (
        Reason(code="mandatory", field="text", message="text is empty"),
        Reason(code="format", field="language", message="not an ISO 639-1 code"),
    )
    verdict = ResultRejected(
        node_id=node_id,
        attempt=1,
        checksum=checksum,
        job_type=job_type,
        job_type_version="3",
        rules_version="rules.1",
        reasons=reasons,
    )
    await append(store, "result", job_id, verdict, thread)
    return Rejected(job_id=job_id, node_id=node_id, attempt=1, checksum=checksum, result=result)


async def post(stack: Stack, path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else msgspec.json.encode(body)
    headers = {"Content-Type": "application/json", **(stack.admin if headers is None else headers)}
    async with stack.http.post(f"{stack.url}{path}", data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def analytics_get(stack: Stack, path: str, **params: Any) -> tuple[int, Any]:
    url = f"http://{stack.settings.analytics_host}:{stack.settings.analytics_port}{path}"
    async with stack.http.get(url, params=params, headers=stack.admin) as response:
        return response.status, await response.json(content_type=None)


async def projected(stack: Stack, *durables: str) -> None:
    last = (await stack.js.stream_info(RESULTS.name)).state.last_seq
    async with asyncio.timeout(20):
        for durable in durables:
            while True:
                done = await stack.pool.fetchval(
                    "SELECT last_seq FROM projection_checkpoints WHERE projection = $1", durable
                )
                if done is not None and done >= last:
                    break
                await asyncio.sleep(0.05)


async def test_admins_release_and_discard_rejected_results_and_the_read_model_and_audit_follow(
    stack: Stack,
) -> None:
    released = await rejected_result(stack, "node-a")
    kept_elsewhere = await rejected_result(stack, "node-b")
    discarded = await rejected_result(stack, "node-a", job_type="classify_document")

    headers = {**stack.admin, "X-Correlation-ID": "release-by-hand-1"}
    status, reply = await post(stack, f"/admin/quarantine/{released.job_id}/release", released.body(), headers)
    assert status == 200, reply
    assert (reply["decision"], reply["changed"], reply["job_status"]) == ("released", True, "completed")
    settled = stack.scheduler.settled[-1]
    assert (settled.job_id, settled.node_id, settled.attempt, settled.checksum) == (
        released.job_id,
        released.node_id,
        1,
        released.checksum,
    )
    assert (settled.verdict, settled.released_by) == ("complete", stack.settings.admin_name)
    assert settled.result == released.result
    assert settled.correlation_id == f"thread-{released.job_id}"  # the job's own thread

    # the same release again changes nothing and settles again; a discard of it is a conflict
    status, again = await post(stack, f"/admin/quarantine/{released.job_id}/release", released.body())
    assert (status, again["changed"]) == (200, False)
    status, refused = await post(stack, f"/admin/quarantine/{released.job_id}/discard", released.body())
    assert (status, refused["code"]) == (409, "conflict")

    stack.scheduler.completed_elsewhere.add(kept_elsewhere.job_id)
    status, reply = await post(stack, f"/admin/quarantine/{kept_elsewhere.job_id}/release", kept_elsewhere.body())
    assert status == 200 and "job_status" not in reply
    assert reply["settle_error"]["code"] == "conflict"
    assert "did not take the result: job" in reply["settle_error"]["message"]

    status, reply = await post(
        stack, f"/admin/quarantine/{discarded.job_id}/discard", discarded.body("a forged value; never use it")
    )
    assert (status, reply["decision"], reply["changed"]) == (200, "discarded", True)
    assert "job_status" not in reply and len(stack.scheduler.settled) == 3  # a discard settles nothing

    async with analytics_running(stack.settings):
        await projected(stack, QUARANTINE_READ_MODEL.durable, AUDIT_RESULTS_LOG.durable)
        before = await read_model_checks(stack, released, kept_elsewhere, discarded)
    # dropped and replayed, the read model is what it was
    await rebuild(stack.pool, QuarantineReadModel())
    assert await stack.pool.fetchval("SELECT count(*) FROM quarantined_results") == 0
    async with analytics_running(stack.settings):
        await projected(stack, QUARANTINE_READ_MODEL.durable)
        after = [tuple(row) for row in await stack.pool.fetch("SELECT * FROM quarantined_results ORDER BY job_id")]
    assert after == before and len(after) == 3


async def read_model_checks(
    stack: Stack, released: Rejected, kept_elsewhere: Rejected, discarded: Rejected
) -> list[Any]:
    """The read model's pages, filters and detail, and the audit rows; the table's rows."""
    status, page = await analytics_get(stack, "/admin/quarantine", limit=2)
    assert status == 200 and page["has_more"]
    status, rest = await analytics_get(stack, "/admin/quarantine", cursor=page["next_cursor"])
    listed = page["results"] + rest["results"]
    assert [(r["job_id"], r["status"]) for r in listed] == [
        (released.job_id, "released"),
        (kept_elsewhere.job_id, "released"),
        (discarded.job_id, "discarded"),
    ]
    first = listed[0]
    assert (first["decided_by"], first["comment"], first["decision_correlation_id"]) == (
        stack.settings.admin_name,
        "checked by hand: the source says so",
        "release-by-hand-1",
    )
    assert [reason["code"] for reason in first["reasons"]] == ["mandatory", "format"]
    assert first["correlation_id"] == f"thread-{released.job_id}"
    by_filter = {
        "status=discarded": await analytics_get(stack, "/admin/quarantine", status="discarded"),
        "node_id=node-b": await analytics_get(stack, "/admin/quarantine", node_id="node-b"),
        "job_type=classify_document": await analytics_get(stack, "/admin/quarantine", job_type="classify_document"),
    }
    assert {name: [r["job_id"] for r in page["results"]] for name, (_, page) in by_filter.items()} == {
        "status=discarded": [discarded.job_id],
        "node_id=node-b": [kept_elsewhere.job_id],
        "job_type=classify_document": [discarded.job_id],
    }
    status, detail = await analytics_get(stack, f"/admin/quarantine/{discarded.job_id}")
    assert status == 200 and [r["comment"] for r in detail["results"]] == ["a forged value; never use it"]
    for params, code in (
        ({"status": "pending"}, 400),
        ({"limit": 0}, 400),
        ({"limit": 1001}, 400),
        ({"cursor": "not-ours"}, 400),
        ({"job_type": "Bad Type"}, 400),
    ):
        assert (await analytics_get(stack, "/admin/quarantine", **params))[0] == code, params
    assert (await analytics_get(stack, "/admin/quarantine/no-such-job"))[0] == 404

    audit = await stack.pool.fetch(
        "SELECT aggregate_id, event_type, actor_kind, actor_id, correlation_id, details::text "
        "FROM audit_log WHERE aggregate_type = 'result' ORDER BY stream_seq"
    )
    assert [(row["aggregate_id"], row["event_type"]) for row in audit] == [
        (released.job_id, "result.released"),
        (kept_elsewhere.job_id, "result.released"),
        (discarded.job_id, "result.discarded"),
    ]
    assert {(row["actor_kind"], row["actor_id"]) for row in audit} == {("admin", stack.settings.admin_name)}
    assert audit[0]["correlation_id"] == "release-by-hand-1"
    assert msgspec.json.decode(audit[2]["details"]) == {
        "node_id": "node-a",
        "attempt": 1,
        "checksum": discarded.checksum,
        "by": stack.settings.admin_name,
        "comment": "a forged value; never use it",
    }

    return [tuple(row) for row in await stack.pool.fetch("SELECT * FROM quarantined_results ORDER BY job_id")]


async def test_every_bad_quarantine_request_gets_a_typed_error(stack: Stack) -> None:
    rejected = await rejected_result(stack)
    release = f"/admin/quarantine/{rejected.job_id}/release"
    cases: list[tuple[str, str, Any, dict[str, str] | None, int, str | None]] = [
        ("unknown job", "/admin/quarantine/no-such-job/release", rejected.body(), None, 404, "not_found"),
        ("unknown job, discard", "/admin/quarantine/no-such-job/discard", rejected.body(), None, 404, "not_found"),
        ("wrong attempt", release, rejected.body(attempt=2), None, 404, "not_found"),
        ("wrong node", release, rejected.body(node_id="node-z"), None, 404, "not_found"),
        ("wrong checksum", release, rejected.body(checksum="0" * 64), None, 404, "not_found"),
        ("control characters", release, rejected.body("fine\x1b[2Jnot fine"), None, 400, None),
        ("a line break", release, rejected.body("two\nlines"), None, 400, None),
        ("an empty comment", release, rejected.body(""), None, 400, None),
        ("a comment too long", release, rejected.body("x" * 2001), None, 400, None),
        ("a negative attempt", release, rejected.body(attempt=-1), None, 400, None),
        ("an unknown field", release, rejected.body(by="someone-else"), None, 400, None),
        ("not JSON", release, b"{nope", None, 400, None),
        ("a bad job id", "/admin/quarantine/bad%20id/release", rejected.body(), None, 400, None),
        ("oversized", release, rejected.body("y" * (stack.settings.max_body_bytes + 1)), None, 413, None),
        ("no token", release, rejected.body(), {}, 401, None),
        ("a wrong token", release, rejected.body(), {"Authorization": "Bearer not-the-admin"}, 401, None),
    ]
    for name, path, body, headers, expected, code in cases:
        status, reply = await post(stack, path, body, headers)
        assert status == expected, (name, reply)
        assert isinstance(reply, dict) and reply.get("message"), (name, reply)
        if code is not None:
            assert reply["code"] == code, (name, reply)
    assert stack.scheduler.settled == []  # nothing refused reached the scheduler
    # and nothing refused was recorded: the result is still undecided. The first job of a replica
    # group has its consensus events on the same aggregate: they are read past, not refused
    partial = ConsensusPartial(results=1, classes=1, agreeing=1, quorum=2, awaiting=1)
    await append(stack.store, "result", rejected.job_id, partial, f"thread-{rejected.job_id}")
    status, reply = await post(stack, f"/admin/quarantine/{rejected.job_id}/discard", rejected.body())
    assert (status, reply["changed"]) == (200, True)


async def registered(stack: Stack) -> dict[str, Any]:
    async with stack.http.post(
        f"{stack.url}/compute/register-node",
        json={"consent_flag": True, "user_agent": "test-node/0.1"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    ) as response:
        assert response.status == 201
        node: dict[str, Any] = await response.json()
    version = current_consent_version()
    async with stack.http.post(
        f"{stack.url}/compute/consent",
        json={"consent_version": version, "consent_hash": consent_catalogue()[version]},
        headers={"Authorization": f"Bearer {node['api_token']}"},
    ) as response:
        assert response.status == 200
    return node


async def issue_receipt(stack: Stack, job_id: str, node_id: str, attempt: int = 1, *, legacy: bool = False) -> Receipt:
    """A verdict carrying its receipt, as the validation service writes it; `legacy`: a receipt as
    an event of its own, as releases before ADR 0027 wrote it."""
    receipt = sign_receipt(
        KEY,
        job_id=job_id,
        attempt=attempt,
        node_id=node_id,
        result_checksum="c" * 64,
        verdict="validated",
        issued_at=datetime.now(UTC),
    )
    verdict = ResultValidated(
        node_id=node_id,
        attempt=attempt,
        checksum="c" * 64,
        job_type="extract_text",
        job_type_version="1",
        rules_version="1",
        receipt=receipt,
    )
    event = ReceiptIssued(receipt=receipt) if legacy else verdict
    await append(stack.store, "result", job_id, event, f"thread-{job_id}")
    return receipt


async def receipt_of(stack: Stack, job_id: str, token: str | None) -> tuple[int, Any]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with stack.http.get(f"{stack.url}/compute/jobs/{job_id}/receipt", headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_a_receipt_reaches_the_node_it_names_and_no_other(stack: Stack) -> None:
    mine, theirs = await registered(stack), await registered(stack)
    receipt = await issue_receipt(stack, "job-r1", mine["node_public_id"])
    status, body = await receipt_of(stack, "job-r1", mine["session_token"])
    assert status == 200 and msgspec.convert(body, Receipt) == receipt
    status, body = await receipt_of(stack, "job-r1", theirs["session_token"])
    assert (status, body["code"]) == (403, "forbidden")
    status, body = await receipt_of(stack, "job-r2", mine["session_token"])
    assert (status, body["code"]) == (404, "not_found")
    assert (await receipt_of(stack, "job-r1", None))[0] == 401
    assert (await receipt_of(stack, "job-r1", mine["api_token"]))[0] == 401  # a session token, not the API token
    assert (await receipt_of(stack, "bad.id", mine["session_token"]))[0] == 400
    # a later receipt for the job (its result finalised) is the one served
    newer = await issue_receipt(stack, "job-r1", mine["node_public_id"], attempt=1)
    status, body = await receipt_of(stack, "job-r1", mine["session_token"])
    assert status == 200 and msgspec.convert(body, Receipt) == newer
    # the job tried again on another node: each node still gets its own, a third none
    retried = await issue_receipt(stack, "job-r1", theirs["node_public_id"], attempt=2)
    status, body = await receipt_of(stack, "job-r1", theirs["session_token"])
    assert status == 200 and msgspec.convert(body, Receipt) == retried
    status, body = await receipt_of(stack, "job-r1", mine["session_token"])
    assert status == 200 and msgspec.convert(body, Receipt) == newer
    third = await registered(stack)
    status, body = await receipt_of(stack, "job-r1", third["session_token"])
    assert (status, body["code"]) == (403, "forbidden")
    # the newest event carries no receipt (an admin discarded the second result): each still has its own
    discarded = ResultDiscarded(
        node_id=theirs["node_public_id"], attempt=2, checksum="c" * 64, by="ops", comment="confirmed"
    )
    await append(stack.store, "result", "job-r1", discarded, "thread-job-r1")
    status, body = await receipt_of(stack, "job-r1", theirs["session_token"])
    assert status == 200 and msgspec.convert(body, Receipt) == retried
    status, body = await receipt_of(stack, "job-r1", third["session_token"])
    assert (status, body["code"]) == (403, "forbidden")
    # a receipt stored as an event of its own (before ADR 0027) is served as it was
    legacy = await issue_receipt(stack, "job-r3", mine["node_public_id"], legacy=True)
    status, body = await receipt_of(stack, "job-r3", mine["session_token"])
    assert status == 200 and msgspec.convert(body, Receipt) == legacy


async def test_the_node_stores_a_receipt_issued_after_it_started_asking(stack: Stack, tmp_path: Path) -> None:
    node = await registered(stack)
    edge = EdgeHttp(stack.http, stack.url, timeout_s=5.0, user_agent="test-node/0.1")

    async def ask(job_id: str) -> Receipt | None:
        return await edge.job_receipt(node["session_token"], job_id)

    fetcher = ReceiptFetcher(
        ask,
        tmp_path / "receipts",
        lambda: str(node["node_public_id"]),
        pending=PendingReceipts(first_delay_s=0.05, max_delay_s=0.2),
        idle_s=0.05,
    )
    fetcher.remember("job-late", 1)
    stop = asyncio.Event()
    running = asyncio.create_task(fetcher.run(stop))
    try:
        await asyncio.sleep(0.5)  # asked a few times: none issued yet
        assert "job-late" in fetcher.pending and fetcher.stored == 0
        receipt = await issue_receipt(stack, "job-late", node["node_public_id"])
        async with asyncio.timeout(10):
            while fetcher.stored == 0:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
    assert [(path.name, found) for path, found in stored_receipts(tmp_path / "receipts")] == [
        ("job-late.1.json", receipt)
    ]
    assert "job-late" not in fetcher.pending


def forgeries_rejected(job_type: str, result: bytes | Mapping[str, Any], checksum: str) -> Verdict:
    """The test job types judged as the service judges them, and a result claiming `forged`
    rejected, as a business rule would reject a forbidden value."""
    verdict = judge_with_test_types(job_type, result, checksum)
    document = msgspec.json.decode(result) if isinstance(result, bytes) else result
    if not document.get("forged"):
        return verdict
    forbidden = Reason(code="forbidden", field="forged", message="a forged value")
    return msgspec.structs.replace(verdict, accepted=False, reasons=(forbidden,))


@dataclass
class Network:
    url: str
    settings: Settings
    scheduler: Commands
    http: aiohttp.ClientSession


@pytest.fixture
async def network(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Network]:
    """The registry, the scheduler, the validation service (its reactors, and its commands, the
    quarantine ones among them) and an edge: a result is judged and settled as in the running stack."""
    settings = make_settings(isolated_nats, fresh_database, tmp_path)
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_runtime("registry", settings))
        await start_registry(registry, health=False, observe=False)
        scheduler = await stack.enter_async_context(open_runtime("scheduler", settings))
        await start_scheduler(scheduler, health=False, payload_types=JOB_TYPES, options=FAST)
        await stack.enter_async_context(validation_service(settings, forgeries_rejected))
        edge = await stack.enter_async_context(open_runtime("edge", settings, needs_postgres=False))
        start_edge(edge)
        await answering(settings.effective_nats_url)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        url = f"http://127.0.0.1:{settings.edge_port}"
        await until_ready(http, url)
        yield Network(url=url, settings=settings, scheduler=Commands(scheduler.nc, timeout=10), http=http)


async def test_a_forged_result_is_rejected_with_a_receipt_and_an_admin_release_completes_its_job(
    network: Network,
) -> None:
    as_stack = Stack(network.settings, network.url, None, None, FakeScheduler(), None, network.http)  # type: ignore[arg-type]
    node, other = await registered(as_stack), await registered(as_stack)
    node_id = node["node_public_id"]

    async def call(name: str, command: Any, reply: type[Any]) -> Any:
        return await network.scheduler.call("scheduler", name, command, reply, correlation_id="forgery-1")

    created = await call(
        "create_job", CreateJob(job_type="echo", payload={"text": "hi"}, max_retries=2), CreateJobReply
    )
    claimed = await call("claim_jobs", ClaimJobs(node_id=node_id, job_types=["echo"], concurrency=1), ClaimJobsReply)
    assert [offer.job_id for offer in claimed.offers] == [created.job_id]
    result = {"text": "hi", "forged": True}
    submitted = await call(
        "submit_result",
        SubmitResult(node_id=node_id, job_id=created.job_id, result=result, checksum=result_checksum(result)),
        SubmitResultReply,
    )
    assert submitted.status == "validating" and submitted.receipt is None

    # judged: rejected, the job tried again, and a receipt of the rejection for the node alone
    async with asyncio.timeout(20):
        while (view := await call("get_job", GetJob(job_id=created.job_id), JobView)).status == "validating":
            await asyncio.sleep(0.05)
    assert view.status in ("retry_wait", "queued")
    assert [entry.type for entry in view.history][-1] == "job.result_rejected"
    async with asyncio.timeout(10):
        while (fetched := await receipt_of(as_stack, created.job_id, node["session_token"]))[0] == 404:
            await asyncio.sleep(0.05)
    status, body = fetched
    receipt = msgspec.convert(body, Receipt)
    assert status == 200
    assert (receipt.node_id, receipt.attempt, receipt.verdict) == (node_id, 1, "rejected")
    assert receipt.result_checksum == result_checksum(result)
    assert (await receipt_of(as_stack, created.job_id, other["session_token"]))[0] == 403

    # an admin looks, and releases it: the job completes with that result, naming the admin
    body = {"node_id": node_id, "attempt": 1, "checksum": result_checksum(result), "comment": "the value is right"}
    status, reply = await post(as_stack, f"/admin/quarantine/{created.job_id}/release", body, as_stack.admin)
    assert status == 200, reply
    assert (reply["changed"], reply["job_status"]) == (True, "completed")
    view = await call("get_job", GetJob(job_id=created.job_id), JobView)
    assert view.status == "completed" and view.result == result
    assert [entry.type for entry in view.history][-1] == "job.completed"
    # released once: a second release changes nothing, and the job keeps its answer
    status, again = await post(as_stack, f"/admin/quarantine/{created.job_id}/release", body, as_stack.admin)
    assert status == 200 and again["changed"] is False


async def test_ccn_admin_quarantine_lists_shows_releases_and_discards(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = stack.settings
    for name, value in (
        ("CCN_HOME", str(tmp_path)),
        ("CCN_EDGE_HOST", "127.0.0.1"),
        ("CCN_EDGE_PORT", str(settings.edge_port)),
        ("CCN_ANALYTICS_HOST", settings.analytics_host),
        ("CCN_ANALYTICS_PORT", str(settings.analytics_port)),
        ("CCN_ADMIN_TOKEN", settings.admin_token),
    ):
        monkeypatch.setenv(name, value)
    released, discarded = await rejected_result(stack, "node-a"), await rejected_result(stack, "node-b")

    def decision(action: str, rejected: Rejected, comment: str, *extra: str) -> list[str]:
        return [
            "admin",
            "quarantine",
            action,
            rejected.job_id,
            "--node",
            rejected.node_id,
            "--attempt",
            str(rejected.attempt),
            "--checksum",
            rejected.checksum,
            "--comment",
            comment,
            *extra,
        ]

    code, out, err = await ccn(capsys, *decision("release", released, "the source says so"))
    assert code == 0, err
    assert f"release {released.job_id} (node node-a, attempt 1): released" in out
    assert f"job {released.job_id} is completed" in out
    # every bad argument is refused before anything is sent, naming what is wrong
    for argv, message in (
        (decision("discard", discarded, "bell\x07"), "the comment"),
        (decision("discard", discarded, " "), "the comment must be 1 to 2000 characters"),
        (decision("discard", discarded, "x" * 2001), "the comment must be 1 to 2000 characters"),
        ([*decision("discard", discarded, "ok")[:3], "bad id", *decision("discard", discarded, "ok")[4:]], "job id"),
        (decision("discard", dataclasses.replace(discarded, node_id="no/de"), "ok"), "node id"),
        (decision("discard", dataclasses.replace(discarded, attempt=-1), "ok"), "attempt"),
    ):
        code, _, err = await ccn(capsys, *argv)
        assert code == 1 and message in err, (argv, err)
    code, _, err = await ccn(capsys, *decision("discard", released, "too late"))
    assert code == 1 and "only a rejected, undecided one" in err
    code, out, err = await ccn(capsys, *decision("discard", discarded, "a forged value"))
    assert code == 0 and "discarded" in out, err

    async with analytics_running(settings):
        await projected(stack, QUARANTINE_READ_MODEL.durable)
        code, out, _ = await ccn(capsys, "admin", "quarantine", "list")
        lines = out.strip().splitlines()
        assert code == 0 and lines[0].split() == [
            "rejected", "at", "(UTC)", "job", "type", "node", "attempt", "status", "by", "reasons"
        ]  # fmt: skip
        assert [line.split()[2:] for line in lines[1:]] == [
            [released.job_id, "extract_text", "node-a", "1", "released", "admin", "format,", "mandatory"],
            [discarded.job_id, "extract_text", "node-b", "1", "discarded", "admin", "format,", "mandatory"],
        ]
        code, out, _ = await ccn(capsys, "admin", "quarantine", "list", "--status", "discarded", "--json")
        assert code == 0 and [msgspec.json.decode(line)["job_id"] for line in out.splitlines()] == [discarded.job_id]
        code, out, _ = await ccn(capsys, "admin", "quarantine", "show", discarded.job_id)
        assert code == 0 and "status   discarded by admin" in out and "reason   mandatory at text: text is empty" in out
        code, _, err = await ccn(capsys, "admin", "quarantine", "show", "no-such-job")
        assert code == 1 and "404" in err
        code, _, err = await ccn(capsys, "admin", "quarantine", "show", "bad id")
        assert code == 2 and "not a job id" in err


async def ccn(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`ccn ARGV` in a thread (its HTTP calls block; the servers run in this loop): code, out, err."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    out = "".join(line for line in captured.out.splitlines(keepends=True) if not SERVER_LOG_LINE.match(line))
    return code, out, captured.err
