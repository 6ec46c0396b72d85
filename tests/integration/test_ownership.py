"""One owner at a time through a KV key with a TTL: a graceful stop hands over at once, a crash
after the TTL, and an owner that cannot keep its key steps down before anyone else can own it."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig

from ccn_core.ownership import Ownership

TTL_S = 1.5


class Candidate:
    def __init__(self, nc: NATS, bucket: str, name: str, log: list[tuple[str, str, float]]) -> None:
        self.name = name
        self.log = log
        self.ownership = Ownership(
            nc.jetstream(),
            bucket=bucket,
            key="role",
            owner_id=name,
            ttl_s=TTL_S,
            on_gain=self.gain,
            on_loss=self.lose,
            poll_s=0.1,
        )
        self.task = asyncio.create_task(self.ownership.run())

    async def gain(self) -> None:
        self.log.append((self.name, "gain", time.monotonic()))

    async def lose(self, lost: bool) -> None:
        self.log.append((self.name, "lost" if lost else "stop", time.monotonic()))

    async def stop(self) -> None:
        self.ownership.stop()
        await self.task

    async def crash(self) -> None:
        self.task.cancel()  # no delete of the key: it must expire


async def bucket(nc: NATS) -> str:
    name = f"owners_{secrets.token_hex(3)}"
    await nc.jetstream().create_key_value(KeyValueConfig(bucket=name, history=1, ttl=TTL_S))
    return name


async def until(predicate: Callable[[], bool], within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():
            await asyncio.sleep(0.02)


def owners_at_once(log: list[tuple[str, str, float]]) -> int:
    owning: set[str] = set()
    most = 0
    for name, what, _ in sorted(log, key=lambda entry: entry[2]):
        if what == "gain":
            owning.add(name)
        else:
            owning.discard(name)
        most = max(most, len(owning))
    return most


async def test_one_owner_at_a_time_handing_over_on_stop_and_after_a_crash(nc: NATS) -> None:
    log: list[tuple[str, str, float]] = []
    name = await bucket(nc)
    first = Candidate(nc, name, "a", log)
    await until(lambda: first.ownership.owner)
    second = Candidate(nc, name, "b", log)
    await asyncio.sleep(TTL_S)  # a standby stays a standby while the owner keeps its key
    assert not second.ownership.owner
    stopped_at = time.monotonic()
    await first.stop()
    await until(lambda: second.ownership.owner)
    assert time.monotonic() - stopped_at < TTL_S  # a stop deletes the key: no wait for the TTL
    third = Candidate(nc, name, "c", log)
    crashed_at = time.monotonic()
    await second.crash()
    await until(lambda: third.ownership.owner)
    assert time.monotonic() - crashed_at >= TTL_S * 0.5  # the key had to expire first
    await third.stop()
    assert owners_at_once(log) == 1
    assert [entry[:2] for entry in log if entry[0] == "a"] == [("a", "gain"), ("a", "stop")]


async def test_an_owner_that_cannot_keep_its_key_steps_down_on_its_own(nc: NATS) -> None:
    log: list[tuple[str, str, float]] = []
    name = await bucket(nc)
    owner = Candidate(nc, name, "a", log)
    await until(lambda: owner.ownership.owner)
    # someone else rewrites the key (as a new owner would after the TTL): the revision moves on
    kv = await nc.jetstream().key_value(name)
    await kv.put("role", b"intruder")
    await until(lambda: not owner.ownership.owner)
    assert ("a", "lost") in [entry[:2] for entry in log]
    await owner.stop()
