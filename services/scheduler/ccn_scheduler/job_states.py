"""ccn_jobs{state}: how many jobs the read model holds in each state, looked at every few
seconds by the projector (the read model's writer). Every projector replica reports the same
counts: a dashboard takes their max, not their sum."""

from __future__ import annotations

import asyncio
import contextlib
from typing import get_args

import asyncpg

from ccn_core.domain.job import JobStatus
from ccn_core.logging import get_logger
from ccn_core.metrics import JOBS_BY_STATE

log = get_logger("ccn.scheduler.job_states")

# "absent" is the decider's state before a job exists; the table never holds it
STATES: tuple[str, ...] = tuple(state for state in get_args(JobStatus) if state != "absent")


def record_job_counts(counts: dict[str, int]) -> None:
    """Every state set, those without a job to 0: a state that empties must not keep its last count."""
    for state in STATES:
        JOBS_BY_STATE.labels(state).set(counts.get(state, 0))


async def sample_jobs_by_state(pool: asyncpg.Pool, stopping: asyncio.Event, *, every_s: float = 15.0) -> None:
    while not stopping.is_set():
        try:
            async with asyncio.timeout(5):
                rows = await pool.fetch("SELECT status, count(*) AS jobs FROM community_jobs GROUP BY status")
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("job counts not read; the gauge keeps its last values", error=repr(exc))
        else:
            record_job_counts({row["status"]: row["jobs"] for row in rows})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every_s):
                await stopping.wait()
