"""The claim owner: the one scheduler replica at a time that decides about jobs (ADR 0016).

Every replica runs for ownership of the `scheduler` key in the owners bucket; the one that gets
it replays CCN_JOBS into its claim board (every live job's state, its payload and its place in
line), then subscribes to the scheduler's commands, sweeps leases and departed nodes, and
releases the jobs of nodes that opt out or end their session. When it stops owning, it stops all
of that first; a standby then does the same from the stream. Nothing it knows is lost with it:
the board is a fold of the job aggregates, except lease renewals and departures' grace, and a
new owner starts every lease afresh instead.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from ccn_core import subjects
from ccn_core.aggregate import AggregateRepository, EventMeta, Loaded
from ccn_core.commands import CommandServer
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.domain.job import FINISHED, ExpireLease, JobDecider, JobState
from ccn_core.domain.node import NodeDecider, NodeState
from ccn_core.errors import CcnError
from ccn_core.eventstore import EVERY_EVENT, EventStore
from ccn_core.logging import correlation, get_logger
from ccn_core.metrics import SCHEDULER_LIVE_JOBS, SCHEDULER_READY_JOBS
from ccn_core.reactor import Reactor
from ccn_core.retry_policy import RetryPolicy
from ccn_core.service import Runtime
from ccn_core.stopping import cancel_until_done
from ccn_core.topology import JOBS, NODE_RELEASE
from ccn_jobs.registry import CONSENT_SCOPE_OF
from ccn_proto.envelope import HEADER_TYPE, Actor, Envelope
from ccn_proto.jobs import JobClaimed, JobCreated, JobCreatedBytes, JobEvent
from ccn_proto.nodes import NodeEvent
from ccn_scheduler.board import Card, ClaimBoard, ForeignWrites
from ccn_scheduler.claims import Claimer
from ccn_scheduler.handlers import SchedulerHandlers
from ccn_scheduler.job_service import JobRepository, JobService
from ccn_scheduler.node_governance import NodeGovernance
from ccn_scheduler.node_view import NodeView, needs_release
from ccn_scheduler.payloads import PayloadTypes
from ccn_scheduler.reactors import NodeRelease

log = get_logger("ccn.scheduler.owner")
# a waiting claim holds a command slot for its wait: many wait at once
_MAX_COMMANDS_IN_HAND = 2048
# past those, a few may wait for a turn (a burst of a thousand nodes asking at once); then refused
_MAX_COMMANDS_WAITING = 2048
_READY_COUNT_EVERY_S = 5.0


_decode_creation = msgspec.json.Decoder(Envelope[JobCreatedBytes]).decode
_decode_event = msgspec.json.Decoder(Envelope[JobEvent]).decode


class ReplayStats(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    skipped: int  # events that did not decode
    live_jobs: int
    up_to_seq: int
    seconds: float


async def replay_jobs(
    store: EventStore,
    js: Any,
    decider: JobDecider,
    repository: JobRepository,
    board: ClaimBoard,
    on_claim: Callable[[str, datetime], None] | None = None,
) -> ReplayStats:
    """Fold CCN_JOBS, as it stands now, into the board and the repository's cache. Finished jobs
    are dropped as they finish: memory follows the live jobs, not the stream. `on_claim`: told
    each claim's node and time (the daily quotas count them)."""
    started = time.perf_counter()
    up_to = (await js.stream_info(JOBS.name)).state.last_seq
    states: dict[str, tuple[JobState, int]] = {}
    creations: dict[str, tuple[int, str, msgspec.Raw, int]] = {}
    orders: dict[str, int] = {}
    events = skipped = 0
    async for batch in store.scan(JOBS.name, EVERY_EVENT, 1, up_to_seq=up_to):
        for stored in batch:
            events += 1
            job_id = stored.subject.split(".", 3)[2]
            event: JobEvent
            try:
                if stored.headers.get(HEADER_TYPE) == "job.created":
                    creation = _decode_creation(stored.data)
                    fields = msgspec.structs.asdict(creation.data)
                    fields["payload"] = {}  # the state does not keep it; the board keeps the bytes
                    event = JobCreated(**fields)
                    creations[job_id] = (
                        stored.seq,
                        creation.correlation_id,
                        creation.data.payload,
                        creation.data.priority,
                    )
                else:
                    envelope = _decode_event(stored.data)
                    event = envelope.data
                    if on_claim is not None and isinstance(event, JobClaimed):
                        on_claim(event.node_id, envelope.occurred_at)
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
                # a poison event (the projections dead-letter it): the job it would change is
                # left as the rest of its history has it; one bad event must not stop claims
                skipped += 1
                log.error("job event skipped in the replay: it does not decode", seq=stored.seq, error=str(exc))
                continue
            previous = states.get(job_id)
            state = decider.evolve(previous[0] if previous else decider.initial_state(job_id), event)
            if state.status in FINISHED:
                states.pop(job_id, None)
                creations.pop(job_id, None)
                orders.pop(job_id, None)
                continue
            states[job_id] = (state, stored.seq)
            put_back = state.status in ("queued", "retry_wait")
            if previous is not None and previous[0].status in ("claimed", "validating") and put_back:
                orders[job_id] = stored.seq  # put back: it waits its turn from here (ClaimBoard.track)
    for job_id, (state, version) in states.items():
        created = creations.get(job_id)
        if created is None:
            continue  # its creation is gone from the stream (a limit), or did not decode: nothing to offer
        order, correlation_id, payload, priority = created
        repository.remember(job_id, Loaded(state=state, version=version))
        board.add(
            job_id,
            state,
            priority=priority,
            order=orders.get(job_id, order),
            correlation_id=correlation_id,
            payload=payload,
        )
    return ReplayStats(
        events=events,
        skipped=skipped,
        live_jobs=len(board),
        up_to_seq=up_to,
        seconds=time.perf_counter() - started,
    )


class SchedulerOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Tunables with production defaults; tests shorten them."""

    retry_policy: RetryPolicy = RetryPolicy()
    lease_scan_interval_s: float = 1.0
    archive_interval_s: float = 60.0  # how often the archiver leader moves finished jobs out
    # how often the owner looks for job events it did not write (ForeignWrites): a job created
    # or changed behind its back is on its board within two of these
    reconcile_interval_s: float = 5.0
    projection_idle_wait_s: float = 0.5
    # node governance on the claim path (eligibility, fair shares, quotas, shadow-bans, budgets,
    # releases of banned and offline nodes); off only to measure what it costs (make bench)
    governance: bool = True
    max_tracked_nodes: int = 1_000_000  # the node view's bound


class ClaimOwner:
    """What this replica runs while it owns the scheduler's claims."""

    def __init__(
        self,
        runtime: Runtime,
        payload_types: PayloadTypes,
        options: SchedulerOptions,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
        consent_scopes: Mapping[str, str] = CONSENT_SCOPE_OF,
    ) -> None:
        self._runtime = runtime
        self._types = payload_types
        self._consent_scopes = consent_scopes
        self._node_view: NodeView | None = None
        self.governance: NodeGovernance | None = None
        self._options = options
        self._clock = clock
        self._jitter = jitter
        self._server: CommandServer | None = None
        self._claimer: Claimer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reactor: Reactor | None = None
        self.handlers: SchedulerHandlers | None = None
        self.board: ClaimBoard | None = None
        self.last_replay: ReplayStats | None = None

    async def take_over(self) -> None:
        runtime, settings = self._runtime, self._runtime.settings
        decider = JobDecider(self._options.retry_policy)
        board = ClaimBoard(max_live=settings.scheduler_max_live_jobs)
        repository: JobRepository = AggregateRepository(
            runtime.store,
            decider,
            JobEvent,
            stream=JOBS.name,
            # every live job, and room for the finished ones commands still touch
            cache_size=settings.scheduler_max_live_jobs + 100_000,
            deadline_s=settings.command_timeout_s,
        )
        foreign = ForeignWrites(read_up_to=0)
        jobs = JobService(repository, on_state=board.track, on_append=foreign.own)
        releaser = NodeLeaseRelease(board, replica=runtime.replica, clock=self._clock)
        governance = None
        if self._options.governance:
            view = NodeView(
                NodeDecider(consent_catalogue()), max_nodes=self._options.max_tracked_nodes, on_change=releaser.changed
            )
            nodes_s = await view.replay(runtime.store, runtime.js)
            log.info("node view ready", nodes=len(view), up_to_seq=view.last_seq, replay_s=round(nodes_s, 3))
            governance = NodeGovernance(view, consent_version=current_consent_version(), scope_of=self._consent_scopes)
            self._node_view, self.governance = view, governance
        on_claim = governance.daily.add if governance is not None else None
        self.last_replay = stats = await replay_jobs(runtime.store, runtime.js, decider, repository, board, on_claim)
        foreign.watermark = stats.up_to_seq
        # the renewals a predecessor saw died with it: every holder gets a full lease from now
        board.extend_all(self._clock())
        log.info(
            "claim owner ready",
            events=stats.events,
            skipped=stats.skipped,
            live_jobs=stats.live_jobs,
            up_to_seq=stats.up_to_seq,
            replay_s=round(stats.seconds, 3),
        )
        claimer = Claimer(
            jobs, board, replica=runtime.replica, max_reply_bytes=runtime.nc.max_payload, governance=governance
        )
        handlers = SchedulerHandlers(
            jobs,
            board,
            claimer,
            self._types,
            settings.token_secret,
            replica=runtime.replica,
            release_grace_s=settings.node_release_grace_s,
            max_payload_bytes=settings.scheduler_max_payload_bytes,
            clock=self._clock,
            jitter=self._jitter,
            governance=governance,
        )
        self.board, self.handlers, self._claimer = board, handlers, claimer
        if governance is not None and self._node_view is not None:
            releaser.start(handlers)
            # a ban or an outage the predecessor saw but did not act on: those leases go back now
            for node_id, node in self._node_view.nodes().items():
                reason = needs_release(None, node)
                if reason is not None and board.held(node_id):
                    releaser.changed(node_id, None, node)
            self._tasks.append(asyncio.create_task(releaser.run(), name="scheduler_node_lease_release"))
            await self._node_view.follow(runtime.js)
        sweeper = LeaseSweeper(
            handlers, board, claimer, replica=runtime.replica, clock=self._clock, jitter=self._jitter
        )
        self._tasks.append(
            asyncio.create_task(sweeper.run(self._options.lease_scan_interval_s), name="scheduler_lease_sweeper")
        )
        reconciler = Reconciler(runtime.store, runtime.js, jobs, board, claimer, foreign)
        self._tasks.append(
            asyncio.create_task(reconciler.run(self._options.reconcile_interval_s), name="scheduler_reconciler")
        )
        release = NodeRelease(handlers, board, runtime.store, replica=runtime.replica, clock=self._clock)
        self._reactor = Reactor(runtime.nc, runtime.js, NODE_RELEASE, NodeEvent, release.handle)
        self._tasks.append(asyncio.create_task(self._reactor.run(), name=NODE_RELEASE.durable))
        server = CommandServer(
            runtime.nc, "scheduler", max_concurrency=_MAX_COMMANDS_IN_HAND, max_waiting=_MAX_COMMANDS_WAITING
        )
        handlers.register_all(server)
        await server.start()
        self._server = server
        await runtime.nc.flush()  # the subscription is on the server before we say we own

    async def step_down(self, lost: bool = False) -> None:
        """Stop deciding: no command, sweep or release is taken from here on. `lost`: another
        replica may own the claims soon, so commands in hand are cancelled, not finished."""
        server, self._server = self._server, None
        if self._claimer is not None:
            self._claimer.stop_waiting()  # a waiting claim would hold the key for its whole wait
            self._claimer = None
        if server is not None:  # first: no command is taken from here on
            await server.stop(grace_s=0.0 if lost else self._runtime.settings.shutdown_grace_s)
        if self._reactor is not None:
            self._reactor.stop()
            self._reactor = None
        view, self._node_view, self.governance = self._node_view, None, None
        if view is not None:
            await view.stop()
        await cancel_until_done(self._tasks)
        self._tasks.clear()
        self.handlers, self.board = None, None
        SCHEDULER_LIVE_JOBS.set(0)
        SCHEDULER_READY_JOBS.set(0)


class NodeLeaseRelease:
    """A node that became banned (by an admin or by policy) or offline gives its leases back at
    once: the node view tells it each change, and it releases every job the board shows the node
    holding, as an abandonment without a backoff (the node went, the job did not fail)."""

    def __init__(self, board: ClaimBoard, *, replica: str, clock: Callable[[], datetime]) -> None:
        self._board = board
        self._replica = replica
        self._clock = clock
        self._handlers: SchedulerHandlers | None = None
        self._due: dict[str, str] = {}  # node → why: at most one entry per node
        self._wake = asyncio.Event()
        self.released = 0

    def start(self, handlers: SchedulerHandlers) -> None:
        self._handlers = handlers

    def changed(self, node_id: str, before: NodeState | None, after: NodeState) -> None:
        reason = needs_release(before, after)
        if reason is not None:
            self._due[node_id] = reason
            self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            due, self._due = self._due, {}
            for node_id, reason in due.items():
                try:
                    self.released += await self.release(node_id, reason)
                except Exception:
                    log.exception("releasing a node's leases failed; retried shortly", node_id=node_id)
                    self._due.setdefault(node_id, reason)
                    await asyncio.sleep(1.0)
                    self._wake.set()

    async def release(self, node_id: str, reason: str) -> int:
        handlers = self._handlers
        if handlers is None:
            return 0
        held = self._board.held_jobs(node_id)
        now = self._clock()

        async def one(card: Card) -> bool:
            meta = EventMeta(correlation_id=card.correlation_id, actor=Actor(kind="service", id=self._replica))
            command = ExpireLease(now=now, jitter=0.0, reason=reason, node_id=node_id)
            with correlation(card.correlation_id, job_id=card.job_id):
                return await handlers.expire(card.job_id, command, meta)

        outcomes = await asyncio.gather(*(one(card) for card in held), return_exceptions=True)
        failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        count = sum(1 for outcome in outcomes if outcome is True)
        if held:
            log.info("released the jobs of a node that may not work now", node_id=node_id, jobs=count, reason=reason)
        if failed:
            raise failed[0]
        return count


class LeaseSweeper:
    """Leases that ran out and departed nodes whose grace has passed become abandonments; jobs
    whose retry time has come wake the claims waiting for work. All from the board: a stalled
    read model does not stop a lease from expiring."""

    def __init__(
        self,
        handlers: SchedulerHandlers,
        board: ClaimBoard,
        claimer: Claimer,
        *,
        replica: str,
        clock: Callable[[], datetime],
        jitter: Callable[[], float],
    ) -> None:
        self._handlers = handlers
        self._board = board
        self._claimer = claimer
        self._replica = replica
        self._clock = clock
        self._jitter = jitter
        self._counted_at = 0.0
        self.expired = 0

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("lease sweep failed; next sweep retries")
            await asyncio.sleep(interval_s)

    async def sweep(self) -> int:
        now = self._clock()
        due = self._board.expired(now)
        departures = self._board.due_departures(now)
        expiries = [self._expire(card, now, "lease expired", None) for card in due]
        for node_id, job_ids in departures:
            for job_id in job_ids:
                card = self._board.get(job_id)
                if card is not None:
                    expiries.append(self._expire(card, now, "node disconnected", node_id))
            log.info("released the jobs of a node that did not come back", node_id=node_id, jobs=len(job_ids))
        outcomes = await asyncio.gather(*expiries)
        SCHEDULER_LIVE_JOBS.set(len(self._board))
        if time.monotonic() - self._counted_at >= _READY_COUNT_EVERY_S:  # a pass over every live job
            SCHEDULER_READY_JOBS.set(self._board.ready_count(now))
            self._counted_at = time.monotonic()
        next_retry = self._board.next_retry()
        if next_retry is not None and next_retry <= now:
            self._claimer.work.notify()
        count = sum(outcomes)
        self.expired += count
        return count

    async def _expire(self, card: Card, now: datetime, reason: str, node_id: str | None) -> int:
        # the job's own correlation id: its whole life, abandonment included, is one thread
        meta = EventMeta(correlation_id=card.correlation_id, actor=Actor(kind="service", id=self._replica))
        command = ExpireLease(
            now=now,
            jitter=self._jitter() if node_id is None else 0.0,
            reason=reason,
            node_id=node_id,
            lease_until=card.lease_end if node_id is None else None,
        )
        with correlation(card.correlation_id, job_id=card.job_id):
            try:
                appended = await self._handlers.expire(card.job_id, command, meta)
            except CcnError as exc:
                log.warning("lease expiry not decided; next sweep retries", error=exc.message)
                if node_id is None:
                    self._board.expire_later(card.job_id)
                else:
                    self._board.departed(node_id, [card.job_id], now)
                return 0
            if appended:
                log.info("job abandoned", reason=reason)
            return int(appended)


class Reconciler:
    """Brings onto the board the job events this owner did not write (see ForeignWrites)."""

    def __init__(
        self,
        store: EventStore,
        js: Any,
        jobs: JobService,
        board: ClaimBoard,
        claimer: Claimer,
        foreign: ForeignWrites,
    ) -> None:
        self._store = store
        self._js = js
        self._jobs = jobs
        self._board = board
        self._claimer = claimer
        self._foreign = foreign
        self.adopted = 0

    async def run(self, interval_s: float) -> None:
        seen_last = self._foreign.watermark
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reconcile(seen_last)
                seen_last = (await self._js.stream_info(JOBS.name)).state.last_seq
            except Exception:
                log.exception("reconcile failed; the next one retries")

    async def reconcile(self, up_to: int) -> int:
        """Read what others wrote up to `up_to`; returns how many jobs it brought up to date."""
        job_ids: dict[str, None] = {}
        for seq in self._foreign.foreign(up_to):
            stored = await self._store.get_seq(JOBS.name, seq)
            if stored is not None and stored.subject.startswith("ccn.job."):
                job_ids[stored.subject.split(".", 3)[2]] = None
        for job_id in job_ids:
            try:
                await self.adopt(job_id)
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
                log.error(
                    "job events written by another process do not decode; left alone", job_id=job_id, error=str(exc)
                )
        if job_ids:
            log.warning("job events written by another process brought onto the board", jobs=len(job_ids))
            self._claimer.work.notify()
        self.adopted += len(job_ids)
        return len(job_ids)

    async def adopt(self, job_id: str) -> None:
        loaded = await self._jobs.repository.load(job_id, fresh=True)
        if self._board.get(job_id) is not None or loaded.state.status in FINISHED:
            self._board.track(job_id, loaded.state, loaded.version)
            return
        created = await self._store.read(JOBS.name, subjects.event("job", job_id, "created"))
        if not created:
            return
        creation = _decode_creation(created[0].data)
        self._board.add(
            job_id,
            loaded.state,
            priority=creation.data.priority,
            order=created[0].seq,
            correlation_id=creation.correlation_id,
            payload=creation.data.payload,
        )
