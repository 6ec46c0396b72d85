"""The Coalescer: alone an item goes at once; under load the items that arrive while a batch
is out make up the next one; every caller gets its own outcome or the batch's error; an
outcome whose caller left goes to `orphaned`."""

from __future__ import annotations

import asyncio

import pytest

from ccn_core.coalesce import Coalescer


class Sender:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def __call__(self, items: list[int]) -> list[str]:
        self.batches.append(list(items))
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [f"done {item}" for item in items]


async def test_an_item_alone_is_sent_at_once_in_a_batch_of_its_own() -> None:
    sender = Sender()
    coalescer = Coalescer(sender, max_batch=10)
    assert await coalescer.submit(1) == "done 1"
    assert sender.batches == [[1]]


async def test_items_arriving_while_a_batch_is_out_go_together_in_the_next() -> None:
    sender = Sender()
    sender.gate.clear()
    coalescer = Coalescer(sender, max_batch=3)
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(coalescer.submit(n)) for n in range(1, 8)]
    await asyncio.sleep(0)
    assert sender.batches == [[0]]  # one batch out at a time: the others wait for it
    sender.gate.set()
    outcomes = await asyncio.gather(first, *rest)
    assert outcomes == [f"done {n}" for n in range(8)]
    assert sender.batches == [[0], [1, 2, 3], [4, 5, 6], [7]]


async def test_up_to_max_in_flight_batches_are_out_at_once() -> None:
    sender = Sender()
    sender.gate.clear()
    coalescer = Coalescer(sender, max_batch=2, max_in_flight=2)
    tasks = [asyncio.create_task(coalescer.submit(n)) for n in range(6)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sender.batches == [[0], [1]]  # each went alone while a slot was free
    sender.gate.set()
    await asyncio.gather(*tasks)
    assert sender.batches == [[0], [1], [2, 3], [4, 5]]


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_goes() -> None:
    sender = Sender()
    sender.fail = ConnectionError("nats is down")
    coalescer = Coalescer(sender, max_batch=5)
    with pytest.raises(ConnectionError):
        await coalescer.submit(1)
    sender.fail = None
    assert await coalescer.submit(2) == "done 2"


async def test_a_reply_of_the_wrong_length_fails_its_callers_instead_of_misrouting() -> None:
    async def short(items: list[int]) -> list[str]:
        return ["one outcome too few" for _ in items[1:]]

    coalescer = Coalescer(short, max_batch=5)
    results = await asyncio.gather(*(coalescer.submit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)


async def test_an_outcome_whose_caller_left_goes_to_orphaned() -> None:
    sender = Sender()
    sender.gate.clear()
    orphans: list[tuple[int, str]] = []

    async def orphaned(item: int, outcome: str) -> None:
        orphans.append((item, outcome))

    coalescer = Coalescer(sender, max_batch=5, orphaned=orphaned)
    leaving = asyncio.create_task(coalescer.submit(1))
    staying = asyncio.create_task(coalescer.submit(2))
    await asyncio.sleep(0)
    leaving.cancel()
    sender.gate.set()
    assert await staying == "done 2"
    await coalescer.drain()
    assert orphans == [(1, "done 1")]


async def test_an_item_whose_caller_left_before_it_was_sent_is_not_sent() -> None:
    sender = Sender()
    sender.gate.clear()
    coalescer = Coalescer(sender, max_batch=5)
    first = asyncio.create_task(coalescer.submit(0))
    await asyncio.sleep(0)
    gone = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    sender.gate.set()
    await first
    await coalescer.drain()
    assert sender.batches == [[0]]


async def test_a_batch_is_bounded_by_bytes_and_an_oversized_item_goes_alone() -> None:
    sender = Sender()
    sender.gate.clear()
    coalescer = Coalescer(sender, max_batch=10, max_bytes=100)
    first = asyncio.create_task(coalescer.submit(1, size=1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(coalescer.submit(n, size=n)) for n in (60, 30, 20, 150, 5)]
    await asyncio.sleep(0)
    sender.gate.set()
    await asyncio.gather(first, *rest)
    assert sender.batches == [[1], [60, 30], [20], [150], [5]]
