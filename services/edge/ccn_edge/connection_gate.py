"""Counting open connections against caps, per key (an ip_hash, a node id) and in all: pure,
no I/O, so every boundary is a unit test.

The count is exact because it never waits: acquire checks and counts in one synchronous step,
and on one event loop no other task runs in between. It is per process, so per edge replica.
A Ticket is released once, whatever path the connection leaves by: releasing it again is a
no-op, so a handler can release early (a greeted socket) and again in its last `finally`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Refusal:
    """Why acquire refused: the key's own cap, or the cap on all keys together."""

    cap: Literal["per_key", "total"]
    limit: int


class Ticket:
    """A held slot; release() gives it back, once."""

    def __init__(self, gate: ConnectionGate, key: str) -> None:
        self._gate = gate
        self.key = key
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate._give_back(self.key)


class ConnectionGate:
    def __init__(self, *, per_key: int, total: int | None = None) -> None:
        if per_key < 1 or (total is not None and total < 1):
            raise ValueError("a cap of less than 1 would refuse everything")
        self.per_key = per_key
        self.total = total
        self._held: Counter[str] = Counter()
        self._held_total = 0

    def acquire(self, key: str) -> Ticket | Refusal:
        if self._held[key] >= self.per_key:
            return Refusal("per_key", self.per_key)
        if self.total is not None and self._held_total >= self.total:
            return Refusal("total", self.total)
        self._held[key] += 1
        self._held_total += 1
        return Ticket(self, key)

    def held(self, key: str | None = None) -> int:
        """Slots held by `key`, or by every key together."""
        return self._held_total if key is None else self._held[key]

    def _give_back(self, key: str) -> None:
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]  # a key that holds nothing takes no memory: ip_hashes come and go
        self._held_total -= 1
