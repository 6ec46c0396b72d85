"""Abandonment detection: leases not renewed in time are expired, by one replica at a time.

What is due is derived from durable state only (community_jobs.lease_expires_at), so a
restart loses nothing: the next leader finds the same rows. The read model may lag; the job
decider re-checks each expiry against the history (a lease renewed meanwhile is kept, a job
already released is left alone), so scanning twice or late is harmless. Retries need no timer
here: the abandonment schedules the job's return to the ready queue (see ready_feed).
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from ccn_core.aggregate import EventMeta
from ccn_core.domain.job import ExpireLease
from ccn_core.errors import CcnError
from ccn_core.leader import PeriodicLeader
from ccn_core.logging import correlation, get_logger
from ccn_proto.envelope import Actor
from ccn_scheduler.job_service import JobService

log = get_logger("ccn.scheduler.leases")
LOCK_KEY = 0x4A4F4253_00000000 | zlib.crc32(b"scheduler_lease_keeper")
SCAN_LIMIT = 500
_EXPIRED = """
SELECT job_id::text, correlation_id FROM community_jobs
WHERE status = 'claimed' AND lease_expires_at < $1
ORDER BY lease_expires_at
LIMIT $2"""


class LeaseKeeper:
    def __init__(
        self,
        pool: asyncpg.Pool,
        jobs: JobService,
        *,
        replica: str,
        interval_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._pool = pool
        self._jobs = jobs
        self._replica = replica
        self._clock = clock
        self._jitter = jitter
        self._leader = PeriodicLeader(
            pool, name="lease keeper", lock_key=LOCK_KEY, interval_s=interval_s, tick=self.sweep, replica=replica
        )
        self.expired = 0

    def stop(self) -> None:
        self._leader.stop()

    async def run(self) -> None:
        """Lead while holding the lock; on a database fault, step down, wait and try again."""
        await self._leader.run()

    async def sweep(self) -> int:
        """Expire every lease past its end (up to SCAN_LIMIT per sweep); returns how many."""
        rows = await self._pool.fetch(_EXPIRED, self._clock(), SCAN_LIMIT)
        outcomes = await asyncio.gather(*(self._expire(row["job_id"], row["correlation_id"]) for row in rows))
        count = sum(outcomes)
        self.expired += count
        return count

    async def _expire(self, job_id: str, correlation_id: str) -> int:
        # the job's own correlation id: its whole life, abandonment included, is one thread
        meta = EventMeta(correlation_id=correlation_id, actor=Actor(kind="service", id=self._replica))
        with correlation(correlation_id, job_id=job_id):
            try:
                executed = await self._jobs.execute(job_id, ExpireLease(now=self._clock(), jitter=self._jitter()), meta)
            except CcnError as exc:
                log.warning("lease expiry not decided; next sweep retries", error=exc.message)
                return 0
            if executed.events:
                log.info("lease expired; job abandoned", status=executed.state.status)
            return 1 if executed.events else 0
