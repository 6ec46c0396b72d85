"""The job aggregate as the scheduler's handlers use it: decide against a state that is fresh
whenever the answer is a refusal.

The repository decides against its cached state and lets the server's OCC check catch a stale
cache on append. A *refusal* (not the holder, not claimable) is decided without an append,
so with several replicas a stale cache could refuse a command another replica made valid
(this replica's cache still shows the job queued while another handed it to the submitting
node). So a refusal is decided once more against the history before it is believed.
"""

from __future__ import annotations

from ccn_core.aggregate import AggregateRepository, EventMeta, Executed
from ccn_core.domain.job import JobCommand, JobState
from ccn_core.errors import Conflict, NotFound
from ccn_proto.jobs import JobEvent

JobRepository = AggregateRepository[JobCommand, JobState, JobEvent]


class JobService:
    def __init__(self, repository: JobRepository) -> None:
        self.repository = repository

    async def execute(self, job_id: str, command: JobCommand, meta: EventMeta) -> Executed[JobState, JobEvent]:
        try:
            return await self.repository.execute(job_id, command, meta)
        except (Conflict, NotFound):
            self.repository.forget(job_id)
            return await self.repository.execute(job_id, command, meta)

    async def state(self, job_id: str) -> JobState:
        """The job's current state (one read past the cache)."""
        return (await self.repository.load(job_id, fresh=True)).state
