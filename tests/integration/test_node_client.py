"""The reference node against a small fake edge speaking the real protocol frames over a real
WebSocket (aiohttp.web): registration, consent, offers of extract_text jobs from the demo
corpus, results checked by checksum, a dropped connection with a refused session, an Error
with retry_after, an oversized offer, a per-job timeout, shutdown with Bye, and a node that
opted out."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import stat
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccn_cli.node.config import NodeConfig
from ccn_cli.node.credentials import credentials_path, load_credentials
from ccn_cli.node.node import EXIT_OK, EXIT_REFUSED, run_node
from ccn_cli.node.receipts_store import receipts_dir, stored_receipts
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.receipts import ServiceKey, sign_receipt, verify_receipt, verify_result_signature
from ccn_jobs.demo_corpus import DemoPage, grant_pages
from ccn_jobs.registry import decode_result, run_job
from ccn_proto.budgets import JobBudget
from ccn_proto.canonical import result_checksum
from ccn_proto.node_protocol import (
    DRAINED_BYE_REASON,
    Ack,
    Acks,
    Bye,
    Error,
    Heartbeat,
    Hello,
    JobFail,
    JobOffer,
    JobOffers,
    JobResult,
    JobResults,
    NodeFrame,
    Ready,
    ServerFrame,
    Welcome,
)
from ccn_proto.receipts import KeySet, PublishedKey, Receipt

pytestmark = pytest.mark.timeout(60)
_node_frames = msgspec.json.Decoder(NodeFrame)


@dataclass
class FakeEdge:
    """One edge, one node: holds what the node sent and plays the scripted trouble."""

    pages: list[DemoPage]
    concurrency: int = 2
    drop_after_first_result: bool = False
    rate_limit_once_after_drop: float | None = None
    opted_out: bool = False
    hello_error: Error | None = None
    oversized_job_ids: frozenset[str] = frozenset()
    take_back_first_offer: bool = False  # as when a lease is lost: Error naming the job
    unavailable_first_result: float | None = None  # as when the scheduler is down: retry_after
    # batched frames: offers of one ready in a job_offers frame, acks of one results frame in an
    # acks frame, to a node that says batch_frames
    batch: bool = False
    drop_after_offers: bool = False  # the connection drops once the first offers are out
    budgets: dict[str, JobBudget] = field(default_factory=dict)  # by job id: the budget its offer carries
    welcome_delay_after_drop: float = 0.0  # the next hello is answered this late
    drained: bool = False  # says bye as to a drained node once welcomed
    receipt_key: ServiceKey | None = None  # acks each result with a receipt signed by it
    public_keys: list[str | None] = field(default_factory=list)  # what each registration sent
    results_frames: list[JobResults] = field(default_factory=list)
    result_times: list[float] = field(default_factory=list)
    took_back_at_beat: int = 0
    pending: deque[tuple[str, DemoPage]] = field(default_factory=deque)
    held: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    registrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    consents: list[dict[str, Any]] = field(default_factory=list)
    session_starts: int = 0
    hellos: list[Hello] = field(default_factory=list)
    refused_hellos: int = 0
    results: dict[str, list[JobResult]] = field(default_factory=dict)
    fails: dict[str, JobFail] = field(default_factory=dict)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    readies: list[tuple[float, Ready]] = field(default_factory=list)
    rate_limited_at: float | None = None
    byes: int = 0
    dropped: bool = False
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.pending.extend((f"job-{i}", page) for i, page in enumerate(self.pages))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/compute/register-node", self.register)
        app.router.add_post("/compute/consent", self.consent)
        app.router.add_post("/compute/session", self.start_session)
        app.router.add_get("/ws", self.websocket)
        return app

    def _authorised(self, request: web.Request) -> bool:
        tokens = {reply["api_token"] for reply in self.registrations.values()}
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in tokens

    async def register(self, request: web.Request) -> web.Response:
        key = request.headers["Idempotency-Key"]
        assert len(key) >= 16
        body = await request.json()
        assert body["consent_flag"] is True and body["node_version"]
        self.public_keys.append(body.get("public_key"))
        if key not in self.registrations:
            token = f"sess-{secrets.token_hex(8)}"
            self.sessions.add(token)
            self.registrations[key] = {
                "node_public_id": "node-1",
                "api_token": f"api-{secrets.token_hex(8)}",
                "session_id": "s-1",
                "session_token": token,
                "server_time": datetime.now(UTC).isoformat(),
                "created": True,
            }
        return web.json_response(self.registrations[key], status=201)

    async def consent(self, request: web.Request) -> web.Response:
        if self.opted_out:
            return web.json_response(
                {"code": "forbidden", "message": "this node has opted out; its tokens are revoked"}, status=403
            )
        if not self._authorised(request):
            return web.json_response({"code": "unauthorized", "message": "invalid API token"}, status=401)
        body = await request.json()
        assert consent_catalogue()[body["consent_version"]] == body["consent_hash"]
        self.consents.append(body)
        return web.json_response(
            {
                "node_public_id": "node-1",
                "consent_version": body["consent_version"],
                "consent_hash": body["consent_hash"],
                "previous_version": None,
                "server_time": datetime.now(UTC).isoformat(),
            }
        )

    async def start_session(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"code": "unauthorized", "message": "invalid API token"}, status=401)
        self.session_starts += 1
        token = f"sess-{secrets.token_hex(8)}"
        self.sessions.add(token)
        reply = {"node_public_id": "node-1", "session_id": f"s-{self.session_starts + 1}", "session_token": token}
        return web.json_response({**reply, "server_time": datetime.now(UTC).isoformat()}, status=201)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=32 * 1024 * 1024)
        await ws.prepare(request)
        hello = _node_frames.decode((await ws.receive_str()).encode())
        assert isinstance(hello, Hello)
        self.hellos.append(hello)
        refusal = self.hello_error
        if refusal is None and hello.session_token not in self.sessions:
            refusal = Error(code="unauthorized", message="invalid or ended session token")
        if refusal is not None:
            self.refused_hellos += 1
            await send(ws, refusal)
            await ws.close()
            return ws
        if self.dropped and self.welcome_delay_after_drop:
            await asyncio.sleep(self.welcome_delay_after_drop)
        batching = self.batch and hello.capabilities.batch_frames
        await send(
            ws,
            Welcome(node_public_id="node-1", session_id="s", server_time=datetime.now(UTC), heartbeat_interval_s=0.05),
        )
        if self.drained:
            await send(ws, Bye(reason=DRAINED_BYE_REASON))
            await ws.close()
            return ws
        async for message in ws:
            frame = _node_frames.decode(message.data)
            match frame:
                case Ready():
                    await self.on_ready(ws, frame, batching)
                    if self.drop_after_offers and not self.dropped and self.held:
                        self.dropped = True  # the node keeps running what it was offered
                        await ws.close()
                        break
                case JobResult():
                    if await self.on_result(ws, frame):
                        break
                case JobResults():
                    self.results_frames.append(frame)
                    results = [
                        JobResult(
                            job_id=item.job_id,
                            result=item.result,
                            checksum=item.checksum,
                            usage=item.usage,
                            signature=item.signature,
                        )
                        for item in frame.results
                    ]
                    for result in results:
                        self.results.setdefault(result.job_id, []).append(result)
                    if self.drop_after_first_result and not self.dropped:
                        # results that finished together come in one frame: dropped alike
                        await self.drop(ws)
                        break
                    acks = []
                    for result in results:
                        self.held.discard(result.job_id)
                        acks.append(self.completed(result))
                    await send(ws, Acks(acks=acks) if batching else acks[0])
                    for ack in acks[1:] if not batching else []:
                        await send(ws, ack)
                case JobFail():
                    self.fails[frame.job_id] = frame
                    self.held.discard(frame.job_id)
                    await send(ws, Ack(job_id=frame.job_id, status="failed"))
                case Heartbeat():
                    self.heartbeats.append(frame)
                case Bye():
                    self.byes += 1
                    await ws.close()
            if not self.pending and not self.held:
                self.settled.set()
        return ws

    async def on_result(self, ws: web.WebSocketResponse, frame: JobResult) -> bool:
        """Answer one result; True when the connection was dropped instead."""
        self.results.setdefault(frame.job_id, []).append(frame)
        self.result_times.append(asyncio.get_running_loop().time())
        if self.unavailable_first_result is not None and len(self.result_times) == 1:
            # not recorded, not acknowledged: the node must keep it and send it again
            await send(
                ws,
                Error(
                    code="unavailable",
                    message="the scheduler service did not answer in time",
                    job_id=frame.job_id,
                    retry_after=self.unavailable_first_result,
                ),
            )
            return False
        if self.drop_after_first_result and not self.dropped:
            await self.drop(ws)
            return True
        self.held.discard(frame.job_id)
        await send(ws, self.completed(frame))
        return False

    async def drop(self, ws: web.WebSocketResponse) -> None:
        """No Ack: the node must send what it just sent again on its next connection, which
        needs a new session (the old one is refused)."""
        self.dropped = True
        self.sessions.clear()
        await ws.close()

    def completed(self, frame: JobResult) -> Ack:
        """The ack of a recorded result, with a receipt when this edge signs them."""
        if self.receipt_key is None:
            return Ack(job_id=frame.job_id, status="completed")
        receipt = sign_receipt(
            self.receipt_key,
            job_id=frame.job_id,
            attempt=1,
            node_id="node-1",
            result_checksum=frame.checksum,
            verdict="validated",
            issued_at=datetime.now(UTC),
            node_signature=frame.signature,
        )
        return Ack(job_id=frame.job_id, status="completed", receipt=receipt)

    async def on_ready(self, ws: web.WebSocketResponse, ready: Ready, batching: bool = False) -> None:
        now = asyncio.get_running_loop().time()
        self.readies.append((now, ready))
        if self.dropped and self.rate_limit_once_after_drop is not None and self.rate_limited_at is None:
            self.rate_limited_at = now
            await send(ws, Error(code="rate_limited", message="slow down", retry_after=self.rate_limit_once_after_drop))
            return
        # as the scheduler counts it: never more than the advertised concurrency held
        offers: list[JobOffer] = []
        for _ in range(min(ready.slots, self.concurrency - len(self.held))):
            if not self.pending:
                break
            job_id, page = self.pending.popleft()
            self.held.add(job_id)
            html = page.html * 50 if job_id in self.oversized_job_ids else page.html
            offer = JobOffer(
                job_id=job_id,
                job_type="extract_text",
                payload={"html": html, "url": page.url},
                lease_until=datetime.now(UTC) + timedelta(seconds=60),
                attempt=1,
                correlation_id=f"corr-{job_id}",
                budget=self.budgets.get(job_id),
            )
            if batching:
                offers.append(offer)
                continue
            await send(ws, offer)
            if self.take_back_first_offer and job_id == "job-0":
                self.held.discard(job_id)
                self.took_back_at_beat = len(self.heartbeats) + 1  # one heartbeat may already be on its way
                await send(ws, Error(code="not_found", message="stop job job-0: lease expired", job_id=job_id))
        if offers:
            await send(ws, JobOffers(offers=offers))


async def send(ws: web.WebSocketResponse, frame: ServerFrame) -> None:
    await ws.send_str(msgspec.json.encode(frame).decode())


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(edge: FakeEdge) -> str:
        runner = web.AppRunner(edge.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def node_config(edge_url: str, home: Path, **overrides: Any) -> NodeConfig:
    config = NodeConfig(edge_url=edge_url, home=home, name="t", concurrency=2, grace_s=5.0, ack_wait_s=2.0)
    return msgspec.structs.replace(config, **overrides)


async def test_node_runs_jobs_across_a_dropped_connection_and_says_bye(serve: Any, tmp_path: Path) -> None:
    pages = grant_pages(3)
    edge = FakeEdge(pages=pages, drop_after_first_result=True, rate_limit_once_after_drop=0.3)
    config = node_config(await serve(edge), tmp_path)  # real worker processes
    node = asyncio.create_task(run_node(config, stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=40)
    code = await _stop_node(node)
    assert code == EXIT_OK

    # every job's result arrived with the checksum of its canonical JSON, and is a valid result
    assert sorted(edge.results) == ["job-0", "job-1", "job-2"]
    for job_id, sent in edge.results.items():
        for frame in sent:
            assert frame.checksum == result_checksum(frame.result)
        page = pages[int(job_id.removeprefix("job-"))]
        result = msgspec.to_builtins(decode_result("extract_text", sent[-1].result))
        assert result["language"] == page.language and result["title"] == page.title
    # the connection dropped before the first result was acknowledged: it was sent again
    assert any(len(sent) == 2 for sent in edge.results.values())
    # the old session was refused at the next hello; a fresh token from /compute/session worked
    assert edge.refused_hellos == 1 and edge.session_starts == 1
    assert len(edge.hellos) == 3 and edge.hellos[1].session_token == edge.hellos[0].session_token
    assert edge.hellos[2].session_token != edge.hellos[0].session_token
    assert all(h.capabilities.job_types == ["extract_text"] and h.capabilities.concurrency == 2 for h in edge.hellos)
    # the rate limit was honoured: no Ready for retry_after seconds
    assert edge.rate_limited_at is not None
    later = [at for at, _ in edge.readies if at > edge.rate_limited_at]
    assert later and later[0] - edge.rate_limited_at >= 0.29
    # heartbeats named running jobs, never more than the concurrency
    assert any(beat.job_ids for beat in edge.heartbeats)
    assert all(len(beat.job_ids) <= 2 for beat in edge.heartbeats)
    # and each said how the node fares: its load, its free memory, its last job and round trip
    assert all(beat.metrics is not None and beat.metrics.cpu_load is not None for beat in edge.heartbeats)
    assert all(beat.metrics is not None and beat.metrics.memory_free for beat in edge.heartbeats)
    last = edge.heartbeats[-1].metrics
    assert last is not None and last.last_job_ms is not None and last.network_latency_ms is not None
    assert all(0 < ready.slots <= 2 for _, ready in edge.readies)
    assert edge.byes == 1 and not edge.fails

    path = credentials_path(tmp_path, "t")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = load_credentials(path)
    assert stored is not None and stored.session_token == edge.hellos[2].session_token
    assert stored.consent_version == current_consent_version()


async def test_a_result_the_edge_cannot_take_yet_is_kept_and_sent_again(serve: Any, tmp_path: Path) -> None:
    """An outage behind the edge answers a finished result with `unavailable` + retry_after: the
    node keeps it and sends it again after retry_after; the job is neither failed nor re-run."""
    edge = FakeEdge(pages=grant_pages(2)[1:], unavailable_first_result=0.3)
    node = asyncio.create_task(run_node(node_config(await serve(edge), tmp_path, executor="thread"), stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=20)
    assert await _stop_node(node) == EXIT_OK
    sent = edge.results["job-0"]
    assert len(sent) == 2 and sent[0].result == sent[1].result and sent[0].checksum == sent[1].checksum
    assert edge.result_times[1] - edge.result_times[0] >= 0.29
    assert not edge.fails
    assert len(edge.hellos) == 1  # on the same connection


async def test_a_batching_node_reads_batched_offers_and_acks_and_sends_its_finished_results_in_one_frame(
    serve: Any, tmp_path: Path
) -> None:
    """Three offers in one job_offers frame; the connection drops while the jobs run, and the
    next welcome comes late, so all three results are waiting when it does: they go in one
    results frame that asks for more (`ready`), and one acks frame answers them."""
    pages = grant_pages(2)[1:] * 3  # a page that extracts in milliseconds
    edge = FakeEdge(pages=pages, concurrency=3, batch=True, drop_after_offers=True, welcome_delay_after_drop=1.0)
    config = node_config(await serve(edge), tmp_path, executor="thread", concurrency=3)
    node = asyncio.create_task(run_node(config, stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=20)
    assert await _stop_node(node) == EXIT_OK
    assert all(hello.capabilities.batch_frames for hello in edge.hellos)
    assert len(edge.results_frames) == 1, edge.results_frames
    batch = edge.results_frames[0]
    assert sorted(item.job_id for item in batch.results) == ["job-0", "job-1", "job-2"]
    assert all(item.checksum == result_checksum(item.result) for item in batch.results)
    assert batch.ready == 3  # the node's room once these are recorded
    assert {job_id: len(sent) for job_id, sent in edge.results.items()} == {"job-0": 1, "job-1": 1, "job-2": 1}
    assert not edge.fails


async def test_a_node_registers_its_key_signs_its_results_and_keeps_its_receipts(serve: Any, tmp_path: Path) -> None:
    service_key = ServiceKey("rk-test", Ed25519PrivateKey.generate())
    edge = FakeEdge(pages=grant_pages(3)[1:], receipt_key=service_key)
    node = asyncio.create_task(run_node(node_config(await serve(edge), tmp_path, executor="thread"), stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=20)
    assert await _stop_node(node) == EXIT_OK
    (public_key,) = edge.public_keys
    assert public_key is not None
    stored = load_credentials(credentials_path(tmp_path, "t"))
    assert stored is not None and stored.signing_key is not None
    assert sorted(edge.results) == ["job-0", "job-1"]
    for job_id, sent in edge.results.items():
        for frame in sent:
            assert frame.signature is not None
            verify_result_signature(public_key, job_id, 1, frame.checksum, frame.signature)
    keys = KeySet(
        keys=[
            PublishedKey(
                key_id="rk-test",
                public_key=service_key.public_key,
                valid_from=datetime.now(UTC) - timedelta(hours=1),
                status="active",
            )
        ]
    )
    receipts = stored_receipts(receipts_dir(tmp_path, "t"))
    assert [path.name for path, _ in receipts] == ["job-0.1.json", "job-1.1.json"]
    for _, receipt in receipts:
        assert isinstance(receipt, Receipt) and receipt.node_signature is not None
        assert verify_receipt(receipt, keys).key_id == "rk-test"


async def test_node_reuses_its_credentials(serve: Any, tmp_path: Path) -> None:
    edge = FakeEdge(pages=grant_pages(2)[1:])  # a page that extracts in milliseconds
    url = await serve(edge)
    for _ in range(2):
        edge.pending.extend([("again", grant_pages(2)[1])] if edge.results else [])
        edge.settled.clear()
        node = asyncio.create_task(run_node(node_config(url, tmp_path, executor="thread"), stop_signals=True))
        await asyncio.wait_for(edge.settled.wait(), timeout=20)
        assert await _stop_node(node) == EXIT_OK
    assert len(edge.registrations) == 1 and len(edge.consents) == 2
    assert sorted(edge.results) == ["again", "job-0"]


async def test_oversized_offers_timeouts_and_shutdown_are_handed_back(
    serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = grant_pages(3)

    # the jobs take 50 ms, sleeping (the GIL free): the node's 1 ms timeout always fires first. A
    # job left to run at full speed could finish in the worker thread before the timeout is armed.
    def slow_run_job(job_type: str, payload: dict[str, Any], bodies: Any = None) -> Any:
        time.sleep(0.05)
        return run_job(job_type, payload, bodies)

    monkeypatch.setattr("ccn_cli.node.execute.run_job", slow_run_job)
    edge = FakeEdge(pages=pages, concurrency=1, oversized_job_ids=frozenset({"job-0"}))
    config = node_config(
        await serve(edge),
        tmp_path,
        executor="thread",
        concurrency=1,
        max_offer_bytes=100_000,
        job_timeout_s=0.001,
    )
    node = asyncio.create_task(run_node(config, stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=20)
    assert await _stop_node(node) == EXIT_OK
    assert "over this node's limit of 100000 bytes" in edge.fails["job-0"].reason
    assert edge.fails["job-1"].reason.startswith("timed out after 0.001 s")
    assert not edge.results and edge.byes == 1


async def test_a_job_over_its_budget_fails_typed_with_its_usage_and_the_node_runs_the_next(
    serve: Any, tmp_path: Path
) -> None:
    # job-0's budget is a millisecond of CPU, less than any real job uses: its child is judged
    # over it; job-1 runs under a budget it keeps, job-2 under none (in the worker itself)
    budgets = {"job-0": JobBudget(max_cpu_time_s=0.001), "job-1": JobBudget(max_cpu_time_s=60.0, max_memory_mb=512)}
    edge = FakeEdge(pages=grant_pages(3), concurrency=1, budgets=budgets)
    config = node_config(await serve(edge), tmp_path, concurrency=1)  # real worker processes
    node = asyncio.create_task(run_node(config, stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=60)
    assert await _stop_node(node) == EXIT_OK
    over = edge.fails["job-0"]
    assert over.kind == "budget_exceeded" and over.reason.startswith("over its budget: cpu time"), over
    assert over.usage is not None and over.usage.cpu_time_s > 0.001 and over.usage.wall_ms > 0
    assert sorted(edge.results) == ["job-1", "job-2"]
    for job_id in ("job-1", "job-2"):
        usage = edge.results[job_id][-1].usage
        assert usage is not None and usage.cpu_time_s > 0 and usage.wall_ms > 0, (job_id, usage)
    kept = edge.results["job-1"][-1].usage
    assert kept is not None and kept.max_memory_mb <= 512


async def test_a_result_over_the_limit_is_not_sent_but_failed(serve: Any, tmp_path: Path) -> None:
    edge = FakeEdge(pages=grant_pages(2)[1:], concurrency=1)
    config = node_config(await serve(edge), tmp_path, executor="thread", concurrency=1, max_result_bytes=500)
    node = asyncio.create_task(run_node(config, stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=20)
    assert await _stop_node(node) == EXIT_OK
    assert not edge.results
    assert edge.fails["job-0"].reason.endswith("bytes is over this node's limit of 500 bytes")


@pytest.mark.parametrize(("grace_s", "signals"), [(0.0, 1), (30.0, 2)], ids=["grace-over", "second-signal"])
async def test_shutdown_hands_back_a_job_that_outlives_the_grace_period(
    serve: Any, tmp_path: Path, grace_s: float, signals: int
) -> None:
    edge = FakeEdge(pages=grant_pages(1), concurrency=1)
    config = node_config(await serve(edge), tmp_path, concurrency=1, grace_s=grace_s)  # a fresh worker: ~1 s
    node = asyncio.create_task(run_node(config, stop_signals=True))
    while not edge.held:
        await asyncio.sleep(0.01)
    for _ in range(signals - 1):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.01)
    assert await _stop_node(node) == EXIT_OK
    assert edge.fails["job-0"].reason == "node shutting down"
    assert edge.byes == 1 and not edge.results


async def test_a_job_the_edge_takes_back_is_dropped_and_work_goes_on(serve: Any, tmp_path: Path) -> None:
    edge = FakeEdge(pages=grant_pages(3), concurrency=1, take_back_first_offer=True)
    config = node_config(await serve(edge), tmp_path, concurrency=1)
    node = asyncio.create_task(run_node(config, stop_signals=True))
    await asyncio.wait_for(edge.settled.wait(), timeout=40)
    assert await _stop_node(node) == EXIT_OK
    assert sorted(edge.results) == ["job-1", "job-2"] and not edge.fails
    assert all("job-0" not in beat.job_ids for beat in edge.heartbeats[edge.took_back_at_beat :])


async def test_an_opted_out_node_stops_and_says_why(
    serve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edge = FakeEdge(pages=[], opted_out=True)
    node = asyncio.create_task(run_node(node_config(await serve(edge), tmp_path), stop_signals=True))
    assert await asyncio.wait_for(node, timeout=10) == EXIT_REFUSED
    message = capsys.readouterr().err
    assert "opted out" in message and "another --name" in message
    assert not edge.hellos


async def test_a_drained_node_stops_instead_of_coming_back(serve: Any, tmp_path: Path) -> None:
    edge = FakeEdge(pages=[], drained=True)
    config = node_config(await serve(edge), tmp_path, ack_wait_s=1.0)
    node = asyncio.create_task(run_node(config, stop_signals=True))
    # the socket's closing handshake may take the node's ack_wait_s; it never reconnects
    assert await asyncio.wait_for(node, timeout=30) == EXIT_OK
    assert len(edge.hellos) == 1


async def test_a_node_the_edge_will_not_take_stops(serve: Any, tmp_path: Path) -> None:
    refusal = Error(code="bad_input", message="node version 0.0.1 is below 0.1.0; install ccn-cli>=0.1.0")
    edge = FakeEdge(pages=[], hello_error=refusal)
    node = asyncio.create_task(run_node(node_config(await serve(edge), tmp_path), stop_signals=True))
    assert await asyncio.wait_for(node, timeout=10) == EXIT_REFUSED
    assert len(edge.hellos) == 1


async def _stop_node(node: asyncio.Task[int]) -> int:
    """SIGTERM to this very process: run_node's handler turns it into a graceful stop."""
    os.kill(os.getpid(), signal.SIGTERM)
    return await asyncio.wait_for(node, timeout=15)
