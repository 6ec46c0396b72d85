"""What a job costs, counted the same way for the full system and for the bare event store
(issue #13): CPU per job of every process (psutil: each service, nats-server, every PostgreSQL
backend, the bench process) and NATS messages per job at the server (`/varz` in_msgs + out_msgs).
Both are deltas over a window that holds only the work being measured."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
import psutil
from nats.aio.client import Client as NATS

from bench.bare_lifecycle import BARE_SUBJECT_ROOT
from bench.design_floor import DURABLES, FLOOR_STREAM_NAME, FLOOR_SUBJECT_ROOT, floor_consumer
from bench.eventstore_bench import fresh_bench_stream
from bench.measure import Figure, figure
from ccn_cli.stack.run_state import load_state
from ccn_core.settings import Settings
from ccn_core.topology import StreamSpec

BARE_STREAM = StreamSpec(name="BENCH_BARE_JOBS", subjects=(f"{BARE_SUBJECT_ROOT}.>",), description="bare lifecycle")
FLOOR_TIMEOUT_S = 600.0
FLOOR_STREAM = StreamSpec(name=FLOOR_STREAM_NAME, subjects=(f"{FLOOR_SUBJECT_ROOT}.>",), description="design floor")


def cpu_seconds(process: psutil.Process) -> float:
    """User and system time of the process and of its children it has reaped (PostgreSQL's
    short-lived backends, the bare path's worker processes)."""
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        times = process.cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    return 0.0


@dataclass
class CpuMeter:
    """CPU seconds per named group of processes between start() and stop(). A group's live
    children are counted too (PostgreSQL's backends under the postmaster), each from when the
    window opened or when it started, whichever is later."""

    roots: dict[str, psutil.Process]
    with_children: frozenset[str] = frozenset()
    _start: dict[int, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def _members(self, name: str) -> list[psutil.Process]:
        root = self.roots[name]
        if name not in self.with_children:
            return [root]
        with contextlib.suppress(psutil.NoSuchProcess):
            return [root, *root.children(recursive=True)]
        return [root]

    def start(self) -> None:
        self._start = {process.pid: cpu_seconds(process) for name in self.roots for process in self._members(name)}

    def stop(self) -> dict[str, float]:
        self.spent = {
            name: sum(cpu_seconds(process) - self._start.get(process.pid, 0.0) for process in self._members(name))
            for name in self.roots
        }
        return self.spent


def stack_processes(home: Path, nats_pid: int, postgres_pid: int) -> dict[str, psutil.Process]:
    """Every process a job passes through: the stack's services, nats-server, PostgreSQL, this one."""
    state = load_state(home)
    assert state is not None, f"no run state in {home}"
    processes = {record.name: psutil.Process(record.pid) for record in state.processes if record.kind == "service"}
    processes["nats-server"] = psutil.Process(nats_pid)
    processes["postgresql"] = psutil.Process(postgres_pid)
    processes["bench"] = psutil.Process()
    return processes


class _Varz(msgspec.Struct):
    in_msgs: int = 0
    out_msgs: int = 0


async def nats_messages(monitor_url: str) -> int:
    """Messages into and out of the server so far."""
    async with aiohttp.ClientSession() as http, http.get(f"{monitor_url}/varz") as response:
        varz = msgspec.json.decode(await response.read(), type=_Varz)
    return varz.in_msgs + varz.out_msgs


@dataclass
class JobCosts:
    """One measured run: jobs, seconds, CPU seconds per process group, NATS messages."""

    label: str
    jobs: int
    seconds: float
    cpu_s: dict[str, float]
    nats_messages: int
    waited_s: float = 0.0  # for the services to catch up before this run

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * sum(self.cpu_s.values()) / max(1, self.jobs)

    @property
    def messages_per_job(self) -> float:
        return self.nats_messages / max(1, self.jobs)

    def breakdown(self) -> str:
        parts = sorted(self.cpu_s.items(), key=lambda item: -item[1])
        per_job = ", ".join(f"{name} {1000 * spent / max(1, self.jobs):.3f}" for name, spent in parts)
        return f"CPU ms/job {per_job}: {self.cpu_ms_per_job:.3f} in all; NATS msgs/job {self.messages_per_job:.1f}"


class CostProbe:
    """Opens and closes the window around a run: CPU per process and the server's message count."""

    def __init__(self, meter: CpuMeter, monitor_url: str) -> None:
        self._meter = meter
        self._monitor_url = monitor_url
        self._messages = 0
        self.costs: JobCosts | None = None

    async def start(self) -> None:
        self._messages = await nats_messages(self._monitor_url)
        self._meter.start()

    async def stop(self, label: str, jobs: int, seconds: float) -> JobCosts:
        spent = self._meter.stop()
        messages = await nats_messages(self._monitor_url) - self._messages
        self.costs = JobCosts(label=label, jobs=jobs, seconds=seconds, cpu_s=spent, nats_messages=messages)
        return self.costs


async def caught_up(nc: NATS, timeout_s: float) -> float:
    """Wait until every durable consumer of every stream has nothing pending or unacknowledged
    (the projections and reactors have caught up with the run before), at most `timeout_s`;
    returns the seconds waited. Measured before that, the bare path would share the machine
    with the services' catch-up."""
    js = nc.jetstream()
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        busy = False
        for stream in await js.streams_info():
            for consumer in await js.consumers_info(stream.config.name):
                busy = busy or bool(consumer.num_pending) or bool(consumer.num_ack_pending)
        if not busy:
            break
        await asyncio.sleep(0.5)
    return time.perf_counter() - started


async def bare_lifecycle(
    nc: NATS, settings: Settings, nats_pid: int, monitor_url: str, jobs: int, processes: int = 2
) -> JobCosts:
    """The bare path on the lifecycle's own NATS server, in `processes` worker processes, once
    the services have caught up with the run before it."""
    waited = await caught_up(nc, timeout_s=300)
    js = nc.jetstream()
    await fresh_bench_stream(nc, settings, BARE_STREAM)
    # the workers count their own CPU around their pipelines: their start-up is not the path's
    meter = CpuMeter({"nats-server": psutil.Process(nats_pid)})
    probe = CostProbe(meter, monitor_url)
    share = jobs // processes
    await probe.start()
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.bare_lifecycle",
            settings.effective_nats_url,
            str(index * share),
            str(share),
            stdout=asyncio.subprocess.PIPE,
        )
        for index in range(processes)
    ]
    outputs = await asyncio.gather(*(worker.communicate() for worker in workers))
    reports = [msgspec.json.decode(out.strip().splitlines()[-1]) for out, _ in outputs]
    seconds = max(report["seconds"] for report in reports)
    costs = await probe.stop("bare event-store lifecycle", share * processes, seconds)
    costs.cpu_s["bare workers"] = sum(report["cpu_s"] for report in reports)
    costs.waited_s = waited
    rejected = sum(report["rejected"] for report in reports)
    assert rejected == 0, f"{rejected} bare appends were refused"
    await js.delete_stream(BARE_STREAM.name)
    return costs


async def floor_lifecycle(nc: NATS, settings: Settings, nats_pid: int, monitor_url: str, jobs: int) -> JobCosts:
    """The design's floor (bench/design_floor.py) on the lifecycle's own NATS server, once the
    services have caught up: its readers start first, then the claim owner."""
    waited = await caught_up(nc, timeout_s=300)
    js = nc.jetstream()
    await fresh_bench_stream(nc, settings, FLOOR_STREAM)
    for role in DURABLES:
        await js.add_consumer(FLOOR_STREAM.name, floor_consumer(role))
    meter = CpuMeter({"nats-server": psutil.Process(nats_pid)})
    probe = CostProbe(meter, monitor_url)

    async def spawn(role: str) -> asyncio.subprocess.Process:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.design_floor",
            role,
            settings.effective_nats_url,
            str(jobs),
            stdout=asyncio.subprocess.PIPE,
        )
        assert worker.stdout is not None
        assert (await worker.stdout.readline()).strip() == b"ready"
        return worker

    readers = [await spawn(role) for role in ("validator", "projector", "merger")]
    await probe.start()
    workers = [*readers, await spawn("owner")]
    try:
        # a refused append would leave its job's later steps waiting for good: bounded here
        async with asyncio.timeout(FLOOR_TIMEOUT_S):
            outputs = await asyncio.gather(*(worker.communicate() for worker in workers))
    except TimeoutError:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
        raise RuntimeError(f"the design floor's {jobs} jobs did not finish within {FLOOR_TIMEOUT_S:.0f} s") from None
    reports = [msgspec.json.decode(out.strip().splitlines()[-1]) for out, _ in outputs]
    by_role = {report["role"]: report for report in reports}
    seconds = max(report["finished_at"] for report in reports) - by_role["owner"]["started_at"]
    costs = await probe.stop("design floor", jobs, seconds)
    for report in reports:
        costs.cpu_s[report["role"]] = report["cpu_s"]
    costs.waited_s = waited
    rejected = sum(report["rejected"] for report in reports)
    assert rejected == 0, f"{rejected} design-floor appends were refused"
    await js.delete_stream(FLOOR_STREAM.name)
    return costs


def bare_figure(bare: JobCosts, *, synced: str | None = None) -> Figure:
    """The bare path's row; `synced`: the server's sync_interval, named when it is not the default."""
    on = f", NATS sync_interval {synced}" if synced else ""
    return figure(
        f"bare event store: 3 OCC appends per job{on}",
        "job lifecycle",
        bare.jobs,
        bare.seconds,
        notes=f"created (with the page), claimed, completed; each acked before the next; {512} jobs in flight per "
        f"process, 2 processes, uvloop; no services, no PostgreSQL, no WebSocket; started once the services' "
        f"consumers had caught up ({bare.waited_s:.0f} s after the row before it). {bare.breakdown()}",
    )


def floor_figures(floor: JobCosts, bare: JobCosts) -> list[Figure]:
    """The design floor's row, and the throughput two cores allow at its CPU per job: what
    issue #13's targets ask of the design itself, before any service's code."""
    cpu_ratio = floor.cpu_ms_per_job / bare.cpu_ms_per_job if bare.cpu_ms_per_job else float("nan")
    messages_ratio = floor.messages_per_job / bare.messages_per_job if bare.messages_per_job else float("nan")
    row = figure(
        "design floor: bare path + the fewest readers the design has",
        "job lifecycle",
        floor.jobs,
        floor.seconds,
        notes=f"5 OCC appends a job (created, claimed, result_submitted by the owner; validated by a validator "
        f"reading result_submitted; completed by the owner reading validated), a projector reading every event, "
        f"a merger reading completed; each reader a process that only decodes and appends; no PostgreSQL, "
        f"no WebSocket, no analytics, registry or crawler. CPU {cpu_ratio:.2f}x bare, NATS messages "
        f"{messages_ratio:.2f}x bare. {floor.breakdown()}",
    )
    cores = psutil.cpu_count() or 1
    ceiling = figure(
        f"  design floor: jobs/s {cores} cores allow at its CPU per job",
        "job lifecycle",
        floor.jobs,
        sum(floor.cpu_s.values()) / cores,
        notes=f"{cores} x 1000 ÷ {floor.cpu_ms_per_job:.3f} ms; the main row's target needs <= "
        f"{1000 * cores / 5_000:.2f} ms a job in all",
    )
    ceiling.target = ">= 5,000 jobs/s possible"
    ceiling.meets_target = ceiling.ops_per_s >= 5_000
    return [row, ceiling]


def _throughput_ratio(
    row: Figure, bare_fig: Figure, name: str, operations: int, seconds: float, note: str = ""
) -> Figure:
    """`row` set against the bare path's row, and a row of their throughput ratio."""
    row.baseline = bare_fig.name
    row.ratio_to_baseline = round(row.ops_per_s / bare_fig.ops_per_s, 3) if bare_fig.ops_per_s else None
    ratio = figure(
        name,
        "job lifecycle",
        operations,
        seconds,
        notes=f"{row.ops_per_s:,.0f} ÷ {bare_fig.ops_per_s:,.0f} jobs/s{note}",
    )
    ratio.baseline = bare_fig.name
    ratio.ratio_to_baseline = row.ratio_to_baseline
    return ratio


def synced_comparison(synced: Figure, bare_fig: Figure) -> list[Figure]:
    """The fsync-bound row beside what the same server gives the appends alone. No target of its
    own: the issue's (≥ 900 jobs/s) stays on the row, and this shows where the disk puts the
    ceiling (each append is written and fsynced before it is acknowledged)."""
    name = "  throughput under sync_interval always, full ÷ bare"
    note = " (5 appends a job in full, 3 in bare)"
    return [bare_fig, _throughput_ratio(synced, bare_fig, name, synced.operations, synced.seconds, note)]


def comparison_figures(full: JobCosts, full_figure: Figure, bare: JobCosts, bare_fig: Figure) -> list[Figure]:
    """The three comparisons issue #13 asks for, each against its target."""
    throughput = _throughput_ratio(full_figure, bare_fig, "  throughput, full ÷ bare", full.jobs, full.seconds)
    throughput.target = ">= 0.33 of bare"
    throughput.meets_target = (throughput.ratio_to_baseline or 0) >= 1 / 3
    cpu = figure(
        "  CPU per job, full ÷ bare",
        "job lifecycle",
        full.jobs,
        full.seconds,
        notes=f"{full.cpu_ms_per_job:.3f} ÷ {bare.cpu_ms_per_job:.3f} ms. full: {full.breakdown()}",
    )
    cpu.ratio_to_baseline = round(full.cpu_ms_per_job / bare.cpu_ms_per_job, 2) if bare.cpu_ms_per_job else None
    cpu.target = "<= 3x bare"
    cpu.meets_target = cpu.ratio_to_baseline is not None and cpu.ratio_to_baseline <= 3
    messages = figure(
        "  NATS messages per job, full ÷ bare",
        "job lifecycle",
        full.nats_messages,
        full.seconds,
        notes=f"{full.messages_per_job:.1f} ÷ {bare.messages_per_job:.1f} (varz in_msgs + out_msgs); ops = messages",
    )
    messages.ratio_to_baseline = (
        round(full.messages_per_job / bare.messages_per_job, 2) if bare.messages_per_job else None
    )
    messages.target = "<= 2x bare"
    messages.meets_target = messages.ratio_to_baseline is not None and messages.ratio_to_baseline <= 2
    return [throughput, cpu, messages]
