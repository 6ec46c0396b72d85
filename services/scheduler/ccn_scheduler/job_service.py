"""The job aggregate as the claim owner uses it: every decision it takes, and every state it
reads afresh, is told to the claim board, so the board is a fold of the same states.

The repository decides against its cached state and lets the server's OCC check catch a stale
cache on append. One owner at a time writes (ADR 0016), so its cache is the truth unless a
predecessor's last write landed after the takeover read the stream. A *refusal* or an *empty
decision* appends nothing, so no server checks it: such an answer is decided once more against
the history before it is believed.
"""

from __future__ import annotations

from collections.abc import Callable

from ccn_core.aggregate import AggregateRepository, EventMeta, Executed
from ccn_core.domain.job import JobCommand, JobState
from ccn_core.errors import Conflict, NotFound
from ccn_proto.jobs import JobEvent

JobRepository = AggregateRepository[JobCommand, JobState, JobEvent]
StateListener = Callable[[str, JobState, int], None]
AppendListener = Callable[[int, int], None]


class JobService:
    """`on_state`: every state a decision leaves, or a refusal found. `on_append`: the stream
    sequences (first, last) of every append, so the owner can tell its own writes from others'."""

    def __init__(
        self,
        repository: JobRepository,
        on_state: StateListener | None = None,
        on_append: AppendListener | None = None,
    ) -> None:
        self.repository = repository
        self._on_state = on_state or (lambda job_id, state, version: None)
        self._on_append = on_append or (lambda first, last: None)

    def _decided(self, job_id: str, executed: Executed[JobState, JobEvent]) -> Executed[JobState, JobEvent]:
        if executed.events:
            self._on_append(executed.version - len(executed.events) + 1, executed.version)
        self._on_state(job_id, executed.state, executed.version)
        return executed

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
                return self._decided(job_id, executed)  # appended, or decided again after a conflict
        self.repository.forget(job_id)
        try:
            executed = await self.repository.execute(job_id, command, meta)
        except (Conflict, NotFound):
            fresh = self.repository.cached(job_id)
            if fresh is not None:
                self._on_state(job_id, fresh.state, fresh.version)
            raise
        return self._decided(job_id, executed)
