"""Job cleanup (CC-32): finished jobs leave the hot read-model tables after the retention.

One replica at a time (a Postgres advisory lock, as the projections) moves each job that
completed, died or was cancelled before now - retention from community_jobs, with its
community_job_results row, into community_jobs_archive and community_job_results_archive: one
statement, so one transaction, per bounded batch. No event is touched: CCN_JOBS stays the truth,
and GET /jobs/{id} reads the history, so an archived job is as visible as before.

Why this cannot lose or resurrect a job:
- what is due is a pure function of a row (ArchivePolicy.is_due), and the SQL asks the same;
  a job is never moved before finished_at + retention.
- a finished job gets no more events (the decider refuses or ignores every command on it), so
  the projection never updates or inserts a row for it once it is archived.
- a replay (rebuild) brings archived jobs back into the hot tables; the next pass moves them out
  again, and the archive keeps its first row of each (ON CONFLICT DO NOTHING), so a re-run or
  a second archiver is harmless.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from ccn_core.domain.job import FINISHED
from ccn_core.leader import PeriodicLeader
from ccn_core.logging import get_logger

log = get_logger("ccn.scheduler.cleanup")
LOCK_KEY = 0x4A4F4253_00000000 | zlib.crc32(b"scheduler_job_archiver")
BATCH_SIZE = 500

_JOB_COLUMNS = (
    "job_id, job_type, payload_json, status, priority, claimed_by_node_id, claimed_at, lease_expires_at, attempt,"
    " retry_count, max_retries, last_retry_at, retry_at, lease_s, last_error, batch_id, dataset_source,"
    " dataset_version, claimed_by_replica, created_at, updated_at, finished_at, correlation_id"
)
_RESULT_COLUMNS = "job_id, node_id, attempt, result_json, result_checksum, submitted_at, correlation_id"
# Data-modifying CTEs all run, once, in this one statement: the batch moves whole or not at all.
# SKIP LOCKED: a second archiver (a leader that has just lost its lock) takes other rows.
_ARCHIVE_BATCH = f"""
WITH due AS (
    SELECT job_id FROM community_jobs
    WHERE status = ANY($1::text[]) AND finished_at < $2
    ORDER BY finished_at, job_id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), moved_results AS (
    DELETE FROM community_job_results r USING due WHERE r.job_id = due.job_id RETURNING r.*
), moved_jobs AS (
    DELETE FROM community_jobs j USING due WHERE j.job_id = due.job_id RETURNING j.*
), archived_jobs AS (
    INSERT INTO community_jobs_archive ({_JOB_COLUMNS}, archived_at, archived_by)
    SELECT {_JOB_COLUMNS}, $4, $5 FROM moved_jobs
    ON CONFLICT (job_id) DO NOTHING
    RETURNING job_id
), archived_results AS (
    INSERT INTO community_job_results_archive ({_RESULT_COLUMNS}, archived_at)
    SELECT {_RESULT_COLUMNS}, $4 FROM moved_results
    ON CONFLICT (job_id) DO NOTHING
    RETURNING job_id
)
SELECT (SELECT count(*) FROM moved_jobs) AS jobs,
       (SELECT count(*) FROM moved_results) AS results,
       (SELECT count(*) FROM archived_jobs) AS first_archived"""  # noqa: S608 - module constants, no outside input


class ArchivePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Which jobs leave the hot tables, and how many per transaction."""

    retention_s: float
    batch_size: int = BATCH_SIZE

    def __post_init__(self) -> None:
        if self.retention_s < 0 or self.batch_size < 1:
            raise ValueError(f"retention_s must be >= 0 and batch_size >= 1, not {self.retention_s}, {self.batch_size}")

    def cutoff(self, now: datetime) -> datetime:
        """Jobs finished before this are due."""
        return now - timedelta(seconds=self.retention_s)

    def is_due(self, status: str, finished_at: datetime | None, now: datetime) -> bool:
        return status in FINISHED and finished_at is not None and finished_at < self.cutoff(now)


class BatchOutcome(msgspec.Struct, frozen=True):
    jobs: int  # rows moved out of community_jobs
    results: int  # rows moved out of community_job_results
    first_archived: int  # of the jobs, those not in the archive already (the rest came back by a replay)


class JobArchiver:
    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: ArchivePolicy,
        *,
        replica: str,
        interval_s: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._policy = policy
        self._replica = replica
        self._clock = clock
        self._leader = PeriodicLeader(
            pool, name="job archiver", lock_key=LOCK_KEY, interval_s=interval_s, tick=self.archive_due, replica=replica
        )
        self.archived = 0  # jobs this archiver moved, replayed ones included

    def stop(self) -> None:
        self._leader.stop()

    async def run(self) -> None:
        """Lead while holding the lock; on a database fault, step down, wait and try again."""
        await self._leader.run()

    async def archive_due(self) -> int:
        """Move every job due now, a batch per transaction, until a batch comes back short;
        returns how many jobs were moved."""
        now = self._clock()
        total = 0
        while True:
            outcome = await self.archive_batch(now)
            total += outcome.jobs
            if outcome.jobs < self._policy.batch_size or self._leader.stopping.is_set():
                return total

    async def archive_batch(self, now: datetime) -> BatchOutcome:
        cutoff = self._policy.cutoff(now)
        row = await self._pool.fetchrow(
            _ARCHIVE_BATCH, sorted(FINISHED), cutoff, self._policy.batch_size, now, self._replica
        )
        assert row is not None, "an aggregate query returns one row"
        outcome = BatchOutcome(jobs=row["jobs"], results=row["results"], first_archived=row["first_archived"])
        if outcome.jobs:
            self.archived += outcome.jobs
            log.info(
                "finished jobs archived",
                jobs=outcome.jobs,
                results=outcome.results,
                already_archived=outcome.jobs - outcome.first_archived,
                finished_before=cutoff.isoformat(),
                replica=self._replica,
            )
        return outcome
