"""Wires the validation service: the result aggregate's repository, the reactor judging each
submitted result, consensus between replicas, and the admins' commands (a consensus group's
review, a quarantined result's release or discard) (ADR 0024)."""

from __future__ import annotations

from typing import Any, cast

import msgspec

from ccn_core.aggregate import AggregateRepository
from ccn_core.commands import CommandClient, CommandContext, CommandServer
from ccn_core.reactor import Reactor
from ccn_core.receipts import KeyRingSource
from ccn_core.service import Runtime, serve_health
from ccn_core.topology import RESULTS, VALIDATION_RESULTS
from ccn_jobs.consensus_rules import Comparator
from ccn_jobs.result_validation import Validator, judge_result
from ccn_proto.consensus import (
    AcceptConsensus,
    AgreementClass,
    ConsensusGroupView,
    GetConsensus,
    RejectConsensus,
)
from ccn_proto.envelope import Envelope
from ccn_proto.jobs import JobCancelled, JobDead, JobResultSubmittedBytes
from ccn_proto.results import ResultEvent
from ccn_proto.scheduler import SettledOutcome, SettledResult
from ccn_validation.consensus import (
    AcceptInReview,
    ConsensusState,
    RejectInReview,
    agreement_classes,
    spec_from_registry,
)
from ccn_validation.consensus_work import ConsensusWork, consensus_repository, spot_check_seed
from ccn_validation.judging import ResultJudging
from ccn_validation.quarantine import QuarantineDecider
from ccn_validation.quarantine_commands import QuarantineCommands
from ccn_validation.verdicts import ResultDecider

# a settlement's share of its batch: the result it carries, and room for the rest
_SETTLEMENT_OVERHEAD = 512


async def start_validation(
    runtime: Runtime, *, health: bool = True, validator: Validator = judge_result
) -> ResultJudging:
    """`validator`: the registered job types' (a test whose scheduler runs test-only job types
    passes one that knows them, as it passes the scheduler their payload types)."""
    settings = runtime.settings
    keys = KeyRingSource(settings.receipt_keys_path)
    keys.ring()  # no keys, no receipts: refuse to start rather than judge without signing
    repository = AggregateRepository(
        runtime.store,
        ResultDecider(keys.ring, QuarantineDecider(validator)),
        ResultEvent,
        stream=RESULTS.name,
        deadline_s=settings.command_timeout_s,
    )
    commands = CommandClient(runtime.nc, timeout=settings.command_timeout_s)
    judging = ResultJudging(repository, commands, replica=runtime.replica)

    async def settle(item: SettledResult) -> SettledOutcome:
        size = len(msgspec.json.encode(item.result)) + _SETTLEMENT_OVERHEAD
        return await judging.settle(item, size=size)

    consensus = ConsensusWork(
        consensus_repository(runtime.store, settings.command_timeout_s),
        runtime.store,
        commands,
        settle,
        replica=runtime.replica,
        seed=spot_check_seed(settings.token_secret),
    )
    folded = await consensus.load_trust()
    runtime.log.info("trust folded from the consensus groups", events=folded, nodes=len(consensus.trust.streaks))
    judging.consensus = consensus

    server = CommandServer(runtime.nc, "validation")
    register_consensus_commands(server, consensus)
    QuarantineCommands(runtime.store, commands, key_ring=keys.ring).register_all(server)
    await server.start()
    runtime.on_stop(server.stop)

    # results are judged as they come: one pull's results at once, their verdicts pipelined
    async def on_job_event(envelope: Envelope[JobResultSubmittedBytes | JobDead | JobCancelled], stored: Any) -> None:
        if isinstance(envelope.data, JobResultSubmittedBytes):
            await judging.on_result_submitted(cast(Envelope[JobResultSubmittedBytes], envelope), stored)
        else:
            await consensus.replica_lost(cast(Envelope[JobDead | JobCancelled], envelope))

    reactor = Reactor(
        runtime.nc,
        runtime.js,
        VALIDATION_RESULTS,
        JobResultSubmittedBytes | JobDead | JobCancelled,
        on_job_event,
        batch_size=256,
    )
    await reactor.ensure_consumer()
    runtime.spawn(reactor.run(), name=VALIDATION_RESULTS.durable)

    async def stop() -> None:
        reactor.stop()
        await judging.drain()

    runtime.on_stop(stop)
    runtime.watch_lag([VALIDATION_RESULTS])
    if health:
        await serve_health(runtime, settings.health_host, settings.validation_health_port)
    return judging


def register_consensus_commands(server: CommandServer, consensus: ConsensusWork) -> None:
    async def accept(command: AcceptConsensus, ctx: CommandContext) -> ConsensusGroupView:
        review = AcceptInReview(checksum=command.checksum, reviewer=command.reviewer, comment=command.comment)
        return group_view(command.group_id, await consensus.review(command.group_id, review, ctx.correlation_id))

    async def reject(command: RejectConsensus, ctx: CommandContext) -> ConsensusGroupView:
        review = RejectInReview(reviewer=command.reviewer, comment=command.comment)
        return group_view(command.group_id, await consensus.review(command.group_id, review, ctx.correlation_id))

    async def get(command: GetConsensus, ctx: CommandContext) -> ConsensusGroupView:
        return group_view(command.group_id, await consensus.group(command.group_id))

    server.register("accept_consensus", AcceptConsensus, accept)
    server.register("reject_consensus", RejectConsensus, reject)
    server.register("get_consensus", GetConsensus, get)


def group_view(group_id: str, state: ConsensusState) -> ConsensusGroupView:
    spec = spec_from_registry(state.job_type) if state.job_type else None
    classes = agreement_classes(state.results, spec.comparator if spec else Comparator())
    return ConsensusGroupView(
        group_id=group_id,
        job_type=state.job_type,
        status=state.status,
        results=len(state.results),
        classes=[
            AgreementClass(checksum=members[0].checksum, nodes=[r.node_id for r in members]) for members in classes
        ],
        replicas=list(state.issued),
        lost=list(state.lost),
        answer=state.answer,
    )
