"""Chaos on the job lifecycle, on the real NATS and Postgres: three scheduler replicas, two edge
replicas, simulated nodes over real WebSockets spread over both edges, and nodes killed at
random mid-job (the socket aborted with no result, or right after sending one, then the node
reconnects later, to either edge, with the same session). A killed job's lease (2 s) expires,
the job is abandoned and retried on another node. Checked against the CCN_JOBS event stream:

* every job ends completed or dead, none stuck in queued/claimed/retry_wait;
* no job has two job.completed; each has exactly one job.completed or ends job.dead, and a dead
  job used up all its attempts;
* a job is never held by two nodes: a job.claimed only after the previous attempt ended
  (job.abandoned / job.failed), renewals and completions only from the holder;
* every completed result is the true one for its page, and the nodes' acks agree with the stream;
* every offer a node got was its own claim of that attempt, never offered twice, and an attempt
  whose node died holding it (no result sent) ended by its lease expiring (job.abandoned);
* the scheduler's community_jobs read model agrees once its projection has caught up.

Two sizes: the small form (300 jobs, 10 nodes) runs in plain `make test`; the full form from
issue #4 (5,000 jobs, 50 nodes) is marked `slow` and skipped unless CCN_SLOW=1:

    CCN_SLOW=1 .venv/bin/python -m pytest tests/integration/test_job_chaos.py -p no:cacheprovider -s

(-s prints a summary line: kills, event counts, timings.) The last test pins a liveness fault
this battery found in the scheduler's former claim ledger (a failed job kept its node's slot for 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_core.commands import CommandClient
from ccn_core.eventstore import EventStore
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import JOBS
from ccn_edge.app import start_edge
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from ccn_proto.jobs import (
    JobAbandoned,
    JobClaimed,
    JobCompleted,
    JobCreated,
    JobDead,
    JobFailed,
    JobReleased,
    JobResultSubmitted,
    LeaseRenewed,
)
from ccn_proto.scheduler import FailJob, FailJobReply
from ccn_registry.app import start_registry
from ccn_scheduler.app import start_scheduler
from tests.conftest import free_port, make_settings
from tests.integration.test_edge_jobs import Edge, hello, registered_node
from tests.integration.test_scheduler import FAST, answering, job_events, scheduler_client, schedulers
from tests.support.servers import until_ready
from tests.support.sizes import small_and_full
from tests.support.validation import validation_service


@dataclass(frozen=True)
class Size:
    jobs: int
    nodes: int
    edges: int = 2
    schedulers: int = 3
    concurrency: int = 2
    kill_rate: float = 0.04  # per offer: the socket is aborted with no result
    kill_after_result_rate: float = 0.01  # per offer: the result is sent, then the socket aborted
    max_retries: int = 3
    lease_s: float = 2.0
    timeout_s: float = 60.0  # for every job to end, once all are submitted


SMALL = Size(jobs=300, nodes=10)
FULL = Size(jobs=5_000, nodes=50, timeout_s=600.0)
PAGES = 25
TERMINAL = {"job.completed", "job.dead", "job.cancelled"}


@dataclass
class Stack:
    edges: list[Edge]
    settings: Settings


@contextlib.asynccontextmanager
async def chaos_stack(settings: Settings, size: Size) -> AsyncIterator[Stack]:
    """Registry, `size.schedulers` scheduler replicas and `size.edges` edge replicas, each a
    Runtime of its own, in this test's loop."""
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_runtime("registry", settings))
        await start_registry(registry, health=False, observe=False)
        for index in range(size.schedulers):
            replica = msgspec.structs.replace(settings, replica_id=f"scheduler-{index}")
            runtime = await stack.enter_async_context(open_runtime("scheduler", replica))
            await start_scheduler(runtime, health=False, options=FAST)
        await answering(settings.effective_nats_url)
        await stack.enter_async_context(validation_service(settings))
        edges = []
        for index in range(size.edges):
            replica = msgspec.structs.replace(settings, edge_port=free_port(), replica_id=f"edge-{index}")
            runtime = await stack.enter_async_context(open_runtime("edge", replica))
            start_edge(runtime)
            edges.append(
                Edge(url=f"http://127.0.0.1:{replica.edge_port}", settings=replica, scheduler=CommandClient(runtime.nc))
            )
        async with aiohttp.ClientSession() as http, asyncio.timeout(15):
            for edge in edges:
                await until_ready(http, edge.url)
        yield Stack(edges=edges, settings=settings)


@dataclass
class Answers:
    """Each distinct page's true result, computed once: the simulated nodes answer instantly."""

    by_url: dict[str, tuple[dict[str, Any], str]]

    @classmethod
    def of(cls, pages: int) -> Answers:
        by_url = {}
        for page in grant_pages(pages):
            result = result_to_builtins(run_job("extract_text", {"html": page.html, "url": page.url}))
            by_url[page.url] = (result, result_checksum(result))
        return cls(by_url)


@dataclass
class ChaosNode:
    """A node that sometimes dies mid-job: its socket is aborted (no close frame, no result),
    and it comes back a little later on the next edge with the same session token."""

    index: int
    node: dict[str, Any]
    edges: list[str]
    answers: Answers
    size: Size
    rng: random.Random
    offers: list[tuple[str, int]] = field(default_factory=list)  # (job id, attempt)
    acked: Counter[str] = field(default_factory=Counter)  # job id → acks of a recorded result
    killed_holding: list[tuple[str, int]] = field(default_factory=list)  # (job, attempt) held, no result sent
    died_after_result: list[str] = field(default_factory=list)  # result sent, died before its ack
    errors: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    kills: int = 0

    async def run(self, http: aiohttp.ClientSession, done: asyncio.Event) -> None:
        while not done.is_set():
            edge = self.edges[(self.index + self.connections) % len(self.edges)]
            self.connections += 1
            try:
                killed = await self._connection(http, edge, done)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                self.errors.append({"type": "client", "message": repr(exc)})
                killed = True
            if killed:
                await asyncio.sleep(self.rng.uniform(0.2, 1.0))

    async def _connection(self, http: aiohttp.ClientSession, edge: str, done: asyncio.Event) -> bool:
        """One connection's life; True when it ended by a kill (or was lost)."""
        ws = await http.ws_connect(f"{edge.replace('http', 'ws')}/ws", max_msg_size=0)
        try:
            await ws.send_json(
                hello(self.node, capabilities={"job_types": ["extract_text"], "concurrency": self.size.concurrency})
            )
            welcome = await ws.receive_json(timeout=15)
            if welcome["type"] != "welcome":
                self.errors.append(welcome)
                return True
            held: dict[str, int] = {}  # job id → attempt
            answered: set[str] = set()  # held jobs whose result was sent, not yet acked
            await ws.send_json({"type": "ready", "slots": self.size.concurrency})
            last_beat = time.monotonic()
            while not done.is_set():
                if time.monotonic() - last_beat > 3:
                    await ws.send_json({"type": "heartbeat", "job_ids": sorted(held)})
                    last_beat = time.monotonic()
                try:
                    message = await ws.receive(timeout=0.5)
                except TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    return True  # the edge hung up: come back as after a kill
                frame = json.loads(message.data)
                if frame["type"] == "job_offer":
                    job_id = frame["job_id"]
                    self.offers.append((job_id, frame["attempt"]))
                    held[job_id] = frame["attempt"]
                    fate = self.rng.random()
                    if fate < self.size.kill_rate:
                        self._kill(ws, held, answered)
                        return True
                    result, checksum = self.answers.by_url[frame["payload"]["url"]]
                    await ws.send_json({"type": "result", "job_id": job_id, "result": result, "checksum": checksum})
                    answered.add(job_id)
                    if fate < self.size.kill_rate + self.size.kill_after_result_rate:
                        self._kill(ws, held, answered)
                        return True
                elif frame["type"] == "ack":
                    held.pop(frame["job_id"], None)
                    answered.discard(frame["job_id"])
                    if frame["status"] == "validating":
                        self.acked[frame["job_id"]] += 1
                    await ws.send_json({"type": "ready", "slots": self.size.concurrency - len(held)})
                elif frame["type"] == "error":
                    self.errors.append(frame)
                    if frame.get("job_id") in held and frame["code"] in ("conflict", "forbidden"):
                        held.pop(frame["job_id"], None)  # the lease is gone: the edge let go of it too
                        answered.discard(frame["job_id"])
                        await ws.send_json({"type": "ready", "slots": self.size.concurrency - len(held)})
                    elif frame.get("job_id") in held:
                        raise AssertionError(f"unexpected error for a held job: {frame}")
            await ws.send_json({"type": "bye"})
            return False
        finally:
            if not ws.closed:
                await ws.close()

    def _kill(self, ws: aiohttp.ClientWebSocketResponse, held: dict[str, int], answered: set[str]) -> None:
        """Die as a killed process does: the TCP connection goes, no close frame is sent. A job
        whose result was sent may or may not have completed; one without may not."""
        self.kills += 1
        for job_id, attempt in held.items():
            if job_id in answered:
                self.died_after_result.append(job_id)
            else:
                self.killed_holding.append((job_id, attempt))
        connection = ws._response.connection
        if connection is not None and connection.transport is not None:
            connection.transport.abort()


async def submit(http: aiohttp.ClientSession, edge: Edge, batch_id: str, lines: list[dict[str, Any]]) -> list[str]:
    body = "\n".join(json.dumps(line) for line in lines).encode()
    async with http.post(
        f"{edge.url}/jobs/batch?batch_id={batch_id}&chunk_size=500",
        data=body,
        headers={"Authorization": f"Bearer {edge.settings.admin_token}"},
        timeout=aiohttp.ClientTimeout(total=600),
    ) as response:
        reply = await response.json()
        assert response.status == 201, reply
        assert reply["created"] == len(lines), reply
        job_ids: list[str] = reply["job_ids"]
        return job_ids


async def terminal_jobs(nc: NATS) -> set[str]:
    """Jobs with a terminal event in the stream (read by subject, without the payloads)."""
    store = EventStore(nc)
    await store.start()
    try:
        ended: set[str] = set()
        for kind in ("completed", "dead", "cancelled"):
            ended.update(stored.subject.split(".")[2] for stored in await store.read(JOBS.name, f"ccn.job.*.{kind}"))
        return ended
    finally:
        await store.close()


def audit(events: list[Any], size: Size, answers: Answers) -> dict[str, Any]:
    """Walk every job's events in stream order; fail on any double hold or double completion.
    Returns each job's terminal event type, attempts, completing node and counters."""
    by_job: dict[str, list[Any]] = defaultdict(list)
    for envelope in events:
        by_job[envelope.aggregate_id].append(envelope)
    ends: dict[str, str] = {}
    attempts: dict[str, int] = {}
    completed_by: dict[str, str] = {}
    submitted_by: dict[str, str] = {}
    claims: dict[tuple[str, int], str] = {}  # (job, attempt) → the node it was claimed for
    attempt_ends: dict[tuple[str, int], str] = {}  # (job, attempt) → the event that ended it
    counts = Counter[str]()
    for job_id, history in by_job.items():
        assert isinstance(history[0].data, JobCreated), (job_id, history[0].type)
        url = history[0].data.payload["url"]
        holder: str | None = None
        attempt = 0
        end: str | None = None
        for envelope in history[1:]:
            event = envelope.data
            counts[envelope.type] += 1
            assert end is None, f"{job_id}: {envelope.type} after {end}"
            match event:
                case JobClaimed():
                    assert holder is None, f"{job_id}: claimed by {event.node_id} while {holder} holds it"
                    assert event.attempt == attempt + 1, (job_id, event.attempt, attempt)
                    holder, attempt = event.node_id, event.attempt
                    claims[job_id, attempt] = holder
                case LeaseRenewed():
                    assert event.node_id == holder, f"{job_id}: renewed by {event.node_id}, held by {holder}"
                case JobResultSubmitted():
                    # the holder's part ends; the verdict settles the job (ADR 0024)
                    assert (event.node_id, event.attempt) == (holder, attempt), (job_id, event, holder, attempt)
                    assert (event.result, event.checksum) == answers.by_url[url], job_id
                    attempt_ends[job_id, attempt] = envelope.type
                    submitted_by[job_id] = event.node_id
                    holder = None
                case JobCompleted():
                    assert holder is None and submitted_by.get(job_id) == event.node_id, (job_id, event, holder)
                    assert event.attempt == attempt, (job_id, event, attempt)
                    assert (event.result, event.checksum) == answers.by_url[url], job_id
                    completed_by[job_id] = event.node_id
                    end = envelope.type
                case JobFailed() | JobAbandoned():
                    assert (event.node_id, event.attempt) == (holder, attempt), (job_id, event, holder, attempt)
                    attempt_ends[job_id, attempt] = envelope.type
                    holder = None
                case JobReleased():
                    # handed back unworked (its offer never reached the node): the attempt is
                    # not counted, so the next claim carries the same number
                    assert (event.node_id, event.attempt) == (holder, attempt), (job_id, event, holder, attempt)
                    counts["released"] += 1
                    holder, attempt = None, attempt - 1
                case JobDead():
                    assert holder is None and event.attempts == attempt, (job_id, event, holder, attempt)
                    assert attempt == size.max_retries + 1, f"{job_id} died after {attempt} attempts"
                    end = envelope.type
                case _:
                    raise AssertionError(f"{job_id}: unexpected {envelope.type}")
        assert end in ("job.completed", "job.dead"), f"{job_id} is stuck: {[e.type for e in history]}"
        ends[job_id] = end
        attempts[job_id] = attempt
    return {
        "ends": ends,
        "attempts": attempts,
        "completed_by": completed_by,
        "claims": claims,
        "attempt_ends": attempt_ends,
        "counts": counts,
    }


async def read_model_agrees(database_url: str, ends: dict[str, str], attempts: dict[str, int]) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT job_id::text AS job_id, status, attempt FROM community_jobs")
    finally:
        await conn.close()
    projected = {row["job_id"]: (row["status"], row["attempt"]) for row in rows}
    expected = {job_id: (end.removeprefix("job."), attempts[job_id]) for job_id, end in ends.items()}
    return projected == expected


@pytest.mark.parametrize(
    "size",
    small_and_full(SMALL, FULL, "the full chaos battery"),
)
async def test_jobs_complete_exactly_once_while_nodes_are_killed_mid_job(
    isolated_nats: str, fresh_database: str, tmp_path: Path, size: Size
) -> None:
    settings = make_settings(isolated_nats, fresh_database, tmp_path)
    begun = time.monotonic()
    answers = Answers.of(PAGES)
    pages = grant_pages(PAGES)
    lines = [
        {
            "job_type": "extract_text",
            "payload": {"html": pages[i % PAGES].html, "url": pages[i % PAGES].url},
            "item_key": f"job-{i}",
            "max_retries": size.max_retries,
            "lease_s": size.lease_s,
        }
        for i in range(size.jobs)
    ]
    started = time.monotonic()
    print(f"\nanswers computed in {started - begun:.1f}s")
    async with (
        chaos_stack(settings, size) as stack,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        registered = await asyncio.gather(*(registered_node(http, stack.edges[0]) for _ in range(size.nodes)))
        nodes = [
            ChaosNode(
                index=index,
                node=node,
                edges=[edge.url for edge in stack.edges],
                answers=answers,
                size=size,
                rng=random.Random(index),
            )
            for index, node in enumerate(registered)
        ]
        done = asyncio.Event()
        workers = [asyncio.create_task(node.run(http, done)) for node in nodes]
        # half the jobs through each edge, while the nodes already work
        halves = [lines[: size.jobs // 2], lines[size.jobs // 2 :]]
        submitted = await asyncio.gather(
            *(submit(http, stack.edges[i % len(stack.edges)], f"chaos-{i}", half) for i, half in enumerate(halves))
        )
        job_ids = {job_id for batch in submitted for job_id in batch}
        assert len(job_ids) == size.jobs
        submitted_at = time.monotonic()

        nc = await nats.connect(settings.effective_nats_url)
        try:
            ended: set[str] = set()
            progress: list[tuple[float, int]] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(size.timeout_s):
                    while (ended := await terminal_jobs(nc)) != job_ids:
                        progress.append((round(time.monotonic() - started, 1), len(ended)))
                        assert all(not worker.done() for worker in workers), [w.exception() for w in workers]
                        await asyncio.sleep(0.5)
            finished_at = time.monotonic()
            done.set()
            await asyncio.gather(*workers)
            nodes_gone_at = time.monotonic()
            events = await job_events(nc)
        finally:
            await nc.drain()

        stuck = job_ids - ended
        verdict = audit(events, size, answers)  # names a stuck job's history if there is one
        assert not stuck, f"{len(stuck)} jobs stuck, e.g. {sorted(stuck)[:5]}"
        ends: dict[str, str] = verdict["ends"]
        assert set(ends) == job_ids

        # the nodes' view agrees with the stream: an ack for every completion (but those whose
        # node died right after sending the result), never two, and from the completing node
        acks = Counter[str]()
        for node in nodes:
            acks.update(node.acked)
        assert max(acks.values(), default=0) <= 1
        completed = {job_id for job_id, end in ends.items() if end == "job.completed"}
        assert set(acks) <= completed
        died_after_result = {job_id for node in nodes for job_id in node.died_after_result}
        assert completed - set(acks) <= died_after_result
        node_ids = {node.node["node_public_id"]: node for node in nodes}
        for job_id, node_id in verdict["completed_by"].items():
            if job_id in acks:
                assert node_ids[node_id].acked[job_id] == 1, job_id

        # every offer a node got was that node's claim of that attempt, and no attempt went to two
        # nodes; an attempt whose node died holding it (no result sent) ended by its lease expiring
        offered = Counter(offer for node in nodes for offer in node.offers)
        assert max(offered.values()) == 1, offered.most_common(3)
        claims: dict[tuple[str, int], str] = verdict["claims"]
        for node in nodes:
            for offer in node.offers:
                assert claims[offer] == node.node["node_public_id"], offer
            for killed in node.killed_holding:
                assert verdict["attempt_ends"][killed] == "job.abandoned", (killed, verdict["attempt_ends"][killed])

        # the chaos happened, and nearly everything still completed
        kills = sum(node.kills for node in nodes)
        counts: Counter[str] = verdict["counts"]
        dead = size.jobs - len(completed)
        assert kills >= 3 and counts["job.abandoned"] >= 1, (kills, counts)
        assert dead <= size.jobs // 100, f"{dead} dead jobs"

        # the scheduler's read model catches up and agrees
        async with asyncio.timeout(60):
            while not await read_model_agrees(settings.effective_database_url, ends, verdict["attempts"]):
                await asyncio.sleep(0.5)
        projected_at = time.monotonic()

    errors = Counter(f"{e['type']}:{e.get('code') or e.get('message', '')[:60]}" for n in nodes for e in n.errors)
    print(
        f"\nchaos {size.jobs} jobs / {size.nodes} nodes: {len(completed)} completed, {dead} dead; "
        f"{kills} kills ({len(died_after_result)} jobs with their result in flight), {dict(counts)}; "
        f"submitted in {submitted_at - started:.1f}s, all ended after {finished_at - started:.1f}s, "
        f"nodes gone {nodes_gone_at - finished_at:.1f}s later, read model agreed after {projected_at - started:.1f}s, "
        f"stack down after {time.monotonic() - started:.1f}s; progress {progress[::4]}; node errors {dict(errors)}"
    )


async def test_a_node_whose_job_ended_without_completing_gets_its_slot_back(
    isolated_nats: str, fresh_database: str, tmp_path: Path
) -> None:
    """What the chaos battery found: a node that failed (or was killed holding) a job could claim
    nothing for 30 s while that job waited in retry_wait/queued, and a killed node's edge spun
    on empty claim replies meanwhile."""
    own_settings = make_settings(isolated_nats, fresh_database, tmp_path)
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        first = await api.create("fails once", max_retries=2)
        assert [o.job_id for o in (await api.claim("n1", wait_s=2)).offers] == [first.job_id]
        failed = await api.call(FailJob(node_id="n1", job_id=first.job_id, reason="crashed"), FailJobReply)
        assert failed.status == "retry_wait"
        second = await api.create("another")
        again = await api.claim("n1", wait_s=3)
        assert again.held <= 1 and {o.job_id for o in again.offers} & {first.job_id, second.job_id}
