"""Consensus between replicas, wired (ADR 0024): the validation service's shell around the pure
consensus decider (ccn_validation.consensus) and adaptive replication (ccn_validation.trust).

A validated result of a job type that asks for consensus does not settle its job by itself: it
is recorded on its group's consensus aggregate (`ccn.consensus.<first job id>.*`, stream
CCN_CONSENSUS), and what the decider says is done:
- replicas asked for are created by the scheduler (`create_job` with `replica_of`, one
  idempotency key per place, so asking again creates nothing twice), and recorded as issued;
- a finalised group settles every job of it: the first job completes with the group's answer,
  each replica with its own result (readers of answers skip replicas: `replica_of`), and the
  replicas still out are cancelled;
- a group sent to review waits for a reviewer (`accept_consensus` / `reject_consensus`).
A replica that dies or is cancelled before it answered is lost to its group (`ReplicaLost`),
which asks for another or goes to review.

Every step is idempotent: a redelivered result finds its arrival recorded and only repeats the
follow-up (create what is missing, settle what is not settled), which the scheduler answers
without new events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, cast

import msgspec

from ccn_core import subjects
from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.commands import CommandClient, item_outcome, raise_command_error
from ccn_core.errors import Conflict, NotFound
from ccn_core.eventstore import EVERY_EVENT, EventStore
from ccn_core.logging import get_logger
from ccn_core.topology import CONSENSUS, JOBS
from ccn_proto.consensus import ConsensusEvent, ResultRecorded
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobCancelled, JobCreatedBytes, JobDead
from ccn_proto.scheduler import (
    CancelJob,
    CancelJobReply,
    CreateJob,
    CreateJobReply,
    SettledOutcome,
    SettledResult,
)
from ccn_validation.consensus import (
    AcceptInReview,
    ConsensusCommand,
    ConsensusDecider,
    ConsensusDecisions,
    ConsensusState,
    RejectInReview,
    ReplicaIssued,
    ReplicaLost,
    ResultArrived,
    spec_from_registry,
)
from ccn_validation.trust import TRUSTED_AFTER, TrustBook

log = get_logger("ccn.validation.consensus")

ConsensusRepository = AggregateRepository[ConsensusCommand, ConsensusState, ConsensusEvent]
CONSENSUS_AGGREGATE = "consensus"
_decode_created = msgspec.json.Decoder(Envelope[JobCreatedBytes]).decode
_decode_consensus = msgspec.json.Decoder(Envelope[ConsensusEvent]).decode


def consensus_repository(store: EventStore, deadline_s: float) -> ConsensusRepository:
    return AggregateRepository(
        store,
        ConsensusDecisions(ConsensusDecider(aggregate=CONSENSUS_AGGREGATE)),
        ConsensusEvent,
        stream=CONSENSUS.name,
        deadline_s=deadline_s,
    )


def spot_check_seed(secret: str) -> bytes:
    """The spot checks' seed, derived from the service's secret: a node cannot compute which of
    its jobs are checked (ccn_validation.trust)."""
    return hashlib.sha256(b"ccn-spot-checks\n" + secret.encode()).digest()


class ConsensusWork:
    def __init__(
        self,
        repository: ConsensusRepository,
        store: EventStore,
        commands: CommandClient,
        settle: Callable[[SettledResult], Awaitable[SettledOutcome]],  # the judging's batched settlements
        *,
        replica: str,
        seed: bytes,
    ) -> None:
        self._repository = repository
        self._store = store
        self._commands = commands
        self._settle = settle
        self._replica = replica
        self._seed = seed
        self.trust = TrustBook()

    async def load_trust(self) -> int:
        """Fold every consensus event recorded so far into the trust book (this replica's own
        decisions are folded as it takes them)."""
        folded = 0
        async for batch in self._store.scan(CONSENSUS.name, EVERY_EVENT, 1):
            for stored in batch:
                try:
                    self.trust.apply(_decode_consensus(stored.data).data)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue  # not this fold's to judge: the group's own aggregate refuses it
                folded += 1
        return folded

    @staticmethod
    def asks_for_consensus(job_type: str) -> bool:
        return spec_from_registry(job_type) is not None

    async def result_validated(
        self,
        *,
        job_id: str,
        group: str,
        job_type: str,
        node_id: str,
        checksum: str,
        result: bytes,
        correlation_id: str,
        causation_id: str,
    ) -> None:
        spec = spec_from_registry(job_type)
        policy = self.trust.first_result_policy(node_id, job_type, spec, group, self._seed)
        arrived = ResultArrived(
            job_id=job_id,
            job_type=job_type,
            node_id=node_id,
            ip_hash=None,  # the claim path keeps addresses apart (ccn_core.replicas)
            checksum=checksum,
            result=msgspec.json.decode(result, type=dict[str, Any]),
            trusted=self.trust.streak(node_id, job_type) >= TRUSTED_AFTER,
            trusted_alone=policy.alone,
            on_probation=self.trust.is_on_probation(node_id, job_type),
        )
        meta = self._meta(correlation_id, causation_id, f"arrived:{job_id}:{checksum}")
        state = await self._execute(group, arrived, meta)
        await self.follow_up(group, state, correlation_id)

    async def replica_lost(self, envelope: Envelope[JobDead | JobCancelled]) -> None:
        group = envelope.data.replica_of
        if group is None:
            return  # not a replica
        reason = envelope.data.reason or envelope.type
        meta = self._meta(envelope.correlation_id, envelope.event_id, f"lost:{envelope.aggregate_id}")
        try:
            state = await self._execute(group, ReplicaLost(job_id=envelope.aggregate_id, reason=reason), meta)
        except NotFound:
            return
        await self.follow_up(group, state, envelope.correlation_id)

    async def review(self, group: str, command: AcceptInReview | RejectInReview, correlation_id: str) -> ConsensusState:
        meta = EventMeta(
            correlation_id=correlation_id, causation_id=None, actor=Actor(kind="admin", id=command.reviewer)
        )
        state = await self._execute(group, command, meta)
        await self.follow_up(group, state, correlation_id)
        return state

    async def group(self, group: str) -> ConsensusState:
        state = (await self._repository.load(group)).state
        if state.job_type is None and not state.results:
            raise NotFound(f"no consensus group {group}")
        return state

    async def follow_up(self, group: str, state: ConsensusState, correlation_id: str) -> None:
        """Bring the jobs in line with the group: replicas created, settlements made."""
        if len(state.issued) < state.requested:
            state = await self._create_replicas(group, state, correlation_id)
        if state.status == "finalised":
            await self._settle_group(group, state, correlation_id)
        elif state.status == "rejected":
            await self._cancel(group, [group, *state.issued], "no result of its replicas was accepted", correlation_id)
        elif state.status == "in_review":
            log.warning("consensus group awaits a reviewer", group=group, results=len(state.results))

    async def _create_replicas(self, group: str, state: ConsensusState, correlation_id: str) -> ConsensusState:
        created = await self._creation_of(group)
        if created is None:
            log.error("consensus group has no job.created; no replica made", group=group)
            return state
        for place in range(len(state.issued), state.requested):
            command = CreateJob(
                job_type=created.job_type,
                payload=cast(dict[str, Any], created.payload),  # the stored bytes, sent as they are
                priority=created.priority + 1,  # a group's replicas before fresh work: they finish it
                max_retries=created.max_retries,
                lease_s=created.lease_s,
                batch_id=created.batch_id,
                dataset_source=created.dataset_source,
                dataset_version=created.dataset_version,
                idempotency_key=f"replica:{group}:{place}",
                replica_of=group,
            )
            reply = await self._commands.call(
                "scheduler", "create_job", command, CreateJobReply, correlation_id=correlation_id
            )
            meta = self._meta(correlation_id, None, f"issued:{reply.job_id}")
            state = await self._execute(group, ReplicaIssued(job_id=reply.job_id), meta)
            log.info("replica issued", group=group, job_id=reply.job_id)
        return state

    async def _settle_group(self, group: str, state: ConsensusState, correlation_id: str) -> None:
        answer = state.result_of(state.answer) if state.answer else None
        if answer is None:
            log.error("finalised group without its answer's result", group=group, answer=state.answer)
            return
        items = [_agreed(group, answer, correlation_id)]
        items += [_agreed(result.job_id, result, correlation_id) for result in state.results if result.job_id != group]
        outcomes = [await self._settle(item) for item in items]
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.error is not None and outcome.error.code not in (Conflict.code, NotFound.code):
                raise_command_error(outcome.error)  # the reactor retries what may succeed later
            if outcome.error is not None:
                log.info("group job not settled: it moved on", job_id=item.job_id, reason=outcome.error.message)
        answered = {result.job_id for result in state.results}
        out = [job for job in state.issued if job not in answered and job not in state.lost]
        await self._cancel(group, out, "its group is finalised", correlation_id)

    async def _cancel(self, group: str, jobs: list[str], reason: str, correlation_id: str) -> None:
        for job_id in jobs:
            call = self._commands.call(
                "scheduler",
                "cancel_job",
                CancelJob(job_id=job_id, reason=reason),
                CancelJobReply,
                correlation_id=correlation_id,
            )
            _, error = await item_outcome(call)
            if error is not None and error.code not in (Conflict.code, NotFound.code):
                log.warning("replica not cancelled; it will be settled when it answers", job_id=job_id, group=group)

    async def _execute(self, group: str, command: ConsensusCommand, meta: EventMeta) -> ConsensusState:
        try:
            executed = await self._repository.execute(group, command, meta)
        finally:
            self._repository.forget(group)  # groups are many and short-lived: nothing kept warm
        for envelope in executed.events:
            self.trust.apply(envelope.data)
        return executed.state

    async def _creation_of(self, group: str) -> JobCreatedBytes | None:
        stored = await self._store.read(JOBS.name, subjects.event("job", group, "created"))
        return _decode_created(stored[0].data).data if stored else None

    def _meta(self, correlation_id: str, causation_id: str | None, key: str) -> EventMeta:
        return EventMeta(
            correlation_id=correlation_id,
            causation_id=causation_id,
            actor=Actor(kind="service", id=self._replica),
            idempotency_key=key,
        )


def _agreed(job_id: str, result: ResultRecorded, correlation_id: str) -> SettledResult:
    return SettledResult(
        job_id=job_id,
        node_id=result.node_id,
        attempt=0,  # an agreed completion counts the job's own attempt
        checksum=result.checksum,
        verdict="complete",
        correlation_id=correlation_id,
        result=result.result,
        agreed=True,
    )
