"""The shape every aggregate's rules take: pure functions, no I/O, time and ids passed in."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, TypeVar

S = TypeVar("S")
C = TypeVar("C", contravariant=True)
E = TypeVar("E")


class Decider(Protocol[C, S, E]):
    """`aggregate` names the subject segment (ccn.<aggregate>.<id>.<event>)."""

    aggregate: str

    def initial_state(self, aggregate_id: str) -> S: ...

    def decide(self, command: C, state: S, now: datetime) -> list[E]: ...

    def evolve(self, state: S, event: E) -> S: ...


def fold(decider: Decider[C, S, E], aggregate_id: str, events: list[E]) -> S:
    state = decider.initial_state(aggregate_id)
    for event in events:
        state = decider.evolve(state, event)
    return state
