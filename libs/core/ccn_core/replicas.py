"""Which node may take a replica of a job group: the claim path's rule for consensus (CC-33).

Replicas only guard against wrong results when they come from independent nodes. A node that
held any job of the group (the first or a replica, whether it finished it or not) may take no
other, nor may a node behind the same address (ip_hash) as one that did: one operator's
machines behind one connection would otherwise agree with each other.
"""

from __future__ import annotations

from collections.abc import Iterable


def may_take_replica(node_id: str, ip_hash: str | None, holders: Iterable[tuple[str, str | None]]) -> bool:
    """`holders`: (node id, ip_hash) of every node that held a job of the group. An unknown
    ip_hash (None) matches no other; the node id still does."""
    for held_by, held_from in holders:
        if held_by == node_id or (ip_hash is not None and held_from == ip_hash):
            return False
    return True
