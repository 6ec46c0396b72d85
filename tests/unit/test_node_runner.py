"""The job runner with stand-in work: outcomes, timeouts and stops; a worker thread that is
still busy keeps its slot taken, while a worker process is ended and its slot freed at once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ccn_cli.node.runner import Completed, Failed, JobRunner, NoFreeSlot, Outcome, make_executor
from ccn_jobs.demo_corpus import grant_pages
from ccn_proto.node_protocol import JobOffer

pytestmark = pytest.mark.timeout(30)


def offer(job_id: str, payload: dict[str, Any] | None = None, job_type: str = "extract_text") -> JobOffer:
    return JobOffer(
        job_id=job_id,
        job_type=job_type,
        payload=payload or {},
        lease_until=datetime(2026, 1, 1, tzinfo=UTC),
        attempt=1,
        correlation_id=f"c-{job_id}",
    )


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a worker blocked


def runner_with(
    outcomes: list[Outcome], gate: threading.Event | None = None, timeout_s: float = 5.0, concurrency: int = 2
) -> JobRunner:
    def work(job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
        if gate is not None:
            gate.wait(10)
        if payload.get("boom"):
            raise RuntimeError("boom")
        return {"echo": payload}, "c" * 64

    return JobRunner(
        lambda: concurrent.futures.ThreadPoolExecutor(max_workers=concurrency),
        concurrency=concurrency,
        timeout_s=timeout_s,
        on_outcome=outcomes.append,
        execute=work,
    )


async def settle(outcomes: list[Outcome], count: int) -> None:
    while len(outcomes) < count:
        await asyncio.sleep(0.005)


def unmeasured(outcome: Outcome) -> Outcome:
    """The outcome without its usage (measured, so not known in advance), once it is checked to
    have one."""
    assert outcome.usage is not None and outcome.usage.wall_ms >= 0, outcome
    return msgspec.structs.replace(outcome, usage=None)


async def test_outcomes_of_work_that_succeeds_and_work_that_raises() -> None:
    outcomes: list[Outcome] = []
    runner = runner_with(outcomes)
    runner.start(offer("ok", {"n": 1}))
    runner.start(offer("bad", {"boom": True}))
    await settle(outcomes, 2)
    assert [unmeasured(outcome) for outcome in sorted(outcomes, key=lambda o: o.job_id)] == [
        Failed("bad", "RuntimeError: boom"),
        Completed("ok", {"echo": {"n": 1}}, "c" * 64),
    ]
    assert runner.running == frozenset() and runner.free_slots == 2
    runner.shutdown()


async def test_a_real_job_and_a_bad_payload() -> None:
    outcomes: list[Outcome] = []
    page = grant_pages(2)[1]
    runner = JobRunner(
        lambda: concurrent.futures.ThreadPoolExecutor(max_workers=2),
        concurrency=2,
        timeout_s=20,
        on_outcome=outcomes.append,
    )
    runner.start(offer("page", {"html": page.html, "url": page.url}))
    runner.start(offer("no-html", {"url": "https://x.example/"}))
    await settle(outcomes, 2)
    by_id = {o.job_id: o for o in outcomes}
    completed = by_id["page"]
    assert isinstance(completed, Completed) and completed.result["language"] == page.language
    failed = by_id["no-html"]
    assert isinstance(failed, Failed) and "html" in failed.reason
    runner.shutdown()


async def test_a_job_past_its_timeout_fails_but_keeps_its_worker_until_it_returns(gate: threading.Event) -> None:
    outcomes: list[Outcome] = []
    runner = runner_with(outcomes, gate, timeout_s=0.05, concurrency=1)
    runner.start(offer("slow"))
    await settle(outcomes, 1)
    assert outcomes == [Failed("slow", "timed out after 0.05 s", kind="timeout")]
    assert runner.running == frozenset() and runner.free_slots == 0  # the worker is still busy
    gate.set()
    for _ in range(200):
        if runner.free_slots == 1:
            break
        await asyncio.sleep(0.005)
    assert runner.free_slots == 1
    runner.shutdown()


async def test_a_stopped_job_reports_nothing(gate: threading.Event) -> None:
    outcomes: list[Outcome] = []
    runner = runner_with(outcomes, gate)
    runner.start(offer("a"))
    runner.start(offer("b"))
    assert runner.running == {"a", "b"} and runner.free_slots == 0
    assert runner.stop("a") and not runner.stop("a")
    gate.set()
    await settle(outcomes, 1)
    await asyncio.sleep(0.05)
    assert [o.job_id for o in outcomes] == ["b"]
    runner.shutdown()


async def test_wait_idle_is_bounded_and_stop_all_names_what_was_running(gate: threading.Event) -> None:
    outcomes: list[Outcome] = []
    runner = runner_with(outcomes, gate)
    runner.start(offer("a"))
    await runner.wait_idle(0.05)
    assert runner.stop_all() == ["a"] and runner.running == frozenset()
    runner.shutdown()


def sleep_then_answer(job_type: str, payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Work for a worker process: importable by name, as spawn requires."""
    time.sleep(payload["s"])
    return {"slept": payload["s"]}, "c" * 64


async def test_worker_processes_of_timed_out_and_stopped_jobs_are_ended_and_their_slots_freed() -> None:
    outcomes: list[Outcome] = []
    runner = JobRunner(
        lambda: make_executor("process"),
        concurrency=2,
        timeout_s=4.0,  # long enough for a fresh worker process to start and answer, on a busy machine too
        on_outcome=outcomes.append,
        execute=sleep_then_answer,
    )
    runner.start(offer("stuck", {"s": 60}))
    runner.start(offer("taken-back", {"s": 60}))
    with pytest.raises(NoFreeSlot):
        runner.start(offer("third", {"s": 0}))
    assert runner.stop("taken-back") and runner.free_slots == 1
    await settle(outcomes, 1)
    assert outcomes == [Failed("stuck", "timed out after 4 s", kind="timeout")]
    assert runner.free_slots == 2
    runner.start(offer("quick", {"s": 0}))  # a fresh worker in the freed slot
    await settle(outcomes, 2)
    assert unmeasured(outcomes[1]) == Completed("quick", {"slept": 0}, "c" * 64)
    runner.shutdown()
