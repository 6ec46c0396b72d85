"""The admins' quarantine commands (ccn.cmd.validation.release_result / discard_result): a
result the validation service rejected is released (accepted anyway) or discarded, once, with a
comment, by the QuarantineDecider on the job's result aggregate (CCN_RESULTS).

A release makes the result the job's answer. The result itself is not on the result aggregate:
it is read from the job's own history (its `job.result_submitted` of that node, attempt and
checksum, in CCN_JOBS), and sent to the scheduler as a `settle_results` item with verdict
`complete` and `released_by`. The job is looked up *before* the release is recorded, so a
release of a result the job never had records nothing. The scheduler refuses the settlement
(Conflict) when the job has meanwhile completed some other way (another attempt, a replica's
quorum) or is being worked on again: the release stays recorded, as the admin's decision, and
the reply's `settle_error` says why the job did not take the result. Any other refusal (the
scheduler away) is raised: the same release sent again records nothing new and settles again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from ccn_core import subjects
from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.commands import CommandClient, CommandContext, CommandServer, command_error, raise_command_error
from ccn_core.errors import Conflict, NotFound
from ccn_core.eventstore import EventStore
from ccn_core.receipts import KeyRing
from ccn_core.topology import JOBS, RESULTS
from ccn_proto.commands import CommandError
from ccn_proto.consensus import ConsensusEvent
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobResultSubmitted
from ccn_proto.results import (
    ReceiptIssued,
    ResultDiscarded,
    ResultEvent,
    ResultRejected,
    ResultReleased,
    ResultValidated,
)
from ccn_proto.scheduler import JobStatus, SettledResult, SettleResults, SettleResultsReply
from ccn_proto.validation import DiscardResult, QuarantineDecisionReply, ReleaseResult
from ccn_validation.quarantine import (
    Discard,
    QuarantineDecider,
    Release,
    VerdictCommand,
    VerdictState,
)
from ccn_validation.verdicts import receipt_of

SERVICE = "validation"
SCHEDULER = "scheduler"
# a job's history holds a few events per attempt; far more is not a job this service made
MAX_JOB_EVENTS = 10_000

# the result aggregate of a job group's first job also holds the group's consensus events
# (ccn_proto.consensus): they decode, and leave the verdicts as they are
StoredResultEvent = ResultEvent | ConsensusEvent
_VERDICT_TYPES = (ResultValidated, ResultRejected, ResultReleased, ResultDiscarded, ReceiptIssued)
_decode_submitted = msgspec.json.Decoder(Envelope[JobResultSubmitted]).decode


class VerdictsOfResults:
    """The QuarantineDecider over the whole result aggregate: consensus events pass it by. With
    the service's key ring, a release is signed too: the node whose result it was gets a receipt
    saying the result was accepted after all (its earlier one said rejected)."""

    aggregate = "result"

    def __init__(self, decider: QuarantineDecider, key_ring: Callable[[], KeyRing] | None = None) -> None:
        self._decider = decider
        self._key_ring = key_ring

    def initial_state(self, aggregate_id: str) -> VerdictState:
        return self._decider.initial_state(aggregate_id)

    def decide(self, command: VerdictCommand, state: VerdictState, now: datetime) -> list[ResultEvent]:
        events: list[ResultEvent] = []
        for event in self._decider.decide(command, state, now):
            if isinstance(event, ResultReleased) and self._key_ring is not None:
                receipt = receipt_of(self._key_ring(), state.job_id, event, "validated", now)
                event = msgspec.structs.replace(event, receipt=receipt)
            events.append(event)
        return events

    def evolve(self, state: VerdictState, event: StoredResultEvent) -> VerdictState:
        if not isinstance(event, _VERDICT_TYPES):
            return state
        return self._decider.evolve(state, event)


class SubmittedResult(msgspec.Struct, frozen=True, kw_only=True):
    """The job's `job.result_submitted` a release names, with the job's correlation id."""

    event: JobResultSubmitted
    correlation_id: str
    event_id: str


class QuarantineCommands:
    def __init__(
        self,
        store: EventStore,
        commands: CommandClient,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settle_timeout_s: float | None = None,
        key_ring: Callable[[], KeyRing] | None = None,
    ) -> None:
        self._store = store
        self._commands = commands
        self._clock = clock
        self._settle_timeout_s = settle_timeout_s
        self.results: AggregateRepository[VerdictCommand, VerdictState, ResultEvent] = AggregateRepository(
            store,
            VerdictsOfResults(QuarantineDecider(), key_ring),
            StoredResultEvent,
            stream=RESULTS.name,
            clock=clock,
        )

    def register_all(self, server: CommandServer) -> None:
        server.register("release_result", ReleaseResult, self.release_result)
        server.register("discard_result", DiscardResult, self.discard_result)

    async def release_result(self, command: ReleaseResult, ctx: CommandContext) -> QuarantineDecisionReply:
        submitted = await self.submitted_result(command.job_id, command.node_id, command.attempt, command.checksum)
        decision = Release(
            node_id=command.node_id,
            attempt=command.attempt,
            checksum=command.checksum,
            by=command.by,
            comment=command.comment,
        )
        executed = await self.results.execute(command.job_id, decision, _meta(ctx, command, "released"))
        item = SettledResult(
            job_id=command.job_id,
            node_id=command.node_id,
            attempt=command.attempt,
            checksum=command.checksum,
            verdict="complete",
            correlation_id=submitted.correlation_id,
            result=submitted.event.result,
            released_by=command.by,
        )
        status, settle_error = await self._settle(item, ctx, executed.events[0].event_id if executed.events else None)
        return QuarantineDecisionReply(
            job_id=command.job_id,
            node_id=command.node_id,
            attempt=command.attempt,
            checksum=command.checksum,
            decision="released",
            changed=bool(executed.events),
            server_time=self._clock(),
            job_status=status,
            settle_error=settle_error,
        )

    async def discard_result(self, command: DiscardResult, ctx: CommandContext) -> QuarantineDecisionReply:
        decision = Discard(
            node_id=command.node_id,
            attempt=command.attempt,
            checksum=command.checksum,
            by=command.by,
            comment=command.comment,
        )
        executed = await self.results.execute(command.job_id, decision, _meta(ctx, command, "discarded"))
        return QuarantineDecisionReply(
            job_id=command.job_id,
            node_id=command.node_id,
            attempt=command.attempt,
            checksum=command.checksum,
            decision="discarded",
            changed=bool(executed.events),
            server_time=self._clock(),
        )

    async def submitted_result(self, job_id: str, node_id: str, attempt: int, checksum: str) -> SubmittedResult:
        """The job's submitted result of that node, attempt and checksum, from its history;
        NotFound when the job or that result is unknown."""
        history = await self._store.read(JOBS.name, subjects.aggregate_filter("job", job_id))
        if not history:
            raise NotFound(f"no job {job_id}")
        for stored in history[-MAX_JOB_EVENTS:]:
            if not stored.subject.endswith(".result_submitted"):
                continue
            envelope = _decode_submitted(stored.data)
            event = envelope.data
            if (event.node_id, event.attempt, event.checksum) == (
                node_id,
                attempt,
                checksum,
            ):
                return SubmittedResult(event=event, correlation_id=envelope.correlation_id, event_id=envelope.event_id)
        raise NotFound(f"job {job_id} has no result of node {node_id}, attempt {attempt}, with that checksum")

    async def _settle(
        self, item: SettledResult, ctx: CommandContext, causation_id: str | None
    ) -> tuple[JobStatus | None, CommandError | None]:
        """The job's status once the scheduler took the released result, or (None, why) when it
        refused it because the job is no longer waiting for this result."""
        reply = await self._commands.call(
            SCHEDULER,
            "settle_results",
            SettleResults(items=[item]),
            SettleResultsReply,
            correlation_id=ctx.correlation_id,
            causation_id=causation_id or ctx.causation_id,
            timeout=self._settle_timeout_s,
        )
        outcome = reply.outcomes[0] if reply.outcomes else None
        if outcome is None:
            return None, CommandError(code="internal", message="the scheduler gave no answer for the job")
        if outcome.error is None:
            return outcome.status, None
        if outcome.error.code == Conflict.code:
            return None, command_error(
                Conflict(
                    f"the release is recorded, but job {item.job_id} did not take the result: {outcome.error.message}",
                    field=outcome.error.field,
                )
            )
        raise_command_error(outcome.error)


def _meta(ctx: CommandContext, command: ReleaseResult | DiscardResult, decision: str) -> EventMeta:
    return EventMeta(
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
        actor=Actor(kind="admin", id=command.by),
        # the same decision sent again derives the same event id, so the stream stores it once
        idempotency_key=f"{decision}:{command.node_id}:{command.attempt}:{command.checksum}",
    )
