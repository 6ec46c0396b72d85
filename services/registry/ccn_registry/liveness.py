"""Which nodes have gone quiet: the pure core of the governance observer's liveness watch.

Per node, the time it was last heard from (its last telemetry sample, or a later result it
submitted) and the band of silence last reported to the
registry (observe_liveness): fresh, unstable (>= UNSTABLE_SILENCE_S) or offline
(>= OFFLINE_SILENCE_S), the thresholds of the health policy. An observation is due when a
node's band differs from the one last reported: when its silence crosses a threshold, and when
it speaks again. A node newly seen (a new node, one seen again after its offline verdict, every
node when an observer takes over) is observed once, so its health catches up with its samples
whatever an earlier observer last reported.

Memory is bounded: a node is forgotten once its offline verdict is reported (its next sample
brings it back), and at most MAX_NODES are watched (past that the longest silent is forgotten
to make room).

Times are the registry's clocks: a sample's seen_at (the replica that took it) against this
replica's now. Their skew, a few milliseconds under NTP, is noise against 25 s thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from ccn_core.domain.governance import OFFLINE_SILENCE_S, UNSTABLE_SILENCE_S
from ccn_proto.nodes import NodeMetrics

Band = Literal["fresh", "unstable", "offline"]
MAX_NODES: Final = 1_000_000


def band_of(silent_s: float) -> Band:
    if silent_s >= OFFLINE_SILENCE_S:
        return "offline"
    if silent_s >= UNSTABLE_SILENCE_S:
        return "unstable"
    return "fresh"


@dataclass(frozen=True)
class Observation:
    node_id: str
    silent_s: float
    band: Band
    metrics: NodeMetrics | None
    last_seen: datetime


@dataclass
class _Watched:
    last_seen: datetime
    metrics: NodeMetrics | None
    reported: Band | None  # None: nothing reported since this observer first saw it


class LivenessBook:
    def __init__(self, max_nodes: int = MAX_NODES) -> None:
        self._nodes: dict[str, _Watched] = {}
        self._max_nodes = max_nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def seen(self, node_id: str, seen_at: datetime, metrics: NodeMetrics | None) -> None:
        watched = self._nodes.get(node_id)
        if watched is None:
            self._nodes[node_id] = _Watched(last_seen=seen_at, metrics=metrics, reported=None)
            self._evict_if_full()
        elif seen_at >= watched.last_seen:
            watched.last_seen = seen_at
            watched.metrics = metrics

    def heard_from(self, node_id: str, at: datetime) -> None:
        """A sign of life other than telemetry: the node submitted a result at `at`. A node at
        work is not silent, whatever its heartbeats do (the node decider says the same of a
        window of completed work); without this, a node that works but sends no heartbeat
        would swing between unstable and healthy at every window. Only a node already watched
        is moved: the book watches the nodes that have spoken telemetry, and its metrics stay."""
        watched = self._nodes.get(node_id)
        if watched is not None and at > watched.last_seen:
            watched.last_seen = at

    def due(self, now: datetime) -> list[Observation]:
        """The observations to send now: each node whose band is not the one last reported."""
        due: list[Observation] = []
        for node_id, watched in self._nodes.items():
            silent_s = max(0.0, (now - watched.last_seen).total_seconds())
            band = band_of(silent_s)
            if band != watched.reported:
                due.append(
                    Observation(
                        node_id=node_id,
                        silent_s=silent_s,
                        band=band,
                        metrics=watched.metrics,
                        last_seen=watched.last_seen,
                    )
                )
        return due

    def reported(self, observation: Observation) -> None:
        """The registry took the observation: remember its band, and forget a node gone offline
        (unless it spoke again meanwhile)."""
        watched = self._nodes.get(observation.node_id)
        if watched is None:
            return
        watched.reported = observation.band
        if observation.band == "offline" and watched.last_seen <= observation.last_seen:
            del self._nodes[observation.node_id]

    def _evict_if_full(self) -> None:
        if len(self._nodes) <= self._max_nodes:
            return
        quietest = min(self._nodes, key=lambda node_id: self._nodes[node_id].last_seen)
        del self._nodes[quietest]
