"""unless_stopping: a wait that a stop ends at once, its work cancelled and cleaned up; and
cancel_until_done, which ends tasks that swallow a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from ccn_core.stopping import Stopped, cancel_until_done, unless_stopping


async def test_the_result_comes_back_when_it_comes_first() -> None:
    stopping = asyncio.Event()
    queue: asyncio.Queue[int] = asyncio.Queue()
    queue.put_nowait(7)
    assert await unless_stopping(queue.get(), stopping) == 7


async def test_a_stop_cancels_the_wait_and_its_cleanup_has_run_when_stopped_is_raised() -> None:
    stopping = asyncio.Event()
    cleaned = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append(True)

    asyncio.get_running_loop().call_later(0.05, stopping.set)
    with pytest.raises(Stopped):
        async with asyncio.timeout(5):
            await unless_stopping(forever(), stopping)
    assert cleaned == [True]


async def test_a_result_ready_when_the_stop_comes_is_returned_not_dropped() -> None:
    stopping = asyncio.Event()
    stopping.set()
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    done.set_result("kept")
    assert await unless_stopping(done, stopping) == "kept"


async def test_cancelling_the_caller_cancels_the_work_too() -> None:
    stopping = asyncio.Event()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    caller = asyncio.create_task(unless_stopping(work(), stopping))
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    async with asyncio.timeout(5):
        await cancelled.wait()
    assert not stopping.is_set()


async def test_an_error_of_the_work_is_raised_as_it_is() -> None:
    async def failing() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await unless_stopping(failing(), asyncio.Event())


async def test_a_timeout_never_drops_what_the_wait_had_taken() -> None:
    """A projection waits on its queue of batches with a timeout, and a batch lost there would
    be acknowledged with the next one, never applied. Items put while waits time out around
    them, at every phase of the race: each is received, once and in order."""
    rng = random.Random(7)
    queue: asyncio.Queue[int] = asyncio.Queue()
    stopping = asyncio.Event()
    count = 3000

    async def produce() -> None:
        for item in range(count):
            queue.put_nowait(item)
            await asyncio.sleep(rng.choice((0, 0, 0.0001)))

    producer = asyncio.create_task(produce())
    received: list[int] = []
    async with asyncio.timeout(60):
        while not (producer.done() and queue.empty()):
            with contextlib.suppress(TimeoutError):
                received.append(await unless_stopping(queue.get(), stopping, timeout=rng.choice((0, 0.00005, 0.0001))))
    assert received == list(range(count))


async def test_a_timeout_with_nothing_come_raises_timeout_not_stopped() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    with pytest.raises(TimeoutError):
        await unless_stopping(queue.get(), asyncio.Event(), timeout=0.01)
    queue.put_nowait(1)
    assert queue.get_nowait() == 1  # the cancelled wait took nothing


async def test_a_loop_that_swallows_its_cancellation_is_cancelled_again_until_it_ends() -> None:
    """As nats-py's flush does: the first cancellation is caught inside the loop, which goes on.
    Awaiting the task after one cancel would wait for good."""
    swallowed = 0

    async def loop_like_a_reactor() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)  # a flush waiting on a server slow to read
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 2:
                    raise
            await asyncio.sleep(0)

    async def fails() -> None:
        raise RuntimeError("crashed before the stop")

    tasks = [asyncio.create_task(loop_like_a_reactor()), asyncio.create_task(fails())]
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_until_done(tasks, every_s=0.01)
    assert all(task.done() for task in tasks)
    assert swallowed == 3
    assert isinstance(tasks[1].exception(), RuntimeError)  # consumed, not lost


async def test_nothing_to_cancel_returns_at_once() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    async with asyncio.timeout(1):
        await cancel_until_done([done])
        await cancel_until_done([])
