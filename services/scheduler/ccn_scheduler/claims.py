"""Handing ready jobs to a node: ready queue → claim ledger → OCC append of `job.claimed`.

The order is what makes it safe with many replicas and many claimers:
1. take entries from the ready queue (each entry goes to one claimer at a time);
2. reserve them in the node's ledger with compare-and-set, up to its free slots, so the node
   never holds more than its advertised concurrency;
3. append `job.claimed` with OCC: the aggregate, not the queue, decides. An entry whose job is
   no longer claimable is acked and dropped; one whose retry time has not come yet goes back
   to the queue for that long; one that could not be decided (NATS trouble) goes back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from ccn_core.aggregate import EventMeta
from ccn_core.domain.job import ClaimJob
from ccn_core.errors import CcnError, Conflict, NotFound
from ccn_core.logging import get_logger
from ccn_core.metrics import CLAIMS
from ccn_core.topology import READY_BANDS
from ccn_proto.envelope import Actor
from ccn_proto.scheduler import ClaimJobs, ClaimJobsReply, JobOffer
from ccn_scheduler.holdings import Ledger, NodeHoldings
from ccn_scheduler.job_service import JobService
from ccn_scheduler.ready_queue import ReadyQueue, Taken, settle

log = get_logger("ccn.scheduler.claims")
_POLL_S = 0.05
_RETRY_DELAY_S = 1.0
# a withdrawal that arrives before its claim (or at a replica that never sees the claim) is
# remembered this long; claims wait at most 30 s
_WITHDRAWN_MEMORY_S = 60.0


class ClaimOutcome(msgspec.Struct, frozen=True):
    offer: JobOffer | None


# what a reply needs besides its offers' payloads: ids, times, the envelope of each offer
_OFFER_OVERHEAD = 512
_REPLY_HEADROOM = 16 * 1024


class ReplyBudget:
    """The payload bytes one reply may still carry. Offers carry their jobs' payloads, and NATS
    refuses a message over its max_payload: a reply that does not fit is never sent, and the
    jobs it claimed would wait out their leases. So a claim takes only the entries that fit,
    before it claims them, and leaves the rest in the queue for the next claim."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def fit(self, taken: list[Taken]) -> tuple[list[Taken], list[Taken]]:
        """The entries that fit (in order), and those that do not. The first entry of a reply
        always fits: creation bounds a payload below max_payload."""
        kept: list[Taken] = []
        for index, item in enumerate(taken):
            size = len(item.msg.data) + _OFFER_OVERHEAD
            if size > self.left and (kept or self.left < self.limit):
                return kept, taken[index:]
            self.left -= size
            kept.append(item)
        return kept, []


class Claimer:
    def __init__(
        self,
        jobs: JobService,
        ready: ReadyQueue,
        holdings: NodeHoldings,
        *,
        replica: str,
        max_reply_bytes: int = 1024 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._reply_bytes = max(_OFFER_OVERHEAD, max_reply_bytes - _REPLY_HEADROOM)
        self._ready = ready
        self._holdings = holdings
        self._replica = replica
        self._clock = clock
        # claim id → set when the caller withdraws it (its node left): it returns at once
        self._waiting: dict[str, asyncio.Event] = {}
        # claim ids withdrawn before their claim reached this replica → when (monotonic)
        self._withdrawn: dict[str, float] = {}

    @property
    def holdings(self) -> NodeHoldings:
        return self._holdings

    def withdraw(self, claim_id: str) -> None:
        """The caller gave up on this claim: if it waits here, it returns with nothing taken, so
        it cannot take jobs for a node that is gone (they would come back only as failures)."""
        waiting = self._waiting.get(claim_id)
        if waiting is not None:
            waiting.set()
            return
        now = time.monotonic()
        while self._withdrawn:
            oldest, at = next(iter(self._withdrawn.items()))
            if now - at < _WITHDRAWN_MEMORY_S:
                break
            del self._withdrawn[oldest]
        self._withdrawn[claim_id] = now

    def reply_budget(self, *, reserved: int = 0) -> ReplyBudget:
        """One per reply: a ClaimBatch's asks share theirs. `reserved`: bytes the reply carries
        besides offers."""
        return ReplyBudget(max(_OFFER_OVERHEAD, self._reply_bytes - reserved))

    async def claim(self, command: ClaimJobs, correlation_id: str, causation_id: str | None) -> ClaimJobsReply:
        claim_id = command.claim_id
        budget = self.reply_budget()
        if claim_id is None:
            return await self._claim(command, correlation_id, causation_id, asyncio.Event(), budget)
        withdrawn = self._waiting[claim_id] = asyncio.Event()
        if self._withdrawn.pop(claim_id, None) is not None:
            withdrawn.set()
        try:
            return await self._claim(command, correlation_id, causation_id, withdrawn, budget)
        finally:
            self._waiting.pop(claim_id, None)

    async def claim_now(
        self, command: ClaimJobs, correlation_id: str, causation_id: str | None, budget: ReplyBudget
    ) -> ClaimJobsReply:
        """What is ready now, without waiting: one ask of a ClaimBatch. The asks of a batch run
        together, so their takes share the queue's fetches and their appends are in flight at
        once; they share the reply's budget."""
        return await self._claim(command, correlation_id, causation_id, asyncio.Event(), budget, wait_s=0.0)

    async def _claim(
        self,
        command: ClaimJobs,
        correlation_id: str,
        causation_id: str | None,
        withdrawn: asyncio.Event,
        budget: ReplyBudget,
        *,
        wait_s: float | None = None,
    ) -> ClaimJobsReply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (command.wait_s if wait_s is None else wait_s)
        # a claim is a step of each job's life: its event carries the job's correlation id (the
        # ready entry has it); the claim request's own id stays on the log lines of this call
        meta = EventMeta(
            correlation_id=correlation_id, causation_id=causation_id, actor=Actor(kind="node", id=command.node_id)
        )
        job_types = list(dict.fromkeys(command.job_types))
        # read once: while the claim waits, the node can only have fewer jobs than this, and the
        # ledger's compare-and-set catches any write made meanwhile
        known = await self._holdings.current(command.node_id, self._clock())
        while True:
            held = len(known[0].jobs)
            free = min(command.slots, command.concurrency - held)
            if free <= 0 or withdrawn.is_set():
                return self._reply(command, [], held)
            taken, surplus = budget.fit(await self._take(job_types, free))
            for item in surplus:
                await settle(item.msg.nak())  # the reply is full: back to the queue for the next claim
            if surplus and not taken:
                return self._reply(command, [], held)
            if taken:
                offers, held = await self._claim_taken(command, taken, meta, known)
                if offers:
                    return self._reply(command, offers, held)
                # every entry was stale: there may be live ones behind them
                known = await self._holdings.current(command.node_id, self._clock())
                continue
            if loop.time() >= deadline:
                return self._reply(command, [], held)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(_POLL_S, max(0.0, deadline - loop.time()))):
                    await withdrawn.wait()

    async def _take(self, job_types: list[str], limit: int) -> list[Taken]:
        """Higher bands first; within a band, start at a random type so a node that runs several
        is not starved of the later ones."""
        start = random.randrange(len(job_types))  # noqa: S311 - fairness, not security
        rotated = job_types[start:] + job_types[:start]
        taken: list[Taken] = []
        for band in READY_BANDS:
            for job_type in rotated:
                taken.extend(await self._ready.take(job_type, band, limit - len(taken)))
                if len(taken) >= limit:
                    return taken
        return taken

    async def _claim_taken(
        self, command: ClaimJobs, taken: list[Taken], meta: EventMeta, known: tuple[Ledger, int]
    ) -> tuple[list[JobOffer], int]:
        by_id = {item.entry.job_id: item for item in taken}
        # one time for the reservations and their claims: the ledger then tells a claim that
        # landed and ended (the job's claimed_at is its reservation's time) from one in flight
        now = self._clock()
        try:
            reserved, held = await self._holdings.reserve(
                command.node_id, list(by_id), command.concurrency, now, known=known
            )
        except CcnError:
            for item in taken:
                await settle(item.msg.nak())  # undecided: back to the queue for anyone
            raise
        for job_id in by_id.keys() - set(reserved):
            await settle(by_id[job_id].msg.nak())  # no room after all: another claimer may use it now
        outcomes = await asyncio.gather(*(self._claim_one(command.node_id, by_id[j], meta, now) for j in reserved))
        offers = [outcome.offer for outcome in outcomes if outcome.offer is not None]
        missed = [job_id for job_id, outcome in zip(reserved, outcomes, strict=True) if outcome.offer is None]
        await self._holdings.release(command.node_id, missed)
        return offers, held - len(missed)

    async def _claim_one(self, node_id: str, item: Taken, meta: EventMeta, now: datetime) -> ClaimOutcome:
        job_id = item.entry.job_id
        meta = msgspec.structs.replace(meta, correlation_id=item.entry.correlation_id)
        try:
            executed = await self._jobs.execute(job_id, ClaimJob(node_id=node_id, now=now, replica=self._replica), meta)
        except (Conflict, NotFound):
            try:
                state = await self._jobs.state(job_id)
            except CcnError:
                await settle(item.msg.nak(delay=_RETRY_DELAY_S))
                return ClaimOutcome(None)
            if state.status == "retry_wait" and state.retry_at is not None and state.retry_at > now:
                await settle(item.msg.nak(delay=(state.retry_at - now).total_seconds()))
            else:
                await settle(item.msg.ack())  # claimed, finished or cancelled meanwhile: a stale entry
            return ClaimOutcome(None)
        except CcnError as exc:
            log.warning("claim undecided; entry back to the queue", job_id=job_id, error=exc.message)
            await settle(item.msg.nak(delay=_RETRY_DELAY_S))
            return ClaimOutcome(None)
        state = executed.state
        await settle(item.msg.ack())
        if state.status != "claimed" or state.holder != node_id or state.lease_until is None:
            return ClaimOutcome(None)
        if executed.events:
            log.info("job claimed", job_id=job_id, node_id=node_id, attempt=state.attempt)
        return ClaimOutcome(
            JobOffer(
                job_id=job_id,
                job_type=item.entry.job_type,
                payload=item.entry.payload,
                attempt=state.attempt,
                lease_until=state.lease_until,
                correlation_id=item.entry.correlation_id,
            )
        )

    def _reply(self, command: ClaimJobs, offers: list[JobOffer], held: int) -> ClaimJobsReply:
        if offers:
            CLAIMS.labels("offered").inc(len(offers))
        else:
            CLAIMS.labels("empty").inc()
        return ClaimJobsReply(node_id=command.node_id, offers=offers, held=held, server_time=self._clock())
