"""The claim owner's view of every node's governance: bans, drain, health, backoff, consent,
quota, budgets and reputation, folded from CCN_NODES with the node decider's own `evolve`.

Built when the owner takes over (a replay of the node stream up to its last sequence), then kept
up to date by an ordered push consumer from the next sequence: the owner's own fold of the event
store, not a read model, so a stalled projection never holds a claim up (ARCHITECTURE.md). Only
the governance events (GOVERNANCE_EVENT_TYPES) are folded; sessions and rate-limit windows are
skipped by their type header before they are decoded.

Bounded: each node's state is kept without what the scheduler never reads (its sessions, token
hash and recent windows, which the registry's decider needs to judge health, not to follow its
verdicts), and past `max_nodes` a new node is not tracked (it is then treated as one the view has
not seen yet: allowed, without budgets), with an error logged once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from ccn_core.domain.governance import RecentRecord, reputation
from ccn_core.domain.node import NodeDecider, NodeState
from ccn_core.eventstore import EVERY_EVENT, EventStore
from ccn_core.logging import get_logger
from ccn_core.topology import NODES
from ccn_proto.envelope import HEADER_TYPE, Envelope, event_tags
from ccn_proto.nodes import GOVERNANCE_EVENT_TYPES, NodeEvent

log = get_logger("ccn.scheduler.node_view")

GOVERNANCE_TYPES: Final[frozenset[str]] = event_tags(GOVERNANCE_EVENT_TYPES)
# an unstable node's share of the work is halved (ccn_proto.nodes.Health: "offered less")
UNSTABLE_WEIGHT: Final = 0.5
_EMPTY_RECENT = RecentRecord()
_decode = msgspec.json.Decoder(Envelope[NodeEvent]).decode

# (node id, the state before, the state after): told after every folded event
ChangeListener = Callable[[str, NodeState | None, NodeState], None]


def scheduling_weight(node: NodeState) -> float:
    """A node's share of the fair share, from 0 to 1: its reputation (0-100) maps to 0.5-1 and an
    unstable node gets half. Never above 1, so no node's cap exceeds twice the fair share."""
    score = reputation(node.record).score
    weight = min(1.0, 0.5 + score / 100.0)
    return weight * UNSTABLE_WEIGHT if node.health == "unstable" else weight


def needs_release(before: NodeState | None, after: NodeState) -> str | None:
    """Why the node's leases go back now, when this change made it banned or offline."""
    gone_before = before is not None and (before.refusal() is not None or before.health == "offline")
    if gone_before:
        return None
    if after.banned:
        return "node banned"
    if after.health == "banned":
        return "node banned by policy"
    if after.health == "offline":
        return "node offline"
    return None


class NodeView:
    def __init__(self, decider: NodeDecider, *, max_nodes: int, on_change: ChangeListener | None = None) -> None:
        self._decider = decider
        self._max_nodes = max_nodes
        self._nodes: dict[str, NodeState] = {}
        self._weights: dict[str, float] = {}
        self._on_change = on_change
        self._full_logged = False
        self.last_seq = 0
        self.skipped = 0  # events that did not decode
        self._subscription: Any = None

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, node_id: str) -> NodeState | None:
        return self._nodes.get(node_id)

    def weight(self, node_id: str) -> float:
        return self._weights.get(node_id, 1.0)

    def nodes(self) -> dict[str, NodeState]:
        return dict(self._nodes)

    def apply(self, node_id: str, event: NodeEvent) -> None:
        """Fold one governance event into the node's state."""
        before = self._nodes.get(node_id)
        if before is None and len(self._nodes) >= self._max_nodes:
            if not self._full_logged:
                log.error("node view is full: further nodes are not tracked", max_nodes=self._max_nodes)
                self._full_logged = True
            return
        state = self._decider.evolve(before or self._decider.initial_state(node_id), event)
        # what only the registry's decider reads: kept out so the view stays small
        state = msgspec.structs.replace(state, sessions={}, api_token_hash="", recent=_EMPTY_RECENT)
        self._nodes[node_id] = state
        self._weights[node_id] = scheduling_weight(state)
        if self._on_change is not None:
            self._on_change(node_id, before, state)

    def apply_stored(self, seq: int, subject: str, headers: Mapping[str, str] | None, data: bytes) -> None:
        if seq <= self.last_seq:
            return  # a redelivery after the ordered consumer reset itself
        self.last_seq = seq
        if (headers or {}).get(HEADER_TYPE) not in GOVERNANCE_TYPES:
            return
        try:
            envelope = _decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.skipped += 1
            log.error("node event skipped by the node view: it does not decode", seq=seq, error=str(exc))
            return
        self.apply(envelope.aggregate_id, envelope.data)

    async def replay(self, store: EventStore, js: Any) -> float:
        """Fold CCN_NODES as it stands now; returns the seconds it took."""
        started = time.perf_counter()
        up_to = (await js.stream_info(NODES.name)).state.last_seq
        async for batch in store.scan(NODES.name, EVERY_EVENT, 1, up_to_seq=up_to):
            for stored in batch:
                self.apply_stored(stored.seq, stored.subject, stored.headers, stored.data)
        self.last_seq = max(self.last_seq, up_to)
        return time.perf_counter() - started

    async def follow(self, js: Any) -> None:
        """Every node event after the replay, as it is appended (an ordered consumer: in stream
        order, recreated by the client from the last sequence it saw if it misses one)."""

        async def on_message(msg: Msg) -> None:
            metadata = msg.metadata
            self.apply_stored(metadata.sequence.stream, msg.subject, msg.headers, msg.data)

        self._subscription = await js.subscribe(
            "ccn.node.>",
            stream=NODES.name,
            cb=on_message,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last_seq + 1),
        )

    async def stop(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # the connection may be closing: the consumer is ephemeral anyway
                log.info("node view subscription not ended cleanly", error=str(exc))
