"""Handing ready jobs to a node: the claim owner picks them on its board, then appends
`job.claimed` to each job with OCC.

The board (one owner at a time, ADR 0016) says which jobs are ready and how many the node holds,
so a claim costs no read and one append per job. The aggregate still decides: an append that
meets a write the owner did not know of (a predecessor's last claims) fails its OCC check, the
job is read afresh, and the board learns its true state.

Node governance (ccn_scheduler.node_governance), when on, is asked first: a node it refuses gets
Forbidden, one it withholds work from an empty reply saying why, and one at its fair share's cap
waits as a node that found no work does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec

from ccn_core.aggregate import EventMeta
from ccn_core.domain.job import ClaimJob
from ccn_core.errors import CcnError, Conflict, NotFound, Unavailable
from ccn_core.logging import get_logger
from ccn_core.metrics import CLAIMS
from ccn_proto.envelope import Actor
from ccn_proto.scheduler import ClaimJobs, ClaimJobsReply, JobOffer
from ccn_scheduler.board import Card, ClaimBoard
from ccn_scheduler.eligibility import Eligibility
from ccn_scheduler.job_service import JobService
from ccn_scheduler.node_governance import NodeGovernance

log = get_logger("ccn.scheduler.claims")
# a withdrawal that arrives before its claim is remembered this long; claims wait at most 30 s
_WITHDRAWN_MEMORY_S = 60.0
# a waiting claim looks again at least this often (a retry time may have come meanwhile)
_RECHECK_S = 0.25

_UNDECIDED = object()  # a claim the event store did not record, nor refuse

# what a reply needs besides its offers' payloads: ids, times, the envelope of each offer
_OFFER_OVERHEAD = 512
_REPLY_HEADROOM = 16 * 1024


class ReplyBudget:
    """The payload bytes one reply may still carry. Offers carry their jobs' payloads, and NATS
    refuses a message over its max_payload: a reply that does not fit is never sent, and the
    jobs it claimed would wait out their leases. So a claim takes only the jobs that fit, before
    it claims them, and leaves the rest on the board for the next claim."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def fit(self, cards: list[Card]) -> tuple[list[Card], list[Card]]:
        """The cards that fit (in order), and those that do not. The first card of a reply
        always fits: creation bounds a payload below max_payload."""
        kept: list[Card] = []
        for index, card in enumerate(cards):
            size = len(card.payload) + _OFFER_OVERHEAD
            if size > self.left and (kept or self.left < self.limit):
                return kept, cards[index:]
            self.left -= size
            kept.append(card)
        return kept, []


class WorkSignal:
    """Wakes every waiting claim when a job may have become ready: once per turn of the event
    loop, however many jobs became ready in it (a batch of a thousand creations wakes a thousand
    waiting claims once, not a million times)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._due = False

    def notify(self) -> None:
        if not self._due:
            self._due = True
            asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        self._due = False
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float, *, or_until: tuple[asyncio.Event, ...]) -> None:  # noqa: ASYNC109 - a claim's deadline
        """Until a notify, one of `or_until` is set, or `timeout` passes."""
        waits = {asyncio.ensure_future(self._event.wait()), *(asyncio.ensure_future(e.wait()) for e in or_until)}
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()


class Claimer:
    def __init__(
        self,
        jobs: JobService,
        board: ClaimBoard,
        *,
        replica: str,
        max_reply_bytes: int = 1024 * 1024,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        governance: NodeGovernance | None = None,
    ) -> None:
        self._jobs = jobs
        self._governance = governance
        self._capped_waiting = 0  # claims waiting because the node is at its fair share's cap
        self._board = board
        self._reply_bytes = max(_OFFER_OVERHEAD, max_reply_bytes - _REPLY_HEADROOM)
        self._replica = replica
        self._clock = clock
        self.work = WorkSignal()
        # claim id → set when the caller withdraws it (its node left): it returns at once
        self._waiting: dict[str, asyncio.Event] = {}
        # claim ids withdrawn before their claim arrived → when (monotonic)
        self._withdrawn: dict[str, float] = {}
        # set when the owner steps down: claims take what is ready and wait for nothing more
        self._stepping_down = asyncio.Event()

    def stop_waiting(self) -> None:
        """The owner is stepping down: it lets go of the claims once the commands in hand are
        done, so a claim waiting for work (a node's waits up to 10 s) ends now with what it has.
        Its node asks again, and the next owner answers."""
        self._stepping_down.set()

    def withdraw(self, claim_id: str) -> None:
        """The caller gave up on this claim: if it waits here, it returns with nothing taken, so
        it cannot take jobs for a node that is gone."""
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
        """What is ready now, without waiting: one ask of a batch; the asks share the reply's budget."""
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
        # a claim is a step of each job's life: its event carries the job's correlation id; the
        # claim request's own id stays on the log lines of this call
        meta = EventMeta(
            correlation_id=correlation_id, causation_id=causation_id, actor=Actor(kind="node", id=command.node_id)
        )
        while True:
            if withdrawn.is_set():
                return self._reply(command, [])
            now = self._clock()
            job_types, slots = command.job_types, command.slots
            capped = False
            if self._governance is not None:
                admission = self._governance.admit(command, now)
                if not admission.eligibility.allowed:
                    return self._withheld(command, admission.eligibility)
                job_types, slots = list(admission.eligibility.job_types), min(slots, admission.allowance)
                capped = admission.allowance <= 0
            picked = self._board.pick(
                command.node_id, job_types, command.concurrency, slots, now, ip_hash=command.ip_hash
            )
            cards, surplus = budget.fit(picked)
            for card in surplus:
                self._board.unclaim(card.job_id)  # the reply is full: left for the next claim
            if cards:
                offers, undecided = await self._claim_picked(command.node_id, command.ip_hash, cards, meta, now)
                if offers:
                    if self._governance is not None:
                        self._governance.claimed(command.node_id, len(offers), now)
                        if self._capped_waiting:
                            self.work.notify()  # the fair share grew: capped claims look again
                    return self._reply(command, offers)
                if undecided:
                    # the event store did not answer: the jobs stay ready, the caller asks again
                    raise Unavailable("claims cannot be recorded now; try again", retry_after=1.0)
                continue  # every pick was stale (the board has their true state now): look again
            if (
                surplus
                or loop.time() >= deadline
                or self._stepping_down.is_set()
                or self._board.held(command.node_id) >= command.concurrency
            ):
                return self._reply(command, [])
            self._capped_waiting += capped
            try:
                timeout = min(_RECHECK_S, max(0.0, deadline - loop.time()))
                await self.work.wait(timeout, or_until=(withdrawn, self._stepping_down))
            finally:
                self._capped_waiting -= capped

    async def _claim_picked(
        self, node_id: str, ip_hash: str | None, cards: list[Card], meta: EventMeta, now: datetime
    ) -> tuple[list[JobOffer], bool]:
        """The offers of the claims that landed, and whether any could not be decided."""
        outcomes = await asyncio.gather(*(self._claim_one(node_id, ip_hash, card, meta, now) for card in cards))
        offers = [offer for offer in outcomes if isinstance(offer, JobOffer)]
        return offers, any(outcome is _UNDECIDED for outcome in outcomes)

    async def _claim_one(
        self, node_id: str, ip_hash: str | None, card: Card, meta: EventMeta, now: datetime
    ) -> JobOffer | object | None:
        job_id = card.job_id
        meta = msgspec.structs.replace(meta, correlation_id=card.correlation_id)
        claim = ClaimJob(node_id=node_id, now=now, replica=self._replica, ip_hash=ip_hash)
        try:
            executed = await self._jobs.execute(job_id, claim, meta)
        except (Conflict, NotFound):
            return None  # the board has its true state now (JobService tracks every decision)
        except CcnError as exc:
            log.warning("claim undecided; the job stays ready", job_id=job_id, error=exc.message)
            self._board.unclaim(job_id)
            return _UNDECIDED
        state = executed.state
        if state.status != "claimed" or state.holder != node_id or state.lease_until is None:
            return None
        if executed.events:
            log.info("job claimed", job_id=job_id, node_id=node_id, attempt=state.attempt)
        return JobOffer(
            job_id=job_id,
            job_type=card.job_type,
            # the creation's payload bytes, sent as they are: JobOffer declares a dict, and the
            # encoder writes a Raw in its place unchanged
            payload=card.payload,  # type: ignore[arg-type]
            attempt=state.attempt,
            lease_until=card.lease_end or state.lease_until,
            correlation_id=card.correlation_id,
            budget=self._governance.budget(node_id) if self._governance is not None else None,
        )

    def _withheld(self, command: ClaimJobs, eligibility: Eligibility) -> ClaimJobsReply:
        CLAIMS.labels("withheld").inc()
        return ClaimJobsReply(
            node_id=command.node_id,
            offers=[],
            held=self._board.held(command.node_id),
            server_time=self._clock(),
            withheld=eligibility.withheld,
            backoff_until=eligibility.until,
            draining=eligibility.draining,
        )

    def _reply(self, command: ClaimJobs, offers: list[JobOffer]) -> ClaimJobsReply:
        if offers:
            CLAIMS.labels("offered").inc(len(offers))
        else:
            CLAIMS.labels("empty").inc()
        return ClaimJobsReply(
            node_id=command.node_id, offers=offers, held=self._board.held(command.node_id), server_time=self._clock()
        )
