"""The job aggregate as the scheduler's handlers use it: decide against a state that is fresh
whenever the answer is a refusal or "nothing to do".

The repository decides against its cached state and lets the server's OCC check catch a stale
cache on append. A *refusal* (not the holder, not claimable) or an *empty decision* (the lease
is not expired, the job is not held) appends nothing, so no server checks it: with several
replicas a stale cache would answer from an old world (this replica's cache still shows the job
waiting while another handed it to a node whose lease has now run out). So such an answer is
decided once more against the history before it is believed.
"""

from __future__ import annotations

from ccn_core.aggregate import AggregateRepository, EventMeta, Executed
from ccn_core.domain.job import FINISHED, JobCommand, JobState
from ccn_core.errors import Conflict, NotFound
from ccn_proto.jobs import JobEvent

JobRepository = AggregateRepository[JobCommand, JobState, JobEvent]


class JobService:
    def __init__(self, repository: JobRepository) -> None:
        self.repository = repository

    async def execute(
        self, job_id: str, command: JobCommand, meta: EventMeta, *, new: bool = False
    ) -> Executed[JobState, JobEvent]:
        """`new`: a creation, decided without a read when the job is unknown here (see
        AggregateRepository.execute)."""
        try:
            executed = await self.repository.execute(job_id, command, meta, new=new)
        except (Conflict, NotFound):
            pass
        else:
            if executed.events or executed.attempts > 1:
                return executed  # appended, or decided again after a conflict: fresh either way
        self.repository.forget(job_id)
        return await self.repository.execute(job_id, command, meta)

    async def state(self, job_id: str) -> JobState:
        """The job's current state: one read past the cache, unless the cache has it finished
        (completed, dead and cancelled are final, so that is the truth without a read; the
        claim ledger prunes each finished job it lists this way, once per claim)."""
        cached = self.repository.cached(job_id)
        if cached is not None and cached.state.status in FINISHED:
            return cached.state
        return (await self.repository.load(job_id, fresh=True)).state
