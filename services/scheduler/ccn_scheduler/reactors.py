"""The scheduler's reactor: a node that leaves frees its jobs.

Idempotent by event id: a release derives its events' ids from the triggering event and the job.
It runs in the claim owner only (ADR 0016), which knows from its board what the node holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from ccn_core import subjects
from ccn_core.aggregate import EventMeta
from ccn_core.consent import consent_catalogue
from ccn_core.decider import fold
from ccn_core.domain.job import ExpireLease
from ccn_core.domain.node import NodeDecider, NodeState
from ccn_core.errors import Disposition, disposition_for
from ccn_core.eventstore import EventStore, StoredEvent
from ccn_core.logging import get_logger
from ccn_core.topology import NODES
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.nodes import NodeEvent, NodeOptedOut, SessionEnded
from ccn_scheduler.board import ClaimBoard
from ccn_scheduler.handlers import SchedulerHandlers

log = get_logger("ccn.scheduler.reactors")
_decode_node_event = msgspec.json.Decoder(Envelope[NodeEvent]).decode


class NodeRelease:
    """node.opted_out, or node.session_ended of the node's last active session → every job the
    node holds is released at once (the abandonment carries no backoff: the node left, the job
    did not fail). Jobs belong to a node, not to one of its sessions: while another session is
    active (a reconnect, a second edge) the node is still working on them.

    Each abandonment carries its job's correlation id, with the node event as its causation:
    the job's thread stays whole, and the node event leads to every job it released."""

    def __init__(
        self,
        handlers: SchedulerHandlers,
        board: ClaimBoard,
        store: EventStore,
        *,
        replica: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._handlers = handlers
        self._board = board
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
        held = self._board.held_jobs(node_id)
        job_ids = [card.job_id for card in held]
        outcomes = await asyncio.gather(
            *(self._release(envelope, node_id, card.job_id, card.correlation_id, reason) for card in held),
            return_exceptions=True,
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

    async def _release(
        self, envelope: Envelope[Any], node_id: str, job_id: str, job_correlation_id: str, reason: str
    ) -> None:
        # a step of the job's life, on the job's own thread (so its correlation id pulls its whole
        # life); the node event that caused it is the causation
        meta = EventMeta(
            correlation_id=job_correlation_id,
            causation_id=envelope.event_id,
            actor=Actor(kind="service", id=self._replica),
            idempotency_key=f"release:{envelope.event_id}:{job_id}",
        )
        command = ExpireLease(now=self._clock(), jitter=0.0, reason=reason, node_id=node_id)
        await self._handlers.expire(job_id, command, meta)
