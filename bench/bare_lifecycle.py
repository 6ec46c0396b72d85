"""The bare event-store lifecycle: what a job's life costs JetStream alone, the yardstick for the
full system (issue #13). Per job, three OCC-checked appends (created with the page, claimed,
completed with the result), each acknowledged before the job's next step, hundreds of jobs in
flight on one reply subscription, acks decoded with msgspec and each next append published
from the ack's callback (no coroutine per job). No services, no PostgreSQL, no WebSocket.

Run as processes of its own (`python -m bench.bare_lifecycle NATS_URL FIRST COUNT`, on a stream
over `ccn.barejob.>` made by the caller),
as many as the machine has cores, each printing one JSON line: its jobs, seconds and the CPU
seconds its pipeline took (start-up and imports left out)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Mapping

import msgspec
import nats
import uvloop
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from ccn_core.eventstore import (
    HDR_EXPECTED_LAST_SUBJECT_SEQ,
    HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT,
    HDR_MSG_ID,
    PubAck,
)

BARE_SUBJECT_ROOT = "ccn.barejob"
IN_FLIGHT = 512
STEPS = ("created", "claimed", "completed")
_decode_ack = msgspec.json.Decoder(PubAck).decode


def step_bodies(payload: Mapping[str, object], result: Mapping[str, object]) -> tuple[bytes, bytes, bytes]:
    """Event bodies shaped as the job's: created carries the payload, completed the result."""
    envelope = {"event_id": str(uuid.uuid4()), "schema_version": 1, "correlation_id": "bench", "actor": "bench"}
    created = {**envelope, "type": "job.created", "data": {"job_type": "extract_text", "payload": dict(payload)}}
    claimed = {**envelope, "type": "job.claimed", "data": {"node_id": str(uuid.uuid4()), "attempt": 1}}
    completed = {**envelope, "type": "job.completed", "data": {"result": dict(result), "checksum": "0" * 64}}
    return msgspec.json.encode(created), msgspec.json.encode(claimed), msgspec.json.encode(completed)


def append_headers(aggregate_subject: str, msg_id: str, event_type: str, expected_last_seq: int) -> dict[str, str]:
    """An event's headers as the event store writes them: its id, the OCC check over the
    aggregate's subjects, its type and correlation id."""
    return {
        HDR_MSG_ID: msg_id,
        HDR_EXPECTED_LAST_SUBJECT_SEQ: str(expected_last_seq),
        HDR_EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: aggregate_subject + ".*",
        "ccn-type": event_type,
        "ccn-correlation-id": "bench",
    }


class BarePipeline:
    """`count` jobs numbered from `first`, at most IN_FLIGHT at a time."""

    def __init__(self, nc: NATS, first: int, count: int, bodies: tuple[bytes, bytes, bytes]) -> None:
        self._nc = nc
        self._first = first
        self._count = count
        self._bodies = bodies
        self._next = 0
        self._done = 0
        self.rejected = 0
        self._inbox = ""
        self._finished = asyncio.Event()

    async def run(self) -> float:
        self._inbox = self._nc.new_inbox()
        await self._nc.subscribe(self._inbox + ".*", cb=self._on_ack, pending_msgs_limit=-1)
        started = time.perf_counter()
        for _ in range(min(IN_FLIGHT, self._count)):
            await self._start_next()
        await self._finished.wait()
        return time.perf_counter() - started

    async def _start_next(self) -> None:
        job = self._first + self._next
        self._next += 1
        await self._append(job, 0, 0)

    async def _append(self, job: int, step: int, expected_last_seq: int) -> None:
        subject = f"{BARE_SUBJECT_ROOT}.{job}"
        headers = append_headers(subject, f"{job}-{step}", f"job.{STEPS[step]}", expected_last_seq)
        await self._nc.publish(
            f"{subject}.{STEPS[step]}", self._bodies[step], reply=f"{self._inbox}.{job}_{step}", headers=headers
        )

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject[len(self._inbox) + 1 :]
        job_text, _, step_text = token.partition("_")
        job, step = int(job_text), int(step_text)
        ack = _decode_ack(msg.data)
        if ack.error is not None:
            self.rejected += 1
        elif step + 1 < len(STEPS):
            await self._append(job, step + 1, ack.seq)
            return
        self._done += 1
        if self._next < self._count:
            await self._start_next()
        elif self._done == self._count:
            self._finished.set()


async def _main(nats_url: str, first: int, count: int) -> None:
    from bench.lifecycle_bench import PAYLOAD, precomputed_result

    nc = await nats.connect(nats_url, pending_size=64 * 1024 * 1024)
    pipeline = BarePipeline(nc, first, count, step_bodies(PAYLOAD, precomputed_result()))
    cpu_before = time.process_time()
    seconds = await pipeline.run()
    cpu_s = time.process_time() - cpu_before  # the pipeline's, not the interpreter's start-up
    await nc.drain()
    report = {"jobs": count, "seconds": seconds, "cpu_s": cpu_s, "rejected": pipeline.rejected}
    print(msgspec.json.encode(report).decode())


if __name__ == "__main__":
    url, first_job, job_count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    uvloop.run(_main(url, first_job, job_count))
