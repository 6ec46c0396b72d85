"""Periodic work done by exactly one replica: the holder of a Postgres advisory lock.

Every replica runs the loop; one takes the lock and ticks every `interval_s`; the others wait
for it. The lock lives as long as its connection, so the leader checks the connection before
each tick, and a database fault makes it step down, wait and compete again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from ccn_core.logging import get_logger

log = get_logger("ccn.leader")


class PeriodicLeader:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        name: str,
        lock_key: int,
        interval_s: float,
        tick: Callable[[], Awaitable[object]],
        replica: str,
    ) -> None:
        self._pool = pool
        self._name = name
        self._lock_key = lock_key
        self._interval_s = interval_s
        self._tick = tick
        self._replica = replica
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self._lead()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("leader lost the database; retrying", role=self._name, error=str(exc))
                if await self.wait(1.0):
                    return

    async def _lead(self) -> None:
        async with self._pool.acquire() as lock_conn:
            while not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                if await self.wait(1.0):
                    return
            log.info("leader", role=self._name, replica=self._replica)
            try:
                while not await self.wait(self._interval_s):
                    await lock_conn.fetchval("SELECT 1")
                    await self._tick()
            finally:
                if not lock_conn.is_closed():
                    await lock_conn.execute("SELECT pg_advisory_unlock($1)", self._lock_key)

    async def wait(self, seconds: float) -> bool:
        """Sleep unless told to stop; True when stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self.stopping.wait()
        except TimeoutError:
            return False
        return True
