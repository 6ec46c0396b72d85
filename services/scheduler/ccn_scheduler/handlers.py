"""The scheduler's command handlers (ccn.cmd.scheduler.<name>): validate, derive ids, let the
job decider rule, answer from the aggregate."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import msgspec

from ccn_core import ids, subjects
from ccn_core.aggregate import EventMeta
from ccn_core.commands import CommandContext, CommandServer, item_outcome
from ccn_core.domain.job import CancelJob as CancelJobCommand
from ccn_core.domain.job import CreateJob as CreateJobCommand
from ccn_core.domain.job import ExpireLease, JobState
from ccn_core.domain.job import FailJob as FailJobCommand
from ccn_core.domain.job import ReleaseJob as ReleaseJobCommand
from ccn_core.domain.job import SettleResult as SettleResultCommand
from ccn_core.domain.job import SubmitResult as SubmitResultCommand
from ccn_core.errors import BadInput, Conflict, NotFound, Unavailable, Unprocessable
from ccn_core.logging import correlation, get_logger
from ccn_proto.envelope import Actor
from ccn_proto.jobs import JobCreated
from ccn_proto.scheduler import (
    BatchedClaimOutcome,
    BatchedResult,
    BatchedResultOutcome,
    BatchJob,
    CancelJob,
    CancelJobReply,
    ClaimBatch,
    ClaimBatchReply,
    ClaimJobs,
    ClaimJobsReply,
    CreateBatch,
    CreateBatchReply,
    CreateJob,
    CreateJobReply,
    FailJob,
    FailJobReply,
    GetJob,
    HeldJob,
    HeldJobs,
    HeldJobsReply,
    JobStatus,
    JobView,
    LeaseView,
    LostLease,
    NodeDisconnected,
    NodeDisconnectedReply,
    ReleaseJob,
    ReleaseJobReply,
    RenewLeases,
    RenewLeasesReply,
    SettledOutcome,
    SettledResult,
    SettleResults,
    SettleResultsReply,
    SubmitResult,
    SubmitResultReply,
    SubmitResults,
    SubmitResultsReply,
    WithdrawClaim,
)
from ccn_scheduler.board import ClaimBoard
from ccn_scheduler.claims import Claimer, ReplyBudget
from ccn_scheduler.intake import Intake
from ccn_scheduler.job_history import job_view
from ccn_scheduler.job_service import JobService
from ccn_scheduler.node_governance import NodeGovernance
from ccn_scheduler.payloads import PayloadTypes, check_payload

log = get_logger("ccn.scheduler.handlers")
# creations appended at once, across every creation command: enough to keep appends in flight
CREATE_CONCURRENCY = 256
# jobs admitted for creation and not yet created (in flight or waiting for a slot), and how long
# the oldest of them may have been in hand: past either a creation is refused with retry_after,
# so a flood of submissions waits at the caller, not here, claims and results keep their share of
# the owner's time, and an admitted creation command waits behind at most about the bound's worth
# of others (intake.py; a batch of many chunks still takes its size over its share of the rate)
MAX_CREATING = 4096
CREATE_WAIT_BOUND_S = 1.0
# room kept in a submit_results reply for each result's own answer, ahead of the offers
_RESULT_REPLY_BYTES = 384
# how long a creation refused for a full board should wait: nodes drain it at thousands a second
_FULL_RETRY_AFTER_S = 2.0


def request_fingerprint(body: msgspec.Struct) -> str:
    """What makes two creations the same request: the body without its key."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def public_status(state: JobState) -> JobStatus:
    if state.status == "absent":
        raise NotFound(f"job {state.job_id} does not exist")
    return state.status


class SchedulerHandlers:
    """The commands of the claim owner (ADR 0016): only the replica that owns the scheduler's
    claims subscribes, so every decision about a job is taken here, against the board."""

    def __init__(
        self,
        jobs: JobService,
        board: ClaimBoard,
        claimer: Claimer,
        payload_types: PayloadTypes,
        key_secret: str,
        *,
        replica: str,
        release_grace_s: float,
        max_payload_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
        governance: NodeGovernance | None = None,
    ) -> None:
        if not key_secret:
            raise ValueError("CCN_TOKEN_SECRET is required: it keys the job ids of idempotent creations")
        self._jobs = jobs
        self._board = board
        self._claimer = claimer
        self._governance = governance
        self._payload_types = payload_types
        self._key = key_secret
        self._replica = replica
        self._release_grace = timedelta(seconds=release_grace_s)
        self._max_payload_bytes = max_payload_bytes
        self._clock = clock
        self._jitter = jitter
        self._create_slots = asyncio.Semaphore(CREATE_CONCURRENCY)
        self._intake = Intake(max_jobs=MAX_CREATING, max_wait_s=CREATE_WAIT_BOUND_S)

    def register_all(self, server: CommandServer) -> None:
        server.register("create_job", CreateJob, self.create_job)
        server.register("create_batch", CreateBatch, self.create_batch)
        server.register("claim_jobs", ClaimJobs, self.claim_jobs)
        server.register("claim_batch", ClaimBatch, self.claim_batch)
        server.register("held_jobs", HeldJobs, self.held_jobs)
        server.register("node_disconnected", NodeDisconnected, self.node_disconnected)
        server.register("renew_leases", RenewLeases, self.renew_leases)
        server.register("submit_result", SubmitResult, self.submit_result)
        server.register("submit_results", SubmitResults, self.submit_results)
        server.register("settle_results", SettleResults, self.settle_results)
        server.register("fail_job", FailJob, self.fail_job)
        server.register("release_job", ReleaseJob, self.release_job)
        server.register("cancel_job", CancelJob, self.cancel_job)
        server.register("get_job", GetJob, self.get_job)
        # every replica hears it: the withdrawn claim may wait in any of them
        server.on_notice(subjects.claims_withdrawn(), WithdrawClaim, self.withdraw_claim)

    def withdraw_claim(self, notice: WithdrawClaim) -> None:
        self._claimer.withdraw(notice.claim_id)

    @contextlib.contextmanager
    def _admitted(self, jobs: int, *, continuing: bool = False) -> Iterator[None]:
        """Every queue is bounded: the board holds live jobs and their payloads in memory, and
        only so many creations are in hand at once, for so long (intake.py)."""
        board = self._board
        if len(board) + jobs > board.max_live or board.payload_bytes > self._max_payload_bytes:
            raise Unavailable(
                f"the scheduler holds {len(board)} unfinished jobs, its limit; try again shortly",
                retry_after=_FULL_RETRY_AFTER_S,
            )
        with self._intake.admitted(jobs, continuing=continuing):
            yield

    async def create_job(self, command: CreateJob, ctx: CommandContext) -> CreateJobReply:
        check_payload(self._payload_types, command.job_type, command.payload, field="payload")
        with self._admitted(1):
            return await self._create_one(command, ctx)

    async def _create_one(self, command: CreateJob, ctx: CommandContext) -> CreateJobReply:
        key = command.idempotency_key
        if key is not None:
            # a retry under the same key must find the same job: its id comes from the key
            job_id = str(ids.keyed_uuid4(self._key, "job", key))
            fingerprint = request_fingerprint(msgspec.structs.replace(command, idempotency_key=None))
        else:
            job_id, fingerprint = str(ids.uuid7()), None
        created = JobCreated(
            job_type=command.job_type,
            payload=command.payload,
            priority=command.priority,
            max_retries=command.max_retries,
            lease_s=command.lease_s,
            batch_id=command.batch_id,
            dataset_source=command.dataset_source,
            dataset_version=command.dataset_version,
            idempotency_key_hash=ids.token_hash(key) if key else None,
            request_fingerprint=fingerprint,
            replica_of=command.replica_of,
        )
        async with self._create_slots:
            state, fresh = await self._create(job_id, created, self._meta(ctx, key and f"create:{key}"))
        return CreateJobReply(
            job_id=job_id,
            job_type=command.job_type,
            status=public_status(state),
            created=fresh,
            server_time=self._clock(),
        )

    async def create_batch(self, command: CreateBatch, ctx: CommandContext) -> CreateBatchReply:
        # every item is checked before anything is written: a bad batch writes nothing
        keys = batch_item_keys(command.jobs)
        for index, item in enumerate(command.jobs):
            check_payload(self._payload_types, item.job_type, item.payload, field=f"jobs[{index}].payload")
        with self._admitted(len(command.jobs), continuing=command.continues_batch):
            return await self._create_batch(command, keys, ctx)

    async def _create_batch(self, command: CreateBatch, keys: list[str], ctx: CommandContext) -> CreateBatchReply:
        async def one(item: BatchJob, item_key: str) -> tuple[str, bool]:
            job_id = str(ids.keyed_uuid4(self._key, "batch-job", command.batch_id, item_key))
            created = JobCreated(
                job_type=item.job_type,
                payload=item.payload,
                priority=item.priority,
                max_retries=item.max_retries,
                lease_s=item.lease_s,
                batch_id=command.batch_id,
                dataset_source=command.dataset_source,
                dataset_version=command.dataset_version,
                idempotency_key_hash=ids.token_hash(f"{command.batch_id}\x1f{item_key}"),
                request_fingerprint=request_fingerprint(msgspec.structs.replace(item, item_key=None)),
            )
            async with self._create_slots:
                _, fresh = await self._create(job_id, created, self._meta(ctx, f"batch:{command.batch_id}:{item_key}"))
            return job_id, fresh

        results = await asyncio.gather(*(one(item, key) for item, key in zip(command.jobs, keys, strict=True)))
        created_count = sum(1 for _, fresh in results if fresh)
        return CreateBatchReply(
            batch_id=command.batch_id,
            job_ids=[job_id for job_id, _ in results],
            created=created_count,
            existing=len(results) - created_count,
            server_time=self._clock(),
        )

    async def _create(self, job_id: str, created: JobCreated, meta: EventMeta) -> tuple[JobState, bool]:
        executed = await self._jobs.execute(job_id, CreateJobCommand(created=created), meta, new=True)
        if executed.events:
            # claimable when the reply leaves: the board is where claims look
            self._board.add(
                job_id,
                executed.state,
                priority=created.priority,
                order=executed.version,
                correlation_id=meta.correlation_id,
                payload=msgspec.Raw(msgspec.json.encode(created.payload)),
            )
            self._claimer.work.notify()
        return executed.state, bool(executed.events)

    async def claim_jobs(self, command: ClaimJobs, ctx: CommandContext) -> ClaimJobsReply:
        self._check_job_types(command)
        return await self._claimer.claim(command, ctx.correlation_id, ctx.causation_id)

    def _check_job_types(self, command: ClaimJobs) -> None:
        unknown = sorted(set(command.job_types) - set(self._payload_types))
        if unknown:
            raise Unprocessable(f"unknown job types {', '.join(unknown)}", field="job_types")

    async def claim_batch(self, command: ClaimBatch, ctx: CommandContext) -> ClaimBatchReply:
        budget = self._claimer.reply_budget()  # the offers of every ask travel in one reply

        async def one(ask: ClaimJobs) -> ClaimJobsReply:
            self._check_job_types(ask)
            return await self._claimer.claim_now(ask, ctx.correlation_id, ctx.causation_id, budget)

        outcomes = await asyncio.gather(*(item_outcome(one(ask)) for ask in command.asks))
        return ClaimBatchReply(outcomes=[BatchedClaimOutcome(reply=reply, error=error) for reply, error in outcomes])

    async def submit_results(self, command: SubmitResults, ctx: CommandContext) -> SubmitResultsReply:
        # the offers of the asks sent with the results travel in this reply, after the results'
        # own answers
        budget = self._claimer.reply_budget(reserved=len(command.items) * _RESULT_REPLY_BYTES)

        async def one(item: BatchedResult) -> BatchedResultOutcome:
            # each result is a step of its own job's life, on that job's thread
            with correlation(item.correlation_id, node_id=item.submit.node_id):
                item_ctx = CommandContext(item.correlation_id, ctx.causation_id, "submit_result")
                reply, error = await item_outcome(self.submit_result(item.submit, item_ctx))
            if reply is None or item.claim is None:
                return BatchedResultOutcome(reply=reply, error=error)
            claimed, refused = await item_outcome(self._claim_after_result(item.submit, item.claim, ctx, budget))
            return BatchedResultOutcome(reply=reply, claim=BatchedClaimOutcome(reply=claimed, error=refused))

        return SubmitResultsReply(outcomes=list(await asyncio.gather(*(one(item) for item in command.items))))

    async def _claim_after_result(
        self, submit: SubmitResult, ask: ClaimJobs, ctx: CommandContext, budget: ReplyBudget
    ) -> ClaimJobsReply:
        """The node's next ask, made once its result is recorded: the job's slot is free."""
        if ask.node_id != submit.node_id:
            raise BadInput("an ask sent with a result must be the same node's", field="claim.node_id")
        self._check_job_types(ask)
        return await self._claimer.claim_now(ask, ctx.correlation_id, ctx.causation_id, budget)

    async def held_jobs(self, command: HeldJobs, ctx: CommandContext) -> HeldJobsReply:
        node_id = command.node_id
        self._board.returned(node_id, command.running)
        held = [
            card
            for card in self._board.held_jobs(node_id)
            if card.state.status == "claimed" and card.state.holder == node_id and card.lease_end is not None
        ]
        if command.running is not None:
            # its hello names every job it runs: one it held and does not name is not being
            # worked on (an offer lost with a dead edge, a restart), so it goes back now
            named = set(command.running)
            gone = [card.job_id for card in held if card.job_id not in named]
            if gone:
                self._board.departed(node_id, gone, self._clock())
                log.info("jobs its hello does not name go back to the queue", node_id=node_id, jobs=len(gone))
            held = [card for card in held if card.job_id in named]
        jobs = [
            HeldJob(
                job_id=card.job_id,
                attempt=card.state.attempt,
                lease_until=card.lease_end,
                correlation_id=card.correlation_id,
            )
            for card in held
            if card.lease_end is not None
        ]
        return HeldJobsReply(node_id=node_id, jobs=jobs, server_time=self._clock())

    async def node_disconnected(self, command: NodeDisconnected, ctx: CommandContext) -> NodeDisconnectedReply:
        release_at = self._clock() + (timedelta(0) if command.release_now else self._release_grace)
        pending = self._board.departed(command.node_id, command.job_ids, release_at)
        if pending:
            log.info("jobs of a departed node wait for release", pending=pending, release_at=release_at.isoformat())
        return NodeDisconnectedReply(
            node_id=command.node_id,
            pending=pending,
            release_at=release_at if pending else None,
            server_time=self._clock(),
        )

    async def renew_leases(self, command: RenewLeases, ctx: CommandContext) -> RenewLeasesReply:
        """In memory only: a renewal appends nothing (ADR 0016), so a job's events do not grow
        with how long it runs. An owner that takes over gives every lease a fresh term."""
        now = self._clock()
        renewed: list[LeaseView] = []
        lost: list[LostLease] = []
        for job_id in dict.fromkeys(command.job_ids):
            lease_end = self._board.renew(command.node_id, job_id, now)
            if lease_end is not None:
                renewed.append(LeaseView(job_id=job_id, lease_until=lease_end))
            elif self._board.get(job_id) is None:
                lost.append(LostLease(job_id=job_id, code=NotFound.code, message=f"job {job_id} is not running"))
            else:
                message = f"node {command.node_id} does not hold job {job_id}"
                lost.append(LostLease(job_id=job_id, code=Conflict.code, message=message))
        return RenewLeasesReply(node_id=command.node_id, renewed=renewed, lost=lost, server_time=self._clock())

    async def submit_result(self, command: SubmitResult, ctx: CommandContext) -> SubmitResultReply:
        shadow_banned = self._governance is not None and self._governance.shadow_banned(command.node_id)
        decision = SubmitResultCommand(
            node_id=command.node_id,
            result=command.result,
            checksum=command.checksum,
            now=self._clock(),
            replica=self._replica,
            usage=command.usage,
            shadow_banned=shadow_banned,
            signature=command.signature,
        )
        executed = await self._jobs.execute(command.job_id, decision, self._node_meta(ctx, command.node_id))
        status = public_status(executed.state)
        if (command.node_id, command.checksum) in executed.state.set_aside and executed.state.holder != command.node_id:
            # set aside (its node is shadow-banned): answered as a recorded result is, so the
            # node cannot tell; the job is queued again for another node
            status = "validating"
            self._claimer.work.notify()
        return SubmitResultReply(
            job_id=command.job_id, status=status, duplicate=not executed.events, server_time=self._clock()
        )

    async def settle_results(self, command: SettleResults, ctx: CommandContext) -> SettleResultsReply:
        """The validation service's verdicts (ADR 0024): each completes its job or tries it again."""

        async def one(item: SettledResult) -> SettledOutcome:
            with correlation(item.correlation_id):
                item_ctx = CommandContext(item.correlation_id, ctx.causation_id, "settle_results")
                state, error = await item_outcome(self._settle(item, item_ctx))
            return SettledOutcome(job_id=item.job_id, status=state, error=error)

        return SettleResultsReply(outcomes=list(await asyncio.gather(*(one(item) for item in command.items))))

    async def _settle(self, item: SettledResult, ctx: CommandContext) -> JobStatus:
        decision = SettleResultCommand(
            node_id=item.node_id,
            attempt=item.attempt,
            checksum=item.checksum,
            verdict=item.verdict,
            now=self._clock(),
            jitter=self._jitter(),
            result=item.result,
            reason=item.reason,
            released_by=item.released_by,
            replica=self._replica,
            agreed=item.agreed,
        )
        meta = self._meta(ctx, f"settle:{item.job_id}:{item.attempt}:{item.checksum}:{item.verdict}")
        executed = await self._jobs.execute(item.job_id, decision, meta)
        if executed.events and executed.state.status in ("queued", "retry_wait"):
            self._claimer.work.notify()
        return public_status(executed.state)

    async def fail_job(self, command: FailJob, ctx: CommandContext) -> FailJobReply:
        decision = FailJobCommand(
            node_id=command.node_id,
            reason=command.reason,
            now=self._clock(),
            jitter=self._jitter(),
            replica=self._replica,
            kind=command.kind,
            usage=command.usage,
        )
        executed = await self._jobs.execute(command.job_id, decision, self._node_meta(ctx, command.node_id))
        return FailJobReply(
            job_id=command.job_id,
            status=public_status(executed.state),
            retry_at=executed.state.retry_at if executed.state.status == "retry_wait" else None,
            server_time=self._clock(),
        )

    async def release_job(self, command: ReleaseJob, ctx: CommandContext) -> ReleaseJobReply:
        decision = ReleaseJobCommand(
            node_id=command.node_id, reason=command.reason, now=self._clock(), replica=self._replica
        )
        executed = await self._jobs.execute(command.job_id, decision, self._node_meta(ctx, command.node_id))
        if executed.events:
            self._claimer.work.notify()  # claimable again when the reply leaves
        return ReleaseJobReply(job_id=command.job_id, status=public_status(executed.state), server_time=self._clock())

    async def cancel_job(self, command: CancelJob, ctx: CommandContext) -> CancelJobReply:
        executed = await self._jobs.execute(command.job_id, CancelJobCommand(reason=command.reason), self._meta(ctx))
        return CancelJobReply(job_id=command.job_id, status=public_status(executed.state), server_time=self._clock())

    async def get_job(self, command: GetJob, ctx: CommandContext) -> JobView:
        history = await self._jobs.repository.history(command.job_id)
        if not history:
            raise NotFound(f"job {command.job_id} does not exist")
        view = job_view(command.job_id, history, self._clock())
        card = self._board.get(command.job_id)
        if view.status == "claimed" and card is not None and card.lease_end is not None:
            # renewals are not events: the lease's end is the owner's to tell
            view = msgspec.structs.replace(view, lease_until=card.lease_end)
        return view

    async def expire(self, job_id: str, command: ExpireLease, meta: EventMeta) -> bool:
        """An abandonment the owner's sweep decided; True when it was appended."""
        executed = await self._jobs.execute(job_id, command, meta)
        if executed.events:
            self._claimer.work.notify()
        return bool(executed.events)

    def _meta(self, ctx: CommandContext, idempotency_key: str | None = None) -> EventMeta:
        return EventMeta(
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            actor=Actor(kind="service", id=self._replica),
            idempotency_key=idempotency_key or None,
        )

    def _node_meta(self, ctx: CommandContext, node_id: str) -> EventMeta:
        return EventMeta(
            correlation_id=ctx.correlation_id, causation_id=ctx.causation_id, actor=Actor(kind="node", id=node_id)
        )


def batch_item_keys(items: list[BatchJob]) -> list[str]:
    """Each item's key within its batch: its own, or its position. Two items may not share one."""
    keys: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        key = item.item_key or f"#{index}"
        if key in seen:
            raise BadInput(f"item_key {key!r} appears twice in the batch", field=f"jobs[{index}].item_key")
        seen.add(key)
        keys.append(key)
    return keys
