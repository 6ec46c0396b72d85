"""The scheduler's reactors: job events feed the ready queue; a node that leaves frees its jobs.

Both are idempotent by event id: the ready entry's id is derived from the event, and a release
derives its events' ids from the triggering event and the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from ccn_core import subjects
from ccn_core.aggregate import EventMeta
from ccn_core.consent import consent_catalogue
from ccn_core.decider import fold
from ccn_core.domain.job import ExpireLease, JobState
from ccn_core.domain.node import NodeDecider, NodeState
from ccn_core.errors import Disposition, disposition_for
from ccn_core.eventstore import HDR_MSG_ID, EventStore, StoredEvent
from ccn_core.logging import get_logger
from ccn_core.topology import NODES
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobAbandoned, JobCreated, JobFailed, JobReleased
from ccn_proto.nodes import NodeEvent, NodeOptedOut, SessionEnded
from ccn_scheduler.holdings import NodeHoldings
from ccn_scheduler.job_service import JobService
from ccn_scheduler.ready_entries import creation, ready_entry, ready_entry_id, stored_ready_entry
from ccn_scheduler.ready_queue import ReadyQueue

log = get_logger("ccn.scheduler.reactors")
_decode_node_event = msgspec.json.Decoder(Envelope[NodeEvent]).decode
_HELD_BY_NODE = "SELECT job_id::text FROM community_jobs WHERE status = 'claimed' AND claimed_by_node_id = $1"


class ReadyFeed:
    """job.created and job.released → a ready entry now; job.failed / job.abandoned with a retry
    time → a ready entry scheduled for that time (a JetStream message schedule: durable, no
    timer here).

    An event younger than the stream's duplicate window is put without a look: a second put of
    it (the create handler's, a redelivery) is dropped by its entry id. An older one — a
    reactor that was down for long, a consumer replaying history — is put only if the job still
    waits for exactly that, so a replay does not flood the queue with stale entries."""

    def __init__(
        self,
        store: EventStore,
        ready: ReadyQueue,
        jobs: JobService,
        *,
        dedupe_window_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._ready = ready
        self._jobs = jobs
        self._window = timedelta(seconds=dedupe_window_s)
        self._clock = clock

    def put_already(self, stored: StoredEvent) -> bool:
        """An event whose ready entry this process has put already (its create or release
        handler did, a moment before): nothing to do, told without decoding the event (and the
        payload a creation carries)."""
        event_id = stored.headers.get(HDR_MSG_ID)
        return event_id is not None and self._ready.put_already(ready_entry_id(event_id))

    async def handle(self, envelope: Envelope[Any], stored: StoredEvent) -> None:
        entry_id = ready_entry_id(envelope.event_id)
        job_id = envelope.aggregate_id
        match envelope.data:
            case JobCreated() as created:
                if await self._moot(envelope, lambda state: state.status == "queued"):
                    return
                await self._ready.put(ready_entry(job_id, created, envelope.correlation_id), entry_id=entry_id)
            case JobReleased():
                # the release handler put it already; this covers a crash between append and put
                if await self._moot(envelope, lambda state: state.status == "queued"):
                    return
                await self._ready.put(await stored_ready_entry(self._store, job_id), entry_id=entry_id)
            case JobFailed(retry_at=retry_at, attempt=attempt) | JobAbandoned(retry_at=retry_at, attempt=attempt) if (
                retry_at is not None
            ):
                if await self._moot(envelope, lambda state: (state.status, state.attempt) == ("retry_wait", attempt)):
                    return
                # the job's own thread, whoever caused this attempt to end
                await self._ready.put(await stored_ready_entry(self._store, job_id), entry_id=entry_id, at=retry_at)

    async def _moot(self, envelope: Envelope[Any], still_waiting: Callable[[JobState], bool]) -> bool:
        if self._clock() - envelope.occurred_at < self._window:
            return False
        return not still_waiting(await self._jobs.state(envelope.aggregate_id))


class NodeRelease:
    """node.opted_out, or node.session_ended of the node's last active session → every job the
    node holds is released at once (the abandonment carries no backoff: the node left, the job
    did not fail). Jobs belong to a node, not to one of its sessions: while another session is
    active (a reconnect, a second edge) the node is still working on them.

    Each abandonment carries its job's correlation id, with the node event as its causation:
    the job's thread stays whole, and the node event leads to every job it released."""

    def __init__(
        self,
        jobs: JobService,
        holdings: NodeHoldings,
        pool: asyncpg.Pool,
        store: EventStore,
        *,
        replica: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._holdings = holdings
        self._pool = pool
        self._store = store
        self._replica = replica
        self._clock = clock
        self._nodes = NodeDecider(consent_catalogue())

    async def handle(self, envelope: Envelope[Any], stored: StoredEvent) -> None:
        match envelope.data:
            case NodeOptedOut():
                reason = "node opted out"
            case SessionEnded():
                node = await self._node_now(envelope.aggregate_id)
                if node.sessions:
                    return  # another session is active (a reconnect, a second edge): it works on
                if node.status == "opted_out":
                    return  # it has opted out since: that event, later in the stream, releases them
                reason = "node session ended"
            case _:
                return
        node_id = envelope.aggregate_id
        # the ledger lists every claim made through it (read fresh: this replica's remembered
        # entry may miss another replica's claims); the read model is a second witness
        ledger, _ = await self._holdings.read(node_id, fresh=True)
        held = {row["job_id"] for row in await self._pool.fetch(_HELD_BY_NODE, node_id)}
        job_ids = sorted(ledger.jobs.keys() | held)
        outcomes = await asyncio.gather(
            *(self._release(envelope, node_id, job_id, reason) for job_id in job_ids), return_exceptions=True
        )
        # a release that could not be decided is retried with the whole event: the others,
        # done already, then decide nothing (their event ids are derived from this event's)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and disposition_for(outcome) is Disposition.RETRY:
                raise outcome
        if job_ids:
            log.info("released the jobs of a departed node", node_id=node_id, jobs=len(job_ids), reason=reason)

    async def _node_now(self, node_id: str) -> NodeState:
        """The node as its history stands now, not as it stood at the event: a session started
        since means the node is back, an opt-out since releases the jobs under its own name."""
        stored = await self._store.read(NODES.name, subjects.aggregate_filter("node", node_id))
        return fold(self._nodes, node_id, [_decode_node_event(s.data).data for s in stored])

    async def _release(self, envelope: Envelope[Any], node_id: str, job_id: str, reason: str) -> None:
        # a step of the job's life, on the job's own thread (so its correlation id pulls its whole
        # life); the node event that caused it is the causation
        created = await creation(self._store, job_id)
        meta = EventMeta(
            correlation_id=created.correlation_id,
            causation_id=envelope.event_id,
            actor=Actor(kind="service", id=self._replica),
            idempotency_key=f"release:{envelope.event_id}:{job_id}",
        )
        command = ExpireLease(now=self._clock(), jitter=0.0, reason=reason, node_id=node_id)
        await self._jobs.execute(job_id, command, meta)
