"""A normal burst, three times the sustainable rate for a while, then the same burst again (issue
#13, Deliver 6).

Sustainable: what the main lifecycle row measured (completed jobs/s over HTTP batch submit,
and result frames/s from its nodes). For `seconds`, open loop:
- jobs submitted over HTTP at 3x the sustainable jobs/s, in batch requests of BATCH_LINES, each
  sent when due whatever the earlier ones' fate (up to MAX_OPEN_REQUESTS open; a request due
  while all are open is counted as not sent);
- node frames at 3x the sustainable result-frame rate: the working nodes' own frames plus
  heartbeats from the same nodes (each costs the edge a registry command);
while the nodes keep taking and completing jobs. Reported: peak RSS of every service and of
nats-server (sampled every 0.25 s), the p50/p99 of accepted requests, what was refused (503 or
429, and whether with Retry-After; error frames with retry_after), what failed otherwise, the
time to drain the backlog, and the burst again once the backlog is done (no job completed for
QUIET_S, every result judged), beside the burst before (recovered: ≥ 0.8 of it)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
import msgspec
import psutil

from bench.lifecycle_bench import (
    PAYLOAD,
    SimulatedNode,
    Stack,
    all_judged,
    lifecycle,
    precomputed_result,
    register_nodes,
)
from bench.measure import Figure, figure
from ccn_cli.stack.run_state import load_state

BATCH_LINES = 100
# above the edge's default bound on requests in flight (256), so the bound, not the client, binds
MAX_OPEN_REQUESTS = 1024
OVERLOAD = 3.0
# an accepted request answered later than a command's timeout (CCN_COMMAND_TIMEOUT_S, 5 s) has
# outlived what its caller would wait for: past it, latency is not bounded in any useful sense
ACCEPTED_P99_BOUND_S = 5.0
# no job completed for this long: the overload's backlog is done
QUIET_S = 3.0


@dataclass
class Tally:
    accepted_jobs: int = 0
    latencies: list[float] = field(default_factory=list)
    refused_with_retry_after: int = 0
    refused_without_retry_after: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    not_sent: int = 0
    heartbeats: int = 0

    def fail(self, kind: str) -> None:
        self.failed[kind] = self.failed.get(kind, 0) + 1


async def _sample_rss(processes: dict[str, psutil.Process], peaks: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name, process in processes.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                peaks[name] = max(peaks.get(name, 0), process.memory_info().rss)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def _submit_open_loop(
    http: aiohttp.ClientSession, stack: Stack, jobs_per_s: float, seconds: float, tally: Tally
) -> None:
    body = b"\n".join([msgspec.json.encode({"job_type": "extract_text", "payload": PAYLOAD})] * BATCH_LINES)
    interval = BATCH_LINES / jobs_per_s
    open_requests: set[asyncio.Task[None]] = set()

    async def one(part: int) -> None:
        started = time.perf_counter()
        try:
            async with http.post(
                f"{stack.edge}/jobs/batch?batch_id=overload-{uuid.uuid4().hex[:8]}-{part}&chunk_size=100",
                data=body,
                headers={"Authorization": f"Bearer {stack.admin_token}"},
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                await response.read()
                if response.status == 201:
                    tally.accepted_jobs += BATCH_LINES
                    tally.latencies.append(time.perf_counter() - started)
                elif response.status in (429, 503):
                    if "Retry-After" in response.headers:
                        tally.refused_with_retry_after += 1
                    else:
                        tally.refused_without_retry_after += 1
                else:
                    tally.fail(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.fail(type(exc).__name__)

    started = time.perf_counter()
    part = 0
    while (due := started + part * interval) < started + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if len(open_requests) >= MAX_OPEN_REQUESTS:
            tally.not_sent += 1
        else:
            task = asyncio.create_task(one(part))
            open_requests.add(task)
            task.add_done_callback(open_requests.discard)
        part += 1
    await asyncio.gather(*open_requests, return_exceptions=True)


async def _heartbeat_flood(nodes: list[SimulatedNode], frames_per_s: float, seconds: float, tally: Tally) -> None:
    """Heartbeats spread over the nodes at `frames_per_s`, sent in ticks of 10 ms."""
    tick = 0.01
    per_tick = frames_per_s * tick
    owed = 0.0
    started = time.perf_counter()
    index = 0
    while time.perf_counter() - started < seconds:
        owed += per_tick
        while owed >= 1:
            node = nodes[index % len(nodes)]
            index += 1
            owed -= 1
            if node.ws is not None and not node.ws.closed:
                with contextlib.suppress(ConnectionResetError, RuntimeError):
                    await node.ws.send_str('{"type":"heartbeat","job_ids":[]}')
                    tally.heartbeats += 1
        await asyncio.sleep(tick)


async def _settled(simulated: list[SimulatedNode], stack: Stack, deadline: float) -> None:
    """Until the nodes have completed nothing for QUIET_S and the validation service has
    judged every result, or the deadline passes."""
    last, since = -1, time.perf_counter()
    while time.perf_counter() < deadline:
        completed = sum(node.completed for node in simulated)
        if completed != last:
            last, since = completed, time.perf_counter()
        elif time.perf_counter() - since >= QUIET_S:
            break
        await asyncio.sleep(0.1)
    await all_judged(stack.env["CCN_NATS_URL"], deadline)


async def overload(
    stack: Stack,
    main: Figure,
    result_frames_per_s: float,
    *,
    nodes: int,
    concurrency: int,
    seconds: float,
    burst_jobs: int,
    drain_s: float,
) -> list[Figure]:
    state = load_state(stack.home)
    assert state is not None, f"no run state in {stack.home}"
    watched = {
        record.name: psutil.Process(record.pid) for record in state.processes if record.kind in ("service", "nats")
    }

    # the same burst as after, just before: the yardstick of recovery. The main row ran on a
    # shorter stream, and the server's cost per job grows with the stream's subjects until a
    # million (docs/perf/job-lifecycle.md, round 9): beside the main row, "after" would count
    # the rows in between as the overload's harm
    async def burst(when: str) -> Figure:
        label = f"{when} overload: {nodes} nodes x{concurrency}, batched"
        return await lifecycle(stack, nodes=nodes, jobs=burst_jobs, label=label, concurrency=concurrency, batch=True)

    before = await burst("before")
    before.target, before.meets_target = None, None  # a yardstick, not a row with a target of its own
    peaks: dict[str, int] = {}
    tally = Tally()
    jobs_per_s = OVERLOAD * main.ops_per_s
    heartbeats_per_s = max(0.0, OVERLOAD * result_frames_per_s - result_frames_per_s)
    result = precomputed_result()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tokens = await register_nodes(http, stack.edge, nodes)
        simulated = [SimulatedNode(token, result, concurrency, batch=True) for token in tokens]
        await asyncio.gather(*(node.connect(http, stack.edge) for node in simulated))
        gc.freeze()
        done = asyncio.Event()
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(watched, peaks, stop_sampling))
        workers = [asyncio.create_task(node.work(done)) for node in simulated]
        started = time.perf_counter()
        await asyncio.gather(
            _submit_open_loop(http, stack, jobs_per_s, seconds, tally),
            _heartbeat_flood(simulated, heartbeats_per_s, seconds, tally),
        )
        overload_s = time.perf_counter() - started
        completed_in_overload = sum(node.completed for node in simulated)
        # the backlog drains at whatever speed the system now has
        while sum(node.completed for node in simulated) < tally.accepted_jobs:
            if time.perf_counter() - started > overload_s + drain_s:
                break
            await asyncio.sleep(0.1)
        drained_s = time.perf_counter() - started - overload_s
        completed = sum(node.completed for node in simulated)
        # the burst after measures a stack that has settled: no node still finishing the backlog
        # (jobs of requests the client gave up on may have been accepted too) and every result
        # judged; measured during the drain, it would share the machine with it
        await _settled(simulated, stack, time.perf_counter() + drain_s)
        stop_sampling.set()
        await sampler
        done.set()
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(*(node.close() for node in simulated))
    frame_refusals = sum(1 for node in simulated for error in node.errors if error.get("retry_after") is not None)
    other_errors = sum(1 for node in simulated for error in node.errors if error.get("retry_after") is None)
    offered_frames = (tally.heartbeats + sum(node.result_frames for node in simulated)) / overload_s
    rss = ", ".join(f"{name} {peak / 2**20:,.0f}" for name, peak in sorted(peaks.items()))
    refused = tally.refused_with_retry_after + tally.refused_without_retry_after
    failed = ", ".join(f"{kind} {count}" for kind, count in tally.failed.items()) or "none"
    row = figure(
        f"overload: {OVERLOAD:g}x for {seconds:g} s",
        "job lifecycle",
        tally.accepted_jobs,
        overload_s,
        tally.latencies,
        notes=f"offered {jobs_per_s:,.0f} jobs/s over HTTP ({BATCH_LINES} per request; {tally.not_sent} requests "
        f"not sent, the client at {MAX_OPEN_REQUESTS} open) and {offered_frames:,.0f} node frames/s "
        f"({tally.heartbeats:,} heartbeats on top of the nodes' result frames); accepted {tally.accepted_jobs:,} jobs, "
        f"p50/p99: accepted requests; refused {refused} requests ({tally.refused_with_retry_after} with Retry-After), "
        f"other failures: {failed}; error frames with retry_after {frame_refusals}, other error frames {other_errors}; "
        f"{completed_in_overload:,} completed during it, {completed:,}/{tally.accepted_jobs:,} after "
        f"{drained_s:,.1f} s more; peak RSS MiB: {rss}",
    )
    row.target = f"nothing accepted lost, accepted p99 < {ACCEPTED_P99_BOUND_S:g} s"
    row.meets_target = completed >= tally.accepted_jobs and (row.p99_ms or 0) < ACCEPTED_P99_BOUND_S * 1000
    after = await burst("after")
    after.ratio_to_baseline = round(after.ops_per_s / before.ops_per_s, 3) if before.ops_per_s else None
    after.baseline = before.name
    after.target = ">= 0.8 of the same burst before the overload (recovered)"
    after.meets_target = (after.ratio_to_baseline or 0) >= 0.8
    if main.ops_per_s:
        after.notes += f"; {after.ops_per_s / main.ops_per_s:.2f} of the main row, which ran on a shorter stream"
    return [before, row, after]
