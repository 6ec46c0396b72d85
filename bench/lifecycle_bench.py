"""The job lifecycle end to end: the services as real processes (`ccn up` against the bench's
NATS and PostgreSQL), simulated nodes over real WebSockets, jobs submitted over HTTP.

A simulated node answers each offer at once with a result computed beforehand (every job
carries the same page), so the figures are the system's cost per job, not text extraction's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import nats
import psutil

from bench.lifecycle_costs import CostProbe
from bench.measure import Figure, absolute_target, figure
from ccn_cli.stack.ports import free_port
from ccn_cli.stack.run_state import load_state
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.topology import JOBS, VALIDATION_RESULTS
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from ccn_proto.node_protocol import MIN_NODE_VERSION, PROTOCOL_VERSION
from ccn_scheduler.fair_share import WINDOW_S as FAIR_SHARE_WINDOW_S

CCN = str(Path(sys.executable).parent / "ccn")
PAGE = grant_pages(1)[0]
PAYLOAD = {"html": PAGE.html, "url": PAGE.url}


@dataclass(frozen=True)
class Stack:
    edge: str
    admin_token: str
    home: Path
    env: dict[str, str]  # the environment the stack runs in: a node or a CLI call joins it with this


@asynccontextmanager
async def running_stack(
    nats_url: str, database_url: str, home: Path, ports: list[int], extra_env: dict[str, str] | None = None
) -> AsyncIterator[Stack]:
    """`extra_env`: CCN_* settings of this stack's own (e.g. governance off)."""
    edge_port, analytics_port, registry_port, scheduler_port, projector_port = ports
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CCN_")},
        "CCN_HOME": str(home),
        "CCN_NATS_URL": nats_url,
        "CCN_DATABASE_URL": database_url,
        "CCN_EDGE_PORT": str(edge_port),
        "CCN_ANALYTICS_PORT": str(analytics_port),
        "CCN_REGISTRY_HEALTH_PORT": str(registry_port),
        "CCN_SCHEDULER_HEALTH_PORT": str(scheduler_port),
        "CCN_SCHEDULER_PROJECTOR_HEALTH_PORT": str(projector_port),
        # the services the figures do not probe still bind health ports: free ones, so a bench
        # runs beside another stack on the defaults
        "CCN_FETCH_PROXY_HEALTH_PORT": str(free_port()),
        "CCN_CRAWLER_HEALTH_PORT": str(free_port()),
        "CCN_VALIDATION_HEALTH_PORT": str(free_port()),
        "CCN_MERGE_HEALTH_PORT": str(free_port()),
        "CCN_ADMIN_TOKEN": secrets.token_urlsafe(24),
        # `CCN_BENCH_LOG_LEVEL=info` keeps the services' per-command lines (durations) in
        # the stack's logs, at some cost to the figures
        "CCN_LOG_LEVEL": os.environ.get("CCN_BENCH_LOG_LEVEL", "warning"),
        # every simulated node connects from this one address, up to 1,000 at once (the burst
        # figures), and the idle connections share a session token per 100 sockets: the caps a
        # public edge keeps against floods (docs/protocol.md) would refuse the bench's crowd
        "CCN_WS_MAX_UNGREETED_PER_IP": "2048",
        "CCN_WS_MAX_UNGREETED": "2048",
        "CCN_WS_MAX_CONNECTIONS_PER_NODE": "100",
        **(extra_env or {}),
    }
    started = await asyncio.to_thread(
        subprocess.run, [CCN, "up"], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if started.returncode != 0:
        raise RuntimeError(f"ccn up failed:\n{started.stdout}\n{started.stderr}")
    try:
        yield Stack(edge=f"http://127.0.0.1:{edge_port}", admin_token=env["CCN_ADMIN_TOKEN"], home=home, env=env)
    finally:
        await asyncio.to_thread(
            subprocess.run, [CCN, "down"], env=env, capture_output=True, text=True, timeout=120, check=False
        )


async def register_nodes(http: aiohttp.ClientSession, edge: str, count: int) -> list[str]:
    """Session tokens of `count` registered, consenting nodes."""
    version = current_consent_version()
    consent = {"consent_version": version, "consent_hash": consent_catalogue()[version]}
    limit = asyncio.Semaphore(16)

    async def one() -> str:
        async with limit:
            async with http.post(
                f"{edge}/compute/register-node",
                json={"consent_flag": True, "user_agent": "bench-node/0.1"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            ) as response:
                node = await response.json()
            async with http.post(
                f"{edge}/compute/consent", json=consent, headers={"Authorization": f"Bearer {node['api_token']}"}
            ) as response:
                response.raise_for_status()
            return str(node["session_token"])

    return await asyncio.gather(*(one() for _ in range(count)))


def precomputed_result() -> dict[str, Any]:
    """The result of every bench job (they all carry the same page)."""
    return result_to_builtins(run_job("extract_text", PAYLOAD))


class _JobRef(msgspec.Struct):
    job_id: str


class _Frame(msgspec.Struct):
    """The fields of a frame the simulated node reads; the payload is skipped, not decoded."""

    type: str
    job_id: str | None = None
    offers: list[_JobRef] | None = None
    acks: list[_JobRef] | None = None


_read_frame = msgspec.json.Decoder(_Frame).decode


class SimulatedNode:
    """Connects, asks for `concurrency` jobs, answers each offer with the precomputed result and
    asks again; records claim latency (ready sent → offer received). Frames are encoded once
    and read for two fields only: the bench measures the system, so its nodes stay cheap.
    `work_s` is how long a job takes the node (0: it answers at once). It asks again in its
    result frame (`ready`), as `ccn node` does (the claim is made once the result is recorded),
    or with `ask_after_ack` once the result is acknowledged, so a claim is timed alone.
    `batch`: it says `batch_frames` and answers the offers of each frame with one `results`
    frame (the jobs of a `job_offers` frame finish together), as a node running several jobs may."""

    def __init__(
        self,
        session_token: str,
        result: dict[str, Any],
        concurrency: int = 1,
        *,
        work_s: float = 0.0,
        ask_after_ack: bool = False,
        batch: bool = False,
    ) -> None:
        self.session_token = session_token
        self.result = result
        self.checksum = result_checksum(result)
        self.concurrency = concurrency
        self.work_s = work_s
        self.ask_after_ack = ask_after_ack
        self.batch = batch
        # the result frame with the job id left out: '{"type":"result","job_id":"' + id + rest;
        # unless it waits for the ack, the node asks for its next job with the result, as
        # `ccn node` does
        fields: dict[str, Any] = {"result": result, "checksum": self.checksum}
        if not ask_after_ack:
            fields["ready"] = 1
        self._result_tail = '",' + msgspec.json.encode(fields).decode()[1:]
        item = msgspec.json.encode({"result": result, "checksum": self.checksum}).decode()[1:]
        self._item_tail = '",' + item  # '{"job_id":"' + id + this: one item of a results frame
        self.claim_latencies: list[float] = []
        self.completed = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._ready_at: list[float] = []
        self._answers: set[asyncio.Task[None]] = set()
        self.errors: list[dict[str, Any]] = []
        self.result_frames = 0  # result or results frames sent

    async def connect(self, http: aiohttp.ClientSession, edge: str) -> None:
        self.ws = await http.ws_connect(f"{edge.replace('http', 'ws')}/ws", max_msg_size=0)
        await self.ws.send_json(
            {
                "type": "hello",
                "session_token": self.session_token,
                "node_version": MIN_NODE_VERSION,
                "protocol_version": PROTOCOL_VERSION,
                "capabilities": {
                    "job_types": ["extract_text"],
                    "concurrency": self.concurrency,
                    "batch_frames": self.batch,
                },
            }
        )
        welcome = await self.ws.receive_json(timeout=30)
        assert welcome["type"] == "welcome", welcome

    async def work(self, until: asyncio.Event, *, start_within_s: float = 0.0) -> None:
        assert self.ws is not None
        if start_within_s:
            await asyncio.sleep(random.uniform(0, start_within_s))
        await self._ready(self.concurrency)
        while not until.is_set():
            try:
                message = await self.ws.receive(timeout=0.5)
            except TimeoutError:
                continue
            if message.type != aiohttp.WSMsgType.TEXT:
                return
            frame = _read_frame(message.data)
            if frame.type == "job_offers" and frame.offers:
                job_ids = [offer.job_id for offer in frame.offers]
                for _ in job_ids:
                    if self._ready_at:
                        self.claim_latencies.append(time.perf_counter() - self._ready_at.pop(0))
                await self._answer_all(job_ids)
            elif frame.type == "acks" and frame.acks:
                self.completed += len(frame.acks)
            elif frame.type == "job_offer" and self.batch:
                if self._ready_at:
                    self.claim_latencies.append(time.perf_counter() - self._ready_at.pop(0))
                await self._answer_all([str(frame.job_id)])
            elif frame.type == "job_offer":
                if self._ready_at:
                    self.claim_latencies.append(time.perf_counter() - self._ready_at.pop(0))
                if self.work_s:
                    asyncio.get_running_loop().call_later(
                        random.expovariate(1 / self.work_s), self._answer_soon, frame.job_id
                    )
                else:
                    await self._answer(frame.job_id)
            elif frame.type == "ack":
                self.completed += 1
                if self.ask_after_ack:
                    await self._ready(1)
            elif frame.type == "error":
                self.errors.append(json.loads(message.data))

    def _answer_soon(self, job_id: str | None) -> None:
        task = asyncio.ensure_future(self._answer(job_id))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _answer(self, job_id: str | None) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            if not self.ask_after_ack:
                self._ready_at.append(time.perf_counter())  # the result frame asks for the next job
            await self.ws.send_str('{"type":"result","job_id":"' + str(job_id) + self._result_tail)
            self.result_frames += 1

    async def _answer_all(self, job_ids: list[str]) -> None:
        """One results frame for the jobs of one offers frame, asking for as many again."""
        assert self.ws is not None
        items = ",".join('{"job_id":"' + job_id + self._item_tail for job_id in job_ids)
        self._ready_at.extend([time.perf_counter()] * len(job_ids))
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.ws.send_str('{"type":"results","results":[' + items + f'],"ready":{len(job_ids)}}}')
            self.result_frames += 1

    async def _ready(self, slots: int) -> None:
        assert self.ws is not None
        self._ready_at.extend([time.perf_counter()] * slots)
        await self.ws.send_str(f'{{"type":"ready","slots":{slots}}}')

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


# what each simulated node of the batched rows runs at once: its offers and results go several per frame
BATCHED_CONCURRENCY = 8
# lines per HTTP batch request: ~4.5 kB each, under the edge's 64 MiB body limit
SUBMIT_LINES = 10_000


async def submit(http: aiohttp.ClientSession, stack: Stack, jobs: int, batch_id: str) -> None:
    """`jobs` jobs over HTTP, in batch requests of up to SUBMIT_LINES lines, one after another."""
    line = msgspec.json.encode({"job_type": "extract_text", "payload": PAYLOAD})
    for part, start in enumerate(range(0, jobs, SUBMIT_LINES)):
        lines = b"\n".join([line] * min(SUBMIT_LINES, jobs - start))  # every job carries the same page
        async with http.post(
            f"{stack.edge}/jobs/batch?batch_id={batch_id}-{part}&chunk_size=1000",
            data=lines,
            headers={"Authorization": f"Bearer {stack.admin_token}"},
            timeout=aiohttp.ClientTimeout(total=600),
        ) as response:
            body = await response.json()
            assert response.status == 201, body


async def lifecycle(
    stack: Stack,
    nodes: int,
    jobs: int,
    label: str,
    *,
    concurrency: int = 1,
    batch: bool = False,
    probe: CostProbe | None = None,
    target: float = 1_000,
    tally: dict[str, float] | None = None,
) -> Figure:
    """`jobs` submitted over HTTP while `nodes` nodes take and complete them; with `probe`, the
    CPU and NATS messages of the run (from the submit to the last ack) are counted too; `tally`
    gets the result frames the nodes sent per second."""
    result = precomputed_result()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tokens = await register_nodes(http, stack.edge, nodes)
        simulated = [SimulatedNode(token, result, concurrency, batch=batch) for token in tokens]
        await asyncio.gather(*(node.connect(http, stack.edge) for node in simulated))
        gc.freeze()  # the nodes are set up: the measuring process's collections skip them
        done = asyncio.Event()
        workers = [asyncio.create_task(node.work(done)) for node in simulated]
        if probe is not None:
            await probe.start()
        started = time.perf_counter()
        await submit(http, stack, jobs, f"bench-{uuid.uuid4().hex[:8]}")
        deadline = started + 900
        while sum(node.completed for node in simulated) < jobs and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        # an ack says the result is recorded; the job completes once it is judged (ADR 0024)
        await all_judged(stack.env["CCN_NATS_URL"], deadline)
        seconds = time.perf_counter() - started
        completed = sum(node.completed for node in simulated)
        if tally is not None:
            tally["result_frames_per_s"] = sum(node.result_frames for node in simulated) / seconds
        if probe is not None:
            await probe.stop(label, completed, seconds)
        done.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(*(node.close() for node in simulated))
    latencies = [latency for node in simulated for latency in node.claim_latencies]
    frames = "several jobs per frame (results / job_offers / acks)" if batch else "one job per frame"
    fig = figure(
        f"lifecycle: {label}",
        "job lifecycle",
        completed,
        seconds,
        latencies,
        notes=f"{completed:,}/{jobs:,} completed by {nodes} WebSocket nodes of concurrency {concurrency}, {frames}; "
        "submit (HTTP batch) → claim → result → judged → completed; p50/p99: claim latency (ready → offer), including "
        "waiting for jobs to be submitted"
        + (f". {probe.costs.breakdown()}" if probe is not None and probe.costs is not None else ""),
    )
    return absolute_target(fig, target, "completed jobs")


async def all_judged(nats_url: str, deadline: float) -> None:
    """Wait until the validation service has settled every submitted result: its durable
    consumer has nothing pending and nothing unacknowledged (it acknowledges a result once its
    job completed or was tried again)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        while time.perf_counter() < deadline:
            info = await js.consumer_info(JOBS.name, VALIDATION_RESULTS.durable)
            if not info.num_pending and not info.num_ack_pending:
                return
            await asyncio.sleep(0.05)
    finally:
        await nc.close()


async def steady_claim_latency(stack: Stack, nodes: int, *, work_s: float = 2.0, seconds: float = 10.0) -> Figure:
    """Claim latency in service: `nodes` nodes that each take about `work_s` per job (exponential,
    so asks arrive as a fleet's do, not in step), with jobs waiting. Nodes start spread over
    `work_s`; the warm-up is not counted. The offered load is nodes / work_s claims per second.

    The warm-up lasts the fair share's window (ccn_scheduler.fair_share): in a younger window a
    node whose jobs ended early holds twice the average of one or two claims, and the cap holds
    it back until others claim (p99 over a second at 200 nodes; docs/perf/job-lifecycle.md,
    round 6). The row measures the claim path in steady service, not that ramp."""
    result = precomputed_result()
    warm_up_s = max(work_s, FAIR_SHARE_WINDOW_S)
    jobs = int(nodes * (seconds + warm_up_s) / work_s * 1.2) + nodes
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await submit(http, stack, jobs, f"steady-{uuid.uuid4().hex[:8]}")
        tokens = await register_nodes(http, stack.edge, nodes)
        simulated = [SimulatedNode(token, result, work_s=work_s, ask_after_ack=True) for token in tokens]
        await asyncio.gather(*(node.connect(http, stack.edge) for node in simulated))
        gc.freeze()  # the nodes are set up: the measuring process's collections skip them
        done = asyncio.Event()
        workers = [asyncio.create_task(node.work(done, start_within_s=work_s)) for node in simulated]
        await asyncio.sleep(warm_up_s)
        counted_from = [len(node.claim_latencies) for node in simulated]
        completed_from = sum(node.completed for node in simulated)
        await asyncio.sleep(seconds)
        latencies = [
            latency
            for node, skip in zip(simulated, counted_from, strict=True)
            for latency in node.claim_latencies[skip:]
        ]
        completed = sum(node.completed for node in simulated) - completed_from
        done.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(*(node.close() for node in simulated))
    fig = figure(
        f"claim latency in service, {nodes} nodes",
        "job lifecycle",
        len(latencies),
        seconds,
        latencies,
        notes=f"jobs waiting; each node works ~{work_s:g} s per job (offered load {nodes / work_s:,.0f} claims/s); "
        f"{completed:,} jobs completed in the {seconds:g} s measured after a warm-up of {warm_up_s:g} s (the fair "
        "share's window); ops/s = claims served per second",
    )
    fig.target = "p99 < 20 ms" if nodes == 200 else None
    fig.meets_target = (fig.p99_ms or float("inf")) < 20 if nodes == 200 else None
    return fig


async def claim_latency(stack: Stack, nodes: int) -> Figure:
    """Jobs waiting first, then `nodes` nodes each asking for one at the same moment: a burst,
    the worst case, which measures how fast a backlog of asks is cleared."""
    result = precomputed_result()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await submit(http, stack, nodes * 3, f"claim-{uuid.uuid4().hex[:8]}")
        tokens = await register_nodes(http, stack.edge, nodes)
        simulated = [SimulatedNode(token, result, ask_after_ack=True) for token in tokens]
        await asyncio.gather(*(node.connect(http, stack.edge) for node in simulated))
        gc.freeze()  # the nodes are set up: the measuring process's collections skip them
        done = asyncio.Event()
        started = time.perf_counter()
        workers = [asyncio.create_task(node.work(done)) for node in simulated]
        while sum(node.completed for node in simulated) < nodes * 3 and time.perf_counter() - started < 120:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - started
        done.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(*(node.close() for node in simulated))
    latencies = [latency for node in simulated for latency in node.claim_latencies]
    return figure(
        f"claim latency, burst of {nodes} nodes",
        "job lifecycle",
        len(latencies),
        seconds,
        latencies,
        notes="burst: jobs already queued; every node asks at the same moment, then takes three in turn",
    )


async def idle_connections(stack: Stack, count: int) -> Figure:
    """`count` nodes connected and idle (a heartbeat every 30 s, inside the edge's idle limit):
    the edge process's resident memory, measured after all are connected."""
    state = load_state(stack.home)
    assert state is not None, f"no run state in {stack.home}"
    edge = next(record for record in state.processes if record.name == "edge")
    edge_process = psutil.Process(edge.pid)
    before = edge_process.memory_info().rss
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        # one session token per 100 sockets: the stack's cap on connections per node is raised to match
        tokens = await register_nodes(http, stack.edge, max(1, count // 100))
        limit = asyncio.Semaphore(200)
        sockets: list[aiohttp.ClientWebSocketResponse] = []

        async def connect(index: int) -> None:
            async with limit:
                node = SimulatedNode(tokens[index % len(tokens)], {})
                await node.connect(http, stack.edge)
                assert node.ws is not None
                sockets.append(node.ws)

        started = time.perf_counter()
        await asyncio.gather(*(connect(index) for index in range(count)))
        seconds = time.perf_counter() - started
        # a socket the edge closed meanwhile (idle past its limit on a slow machine) is counted
        # below as not open, not a crash that loses the whole report
        await asyncio.gather(
            *(ws.send_json({"type": "heartbeat", "job_ids": []}) for ws in sockets), return_exceptions=True
        )
        await asyncio.sleep(2)
        after = edge_process.memory_info().rss
        open_now = sum(not ws.closed for ws in sockets)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    mib = after / 2**20
    fig = figure(
        f"edge holding {count:,} idle WebSockets",
        "job lifecycle",
        count,
        seconds,
        notes=f"edge RSS {mib:,.0f} MiB with {open_now:,} open (was {before / 2**20:,.0f} MiB; "
        f"{(after - before) / max(1, count) / 1024:,.1f} KiB per connection); ops/s = connections opened per second",
    )
    fig.target = "< 2 GiB edge RSS"
    fig.meets_target = after < 2 * 2**30 and open_now == count
    return fig


async def change_rate_limits(stack: Stack, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Store `change(limits in force)` through the edge's admin API, and return once the edge
    enforces it: a bench run that depends on the change starts after it holds."""
    url = f"{stack.edge}/admin/limits"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {stack.admin_token}"}) as http:
        async with http.get(url) as response:
            limits = (await response.json())["limits"]
        async with http.put(url, json=change(limits)) as response:
            stored = (await response.json())["revision"]
        async with asyncio.timeout(10):
            while True:
                async with http.get(url) as response:
                    if (await response.json())["applied_revision"] >= stored:
                        return
                await asyncio.sleep(0.05)
