"""The dead letter: where a projection or a reactor puts an event it cannot process, so that one
poison event never stops a service and is never dropped silently.

Each dead-lettered event is recorded once on CCN_DEADLETTER (`deadletter.recorded`, its id
derived from consumer, stream and sequence, published with that Nats-Msg-Id, so a crash
between recording and moving on records nothing twice). The record says where the event is and
why it failed, never what it holds: the original stays in its stream, and a replay reads it
again by sequence. An operator sees an error log line with the command to replay it, an
`event_dead_lettered` entry in the orchestrator log and a row in `dead_letters`.
See docs/adr/0012-dead-letters.md.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ccn_core import ids, subjects
from ccn_core.errors import CcnError
from ccn_core.eventstore import HDR_MSG_ID, StoredEvent
from ccn_core.logging import get_logger
from ccn_core.topology import DEADLETTER, ConsumerSpec
from ccn_proto.deadletter import (
    ConsumerKind,
    DeadLettered,
    DeadLetterEvent,
    DeadLetterReplayed,
    DeadLetterReplayFailed,
)
from ccn_proto.envelope import HEADER_CAUSATION_ID, HEADER_CORRELATION_ID, HEADER_TYPE, Actor, Envelope

log = get_logger("ccn.dead_letter")

REPLAY_COMMAND = "replay_dead_letter"
MAX_ERROR_CHARS = 500
_MAX_FIELD_CHARS = 256
_MAX_ID_CHARS = 128
# SQLSTATE classes that blame the data, not the database: 22 data exception (a NUL in text,
# an untranslatable character, a number out of range), 23 integrity constraint violation,
# 54 program limit exceeded (an index row too large for its page)
_EVENT_FAULT_CLASSES = frozenset({"22", "23", "54"})
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` fit for a log line, a header, a JSON field and a Postgres text column: control,
    format and unassigned characters and lone surrogates escaped (`\\x00`, `\\u202e`), cut to
    `limit` characters with an ellipsis. Error messages quote the poison value they failed on."""
    escaped = "".join(
        ch.encode("unicode_escape", "backslashreplace").decode("ascii")
        if unicodedata.category(ch) in _UNPRINTABLE
        else ch
        for ch in text[: limit + 1]
    )
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def error_class(error: BaseException) -> str:
    return type(error).__name__


def error_text(error: BaseException) -> str:
    """The error as an operator reads it: message and, for Postgres, its SQLSTATE; printable."""
    message = error.message if isinstance(error, CcnError) else str(error)
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(error, asyncpg.PostgresError) and sqlstate:
        message = f"{message} (SQLSTATE {sqlstate})"
    return printable(message or error_class(error))


def is_poison(error: BaseException) -> bool:
    """Whether the error is the event's fault (its content cannot be decoded or stored), so the
    event goes to the dead letter; otherwise it is the system's (a connection, a missing table,
    a full disk) and is waited out: skipping events then would empty the stream into the dead
    letter."""
    if isinstance(error, asyncpg.InterfaceError) and isinstance(error, ValueError):
        return True  # asyncpg's client-side DataError: a value its column's type cannot take
    if isinstance(error, asyncpg.PostgresError):
        return (error.sqlstate or "")[:2] in _EVENT_FAULT_CLASSES
    if isinstance(error, asyncpg.InterfaceError | OSError):
        return False  # OSError covers TimeoutError and ConnectionError
    # decoding (msgspec), and projection code that cannot handle this event's content
    return isinstance(error, Exception)


def dead_letter_id(consumer: str, stream: str, seq: int) -> str:
    """`<consumer>-<stream>-<seq>`: readable in a log line and typed back into `ccn deadletter
    replay`; a hash when that would not be a subject token."""
    readable = f"{consumer}-{stream}-{seq}"
    if _TOKEN.match(readable):
        return readable
    return "dl-" + hashlib.sha256(f"{consumer}\x1f{stream}\x1f{seq}".encode()).hexdigest()[:40]


def dead_letter_subject(dead_letter: str, event: str) -> str:
    return subjects.event("deadletter", dead_letter, event)


def replay_hint(dead_letter: str) -> str:
    return f"ccn deadletter replay {dead_letter}"


_decode_envelope = msgspec.json.Decoder(Envelope[DeadLetterEvent]).decode


def decode_dead_letter_event(data: bytes) -> Envelope[DeadLetterEvent]:
    return _decode_envelope(data)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded dead letter, as its replay needs it."""

    id: str
    record: DeadLettered
    event_id: str  # of the `deadletter.recorded` event: the cause of the replay's outcome
    correlation_id: str


class DeadLetterOffice:
    """Records the dead letters of one durable consumer and the outcomes of their replays."""

    def __init__(self, js: JetStreamContext, consumer: ConsumerSpec, kind: ConsumerKind) -> None:
        self._js = js
        self._consumer = consumer
        self._kind = kind

    async def record(self, stored: StoredEvent, error: BaseException, *, deliveries: int | None = None) -> str:
        """Record that `stored` cannot be processed (idempotent); returns the dead letter's id."""
        spec = self._consumer
        dead_letter = dead_letter_id(spec.durable, spec.stream, stored.seq)
        headers = stored.headers
        recorded = DeadLettered(
            consumer=spec.durable,
            kind=self._kind,
            stream=spec.stream,
            stream_seq=stored.seq,
            subject=printable(stored.subject, _MAX_FIELD_CHARS),
            event_type=_header(headers, HEADER_TYPE),
            event_id=_header(headers, HDR_MSG_ID),
            error_class=error_class(error),
            error_message=error_text(error),
            deliveries=deliveries,
        )
        correlation_id = _header(headers, HEADER_CORRELATION_ID) or dead_letter
        await self._publish(dead_letter, recorded, "recorded", correlation_id, recorded.event_id)
        log.error(
            "event dead-lettered: the consumer went on without it; fix the cause, then replay it",
            consumer=spec.durable,
            stream=spec.stream,
            seq=stored.seq,
            subject=recorded.subject,
            event_type=recorded.event_type,
            error_class=recorded.error_class,
            error=recorded.error_message,
            deliveries=deliveries,
            dead_letter_id=dead_letter,
            replay=replay_hint(dead_letter),
        )
        return dead_letter

    async def find(self, dead_letter: str) -> DeadLetter | None:
        """The dead letter's record, if this consumer recorded one under that id."""
        if not _TOKEN.match(dead_letter):
            return None
        try:
            raw = await self._js.get_last_msg(DEADLETTER.name, dead_letter_subject(dead_letter, "recorded"))
        except NotFoundError:
            return None
        envelope = decode_dead_letter_event(raw.data or b"")
        record = envelope.data
        if not isinstance(record, DeadLettered) or record.consumer != self._consumer.durable:
            return None
        return DeadLetter(
            id=dead_letter, record=record, event_id=envelope.event_id, correlation_id=envelope.correlation_id
        )

    async def original(self, record: DeadLettered) -> StoredEvent:
        """The dead-lettered event itself, read again from its stream by sequence."""
        raw = await self._js.get_msg(record.stream, record.stream_seq)
        return StoredEvent(
            seq=record.stream_seq, subject=raw.subject or "", data=raw.data or b"", headers=dict(raw.headers or {})
        )

    async def record_replay(self, recorded: DeadLetter, replay_id: str, error: BaseException | None) -> None:
        """Record a replay's outcome: replayed, or failed again with `error`."""
        dead_letter = recorded.id
        outcome: DeadLetterEvent
        if error is None:
            outcome, name = DeadLetterReplayed(replay_id=replay_id), "replayed"
            log.info("dead letter replayed", consumer=self._consumer.durable, dead_letter_id=dead_letter)
        else:
            outcome = DeadLetterReplayFailed(
                replay_id=replay_id, error_class=error_class(error), error_message=error_text(error)
            )
            name = "replay_failed"
            log.error(
                "dead letter failed again on replay",
                consumer=self._consumer.durable,
                dead_letter_id=dead_letter,
                error_class=outcome.error_class,
                error=outcome.error_message,
            )
        await self._publish(dead_letter, outcome, name, recorded.correlation_id, recorded.event_id, replay_id)

    async def _publish(
        self,
        dead_letter: str,
        data: DeadLetterEvent,
        name: str,
        correlation_id: str,
        causation_id: str | None,
        *key: str,
    ) -> None:
        event_id = ids.derived_event_id("deadletter", dead_letter, name, *key)
        envelope = Envelope[Any](
            event_id=event_id,
            type=type(data).__struct_config__.tag,  # type: ignore[arg-type]
            schema_version=1,
            aggregate_id=dead_letter,
            occurred_at=datetime.now(UTC),
            correlation_id=correlation_id,
            causation_id=causation_id,
            actor=Actor(kind="service", id=self._consumer.durable),
            data=data,
        )
        headers = {HDR_MSG_ID: event_id, HEADER_TYPE: envelope.type, HEADER_CORRELATION_ID: correlation_id}
        if causation_id:
            headers[HEADER_CAUSATION_ID] = causation_id
        await self._js.publish(
            dead_letter_subject(dead_letter, name),
            msgspec.json.encode(envelope),
            stream=DEADLETTER.name,
            headers=headers,
        )


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name) if headers else None
    return printable(str(value), _MAX_ID_CHARS) if value else None
