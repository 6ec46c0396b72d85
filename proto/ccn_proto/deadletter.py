"""The dead letter: events a projection or a reactor could not process, and their replays.

A dead letter is an aggregate of its own (id derived from consumer, stream and sequence) on
CCN_DEADLETTER. It records where the event is, never the event: the original stays in its
stream and is read again by sequence when it is replayed. Every text field copied from the
poison event or from an error is made printable and bounded before it is recorded.
"""

from __future__ import annotations

from typing import Literal

import msgspec

ConsumerKind = Literal["projection", "reactor"]


class DeadLettered(msgspec.Struct, gc=False, tag="deadletter.recorded", frozen=True, kw_only=True):
    consumer: str  # the durable consumer that could not process the event
    kind: ConsumerKind
    stream: str
    stream_seq: int
    subject: str
    event_type: str | None = None  # from the event's ccn-type header, when it has one
    event_id: str | None = None  # from its Nats-Msg-Id header
    error_class: str
    error_message: str
    deliveries: int | None = None  # a reactor's delivery count when it gave up


class DeadLetterReplayed(msgspec.Struct, gc=False, tag="deadletter.replayed", frozen=True, kw_only=True):
    replay_id: str


class DeadLetterReplayFailed(msgspec.Struct, gc=False, tag="deadletter.replay_failed", frozen=True, kw_only=True):
    replay_id: str
    error_class: str
    error_message: str


DeadLetterEvent = DeadLettered | DeadLetterReplayed | DeadLetterReplayFailed
DEAD_LETTER_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (DeadLettered, DeadLetterReplayed, DeadLetterReplayFailed)


class ReplayDeadLetter(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Command to the consumer's owner (ccn.cmd.<durable>.replay_dead_letter): process the
    dead-lettered event again. A retry with the same replay_id records one outcome."""

    dead_letter_id: str
    replay_id: str


class ReplayDeadLetterReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    dead_letter_id: str
    outcome: Literal["replayed", "failed_again"]
    error: str | None = None
