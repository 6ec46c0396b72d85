"""The edge's caps on WebSocket connections, and the typed refusal for each (docs/protocol.md).

- Sockets that have not said hello, per ip_hash and in all: they cost the edge a task and
  buffers before anything is known of them. Past the cap a new socket is accepted only to hear
  an Error frame and close 1013 (try again later): `rate_limited` when its address holds too
  many, `unavailable` when the edge does. A socket counts until its hello is judged.
- Connections per node: a hello for a node that already holds the cap is refused with
  `conflict` and close 1008; the connections it has keep working. The newest is refused rather
  than the oldest closed: a node never needs more than one live connection (`ccn node` closes
  its socket before it reconnects), so the cap binds on a duplicate (two processes on one
  credentials file, or someone else holding the token), where closing the oldest would make the
  two take turns closing each other, or on dead sockets the edge has not yet noticed. A node
  whose link dropped is let back in while the edge still holds its dead socket (the cap is
  above 1), and the edge closes a dead socket within its idle timeout, so a reconnect is at
  worst delayed, never locked out: `retry_after` says when to try again, and `ccn node`
  (which takes `conflict` before welcome as "retry later") waits that long.

Every cap is per edge replica. Refusals are logged through a RefusalLog: the first of each kind
in full, then a count per window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ccn_core.errors import CcnError, Conflict, RateLimited, Unavailable
from ccn_core.settings import Settings
from ccn_edge.connection_gate import ConnectionGate, Refusal
from ccn_edge.in_flight import InFlight
from ccn_web.refusals import RefusalLog

# a silent socket leaves within the hello timeout (10 s) and a good one within a round trip:
# half of it is long enough for a flood to have moved on, short enough for a node sharing the address
UNGREETED_RETRY_AFTER_S = 5.0
# a node's dead socket is closed within the edge's idle timeout (40 s) of its last frame; a node
# asking again every heartbeat interval is back soon after, without hammering the registry
NODE_CAP_RETRY_AFTER_S = 10.0

UNGREETED_PER_IP = "ws_ungreeted_per_ip"
UNGREETED_TOTAL = "ws_ungreeted_total"
NODE_CONNECTIONS = "ws_node_connections"


@dataclass
class SocketLimits:
    ungreeted: ConnectionGate  # keyed by ip_hash
    per_node: ConnectionGate  # keyed by node public id
    refusals: RefusalLog = field(default_factory=RefusalLog)
    # node frames that call a service, across this edge's connections (ccn_edge.in_flight)
    frames: InFlight = field(default_factory=lambda: InFlight(Settings().edge_max_frames_in_flight, "node frames"))

    @classmethod
    def from_settings(cls, settings: Settings) -> SocketLimits:
        return cls(
            ungreeted=ConnectionGate(per_key=settings.ws_max_ungreeted_per_ip, total=settings.ws_max_ungreeted),
            per_node=ConnectionGate(per_key=settings.ws_max_connections_per_node),
            frames=InFlight(settings.edge_max_frames_in_flight, "node frames"),
        )


def ungreeted_refusal(refusal: Refusal) -> tuple[str, CcnError]:
    """The refusal's log kind and the error the socket hears."""
    if refusal.cap == "per_key":
        return UNGREETED_PER_IP, RateLimited(
            f"{refusal.limit} connections from this address have not said hello yet; try again shortly",
            retry_after=UNGREETED_RETRY_AFTER_S,
        )
    return UNGREETED_TOTAL, Unavailable(
        f"this edge holds {refusal.limit} connections that have not said hello yet; try again shortly",
        retry_after=UNGREETED_RETRY_AFTER_S,
    )


def node_connections_refusal(refusal: Refusal) -> tuple[str, CcnError]:
    return NODE_CONNECTIONS, Conflict(
        f"this node already has {refusal.limit} connections to this edge; close one or try again shortly",
        retry_after=NODE_CAP_RETRY_AFTER_S,
    )
