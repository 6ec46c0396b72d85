"""The design's floor: the bare event-store lifecycle plus the fewest readers ARCHITECTURE.md's
design has a job's events pass through, each reader doing nothing but decode what it is given
and append what it must. No PostgreSQL, no WebSocket, no HTTP, no validation rules, no logs, no
traces. What this costs a job is the least the design can cost on this machine, whatever the
services' code does (issue #13).

Per job, five OCC-checked appends in the order the system makes them, and four readers:

- the claim owner appends created, claimed and result_submitted, each acked before the next
  (the scheduler's part: creating, offering and taking the result back). It reads `validated`
  and appends `completed` (a job completes only once its result is judged, ADR 0024).
- the validator reads `result_submitted` and appends `validated`, then acknowledges the
  delivery (a reactor: explicit ack, as every reactor's).
- the projector reads every event, acknowledging each batch by its last (AckPolicy.ALL, as the
  projections do): the read models the orchestrator log and the operators' queries need.
- the merger reads `completed` and acknowledges each (the merge service's reactor).

Left out, though the system runs them: analytics, the registry's and the crawler's readers, the
edge, PostgreSQL. So the real system can only cost more.

Each reader is a process of its own, as the services are, started before the owner and pulling
with `ccn_core.pull.BatchPuller`, the tree's cheapest way to pull. Run as
`python -m bench.design_floor ROLE NATS_URL JOBS` on a stream over `ccn.floorjob.>` with the
consumers `DURABLES` names, made by the caller; each process prints one JSON line: its CPU
seconds from its first delivery (or first append) to its last, and the wall-clock time of each.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import msgspec
import nats
import uvloop
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from bench.bare_lifecycle import IN_FLIGHT as BARE_IN_FLIGHT_PER_PROCESS
from bench.bare_lifecycle import append_headers
from ccn_core.eventstore import PubAck
from ccn_core.pull import BatchPuller, delivered_event

FLOOR_SUBJECT_ROOT = "ccn.floorjob"
FLOOR_STREAM_NAME = "BENCH_FLOOR_JOBS"
OWNER_STEPS = ("created", "claimed", "result_submitted")
# role -> (durable, filter subject, acknowledged one by one)
DURABLES = {
    "owner": ("floor_owner", f"{FLOOR_SUBJECT_ROOT}.*.validated", False),
    "validator": ("floor_validator", f"{FLOOR_SUBJECT_ROOT}.*.result_submitted", True),
    "projector": ("floor_projector", f"{FLOOR_SUBJECT_ROOT}.>", False),
    "merger": ("floor_merger", f"{FLOOR_SUBJECT_ROOT}.*.completed", True),
}
EVENTS_PER_JOB = 5
# as many jobs in flight as the bare path's two processes keep together
IN_FLIGHT = 2 * BARE_IN_FLIGHT_PER_PROCESS
PULL_BATCH = 256


def floor_consumer(role: str) -> ConsumerConfig:
    """The role's consumer, made as the services make theirs: a reactor acknowledges each
    delivery, a projection each batch by its last, on a consumer kept in memory."""
    durable, subject, one_by_one = DURABLES[role]
    if one_by_one:
        return ConsumerConfig(
            durable_name=durable, filter_subject=subject, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=10_000
        )
    return ConsumerConfig(
        durable_name=durable, filter_subject=subject, ack_policy=AckPolicy.ALL, max_ack_pending=-1, mem_storage=True
    )


_decode_ack = msgspec.json.Decoder(PubAck).decode


class _Envelope(msgspec.Struct):
    """What every reader must decode of an event, at the least."""

    type: str
    event_id: str
    correlation_id: str
    data: msgspec.Raw


_decode_event = msgspec.json.Decoder(_Envelope).decode


def event_body(event_type: str, job: int) -> bytes:
    return msgspec.json.encode(
        {
            "type": f"job.{event_type}",
            "event_id": f"{job}-{event_type}",
            "correlation_id": "bench",
            "actor": "bench",
            "schema_version": 1,
            "data": {"job_id": str(job), "attempt": 1},
        }
    )


class Appender:
    """Pipelined OCC appends on one reply subscription; `on_acked(job, step, seq)` runs in the
    ack's callback, so no coroutine is made per append."""

    def __init__(self, nc: NATS, on_acked: Callable[[int, str, int], Awaitable[None]]) -> None:
        self._nc = nc
        self._on_acked = on_acked
        self._inbox = ""
        self.rejected = 0

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(self._inbox + ".*", cb=self._on_ack, pending_msgs_limit=-1)

    async def append(self, job: int, event_type: str, expected_last_seq: int) -> None:
        subject = f"{FLOOR_SUBJECT_ROOT}.{job}"
        headers = append_headers(subject, f"{job}-{event_type}", f"job.{event_type}", expected_last_seq)
        reply = f"{self._inbox}.{job}_{event_type}"
        await self._nc.publish(f"{subject}.{event_type}", event_body(event_type, job), reply=reply, headers=headers)

    async def _on_ack(self, msg: Msg) -> None:
        job_text, _, event_type = msg.subject[len(self._inbox) + 1 :].partition("_")
        ack = _decode_ack(msg.data)
        if ack.error is not None:
            self.rejected += 1
            return
        await self._on_acked(int(job_text), event_type, ack.seq)


def _job_of(subject: str) -> int:
    return int(subject.split(".")[2])


Handler = Callable[[int, str, "_Envelope", Msg], Awaitable[None]]


async def _read(nc: NATS, role: str, expected: int, handle: Handler) -> None:
    """Pull the role's consumer until `expected` deliveries were handled."""
    durable, _, one_by_one = DURABLES[role]
    puller = BatchPuller(nc, FLOOR_STREAM_NAME, durable)
    seen = 0
    while seen < expected:
        msgs = await puller.next_batch(PULL_BATCH, idle_wait=1.0)
        for msg in msgs:
            stored = delivered_event(msg)
            envelope = _decode_event(stored.data)
            await handle(stored.seq, stored.subject, envelope, msg)
        if msgs and not one_by_one:
            await nc.publish(msgs[-1].reply, b"+ACK")
        seen += len(msgs)


async def _owner(nc: NATS, jobs: int) -> int:
    completed = asyncio.Event()
    counts = {"started": 0, "completed": 0}

    async def on_acked(job: int, event_type: str, seq: int) -> None:
        if event_type == "completed":
            counts["completed"] += 1
            if counts["completed"] == jobs:
                completed.set()
            elif counts["started"] < jobs:
                counts["started"] += 1
                await appender.append(counts["started"] - 1, OWNER_STEPS[0], 0)
            return
        step = OWNER_STEPS.index(event_type)
        if step + 1 < len(OWNER_STEPS):
            await appender.append(job, OWNER_STEPS[step + 1], seq)

    appender = Appender(nc, on_acked)
    await appender.start()
    for _ in range(min(IN_FLIGHT, jobs)):
        counts["started"] += 1
        await appender.append(counts["started"] - 1, OWNER_STEPS[0], 0)

    async def on_validated(seq: int, subject: str, envelope: _Envelope, msg: Msg) -> None:
        await appender.append(_job_of(subject), "completed", seq)

    await _read(nc, "owner", jobs, on_validated)
    await completed.wait()
    return appender.rejected


async def _validator(nc: NATS, jobs: int) -> int:
    pending_acks: dict[int, str] = {}
    done = asyncio.Event()
    counts = {"acked": 0}

    async def on_acked(job: int, event_type: str, seq: int) -> None:
        await nc.publish(pending_acks.pop(job), b"+ACK")
        counts["acked"] += 1
        if counts["acked"] == jobs:
            done.set()

    appender = Appender(nc, on_acked)
    await appender.start()

    async def on_result(seq: int, subject: str, envelope: _Envelope, msg: Msg) -> None:
        job = _job_of(subject)
        pending_acks[job] = msg.reply or ""
        await appender.append(job, "validated", seq)

    await _read(nc, "validator", jobs, on_result)
    await done.wait()
    return appender.rejected


async def _projector(nc: NATS, jobs: int) -> int:
    async def on_event(seq: int, subject: str, envelope: _Envelope, msg: Msg) -> None:
        return None

    await _read(nc, "projector", jobs * EVENTS_PER_JOB, on_event)
    return 0


async def _merger(nc: NATS, jobs: int) -> int:
    async def on_completed(seq: int, subject: str, envelope: _Envelope, msg: Msg) -> None:
        await nc.publish(msg.reply or "", b"+ACK")

    await _read(nc, "merger", jobs, on_completed)
    return 0


ROLES = {"owner": _owner, "validator": _validator, "projector": _projector, "merger": _merger}


async def _main(role: str, nats_url: str, jobs: int) -> None:
    nc = await nats.connect(nats_url, pending_size=64 * 1024 * 1024)
    print("ready", flush=True)
    started_at = time.time()
    cpu_before = time.process_time()
    rejected = await ROLES[role](nc, jobs)
    cpu_s = time.process_time() - cpu_before
    finished_at = time.time()
    await nc.drain()
    report = {"role": role, "started_at": started_at, "finished_at": finished_at, "cpu_s": cpu_s, "rejected": rejected}
    print(msgspec.json.encode(report).decode(), flush=True)


if __name__ == "__main__":
    uvloop.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
