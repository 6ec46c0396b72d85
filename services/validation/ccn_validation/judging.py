"""The validation reactor's work for one submitted result: judge it on the job's result
aggregate (verdict and receipt in one append), then settle the job with the scheduler.

Every step is idempotent, so a redelivered `job.result_submitted` (a crash between the verdict
and the settlement, a scheduler that did not answer) finds the verdict already recorded and
only settles again; the scheduler answers a settlement it has already applied without a second
event. Settlements of many results travel in one `settle_results` command (ccn_core.coalesce):
one request per batch of results, not per result.
"""

from __future__ import annotations

from typing import Any, cast

from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.coalesce import Coalescer
from ccn_core.commands import CommandClient, item_outcome, raise_command_error
from ccn_core.errors import Conflict, NotFound
from ccn_core.eventstore import StoredEvent
from ccn_core.logging import get_logger
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobResultSubmittedBytes
from ccn_proto.results import ResultEvent
from ccn_proto.scheduler import (
    MAX_SETTLED_RESULTS,
    SettledOutcome,
    SettledResult,
    SettleResults,
    SettleResultsReply,
)
from ccn_validation.quarantine import Judge, VerdictState
from ccn_validation.verdicts import (
    JudgeWithReceipt,
    ResultCommand,
    judged_result,
    rejection_summary,
    settlement_of,
)

log = get_logger("ccn.validation.judging")

ResultRepository = AggregateRepository[ResultCommand, VerdictState, ResultEvent]
# settlement batches out at once: a second batch forms while the first is answered
_SETTLEMENTS_IN_FLIGHT = 2
# a settle_results request stays well under NATS's max_payload (results travel in it)
_MAX_SETTLE_BYTES = 512 * 1024
_ITEM_OVERHEAD = 512


class ResultJudging:
    def __init__(self, repository: ResultRepository, commands: CommandClient, *, replica: str) -> None:
        self._repository = repository
        self._commands = commands
        self._replica = replica
        self._settlements: Coalescer[SettledResult, SettledOutcome] = Coalescer(
            self._settle_batch,
            max_batch=MAX_SETTLED_RESULTS,
            max_in_flight=_SETTLEMENTS_IN_FLIGHT,
            max_bytes=_MAX_SETTLE_BYTES,
        )
        self.judged = 0
        self.rejected = 0

    async def on_result_submitted(self, envelope: Envelope[JobResultSubmittedBytes], stored: StoredEvent) -> None:
        submitted = envelope.data
        job_id = envelope.aggregate_id
        command = JudgeWithReceipt(
            judge=Judge(
                node_id=submitted.node_id,
                attempt=submitted.attempt,
                job_type=submitted.job_type,
                result=bytes(submitted.result),
                checksum=submitted.checksum,
            ),
            now=envelope.occurred_at,
            signature=submitted.signature,
        )
        meta = EventMeta(
            correlation_id=envelope.correlation_id,
            causation_id=envelope.event_id,
            actor=Actor(kind="service", id=self._replica),
            idempotency_key=f"judge:{submitted.node_id}:{submitted.attempt}:{submitted.checksum}",
        )
        try:
            # a job's first result finds no aggregate: decided without a read, checked on append
            executed = await self._repository.execute(job_id, command, meta, new=True)
        finally:
            self._repository.forget(job_id)  # one verdict per result: nothing to keep warm
        judged = judged_result(executed.state, submitted.node_id, submitted.attempt, submitted.checksum)
        if judged is None:
            # another result of this attempt was judged first: this one is not the job's to settle
            log.warning("a second result for a judged attempt is not settled", job_id=job_id)
            return
        if executed.events:
            self.judged += 1
        settlement = settlement_of(judged)
        item = SettledResult(
            job_id=job_id,
            node_id=submitted.node_id,
            attempt=submitted.attempt,
            checksum=submitted.checksum,
            verdict=settlement,
            correlation_id=envelope.correlation_id,
            # the result's bytes as stored, sent as they are: msgspec writes a Raw in place
            result=cast(dict[str, Any], submitted.result) if settlement == "complete" else None,
            reason=rejection_summary(executed.events) if settlement == "reject" else None,
            released_by=None,
        )
        if settlement == "reject":
            self.rejected += 1
            log.info("result rejected", job_id=job_id, node_id=submitted.node_id, reason=item.reason)
        outcome = await self._settlements.submit(item, size=len(submitted.result) + _ITEM_OVERHEAD)
        if outcome.error is None:
            return
        if outcome.error.code in (Conflict.code, NotFound.code):
            # the job moved on without this result (cancelled, completed by a released result):
            # the verdict stands on the result aggregate, and there is nothing to settle
            log.info("result not settled: its job moved on", job_id=job_id, reason=outcome.error.message)
            return
        raise_command_error(outcome.error)  # the reactor retries what may succeed later

    async def _settle_batch(self, items: list[SettledResult]) -> list[SettledOutcome]:
        call = self._commands.call(
            "scheduler",
            "settle_results",
            SettleResults(items=items),
            SettleResultsReply,
            correlation_id=items[0].correlation_id,
        )
        reply, error = await item_outcome(call)
        if reply is None:  # every item of the batch shares the failure, and is retried
            return [SettledOutcome(job_id=item.job_id, error=error) for item in items]
        return reply.outcomes

    async def drain(self) -> None:
        await self._settlements.drain()
