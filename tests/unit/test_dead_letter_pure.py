"""The pure parts of the dead letter: what counts as the event's fault, how error text is made
safe to record, how a failed batch is split down to its poison events, how the records fold
into statuses and map to orchestrator-log steps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest
from nats.aio.msg import Msg

from ccn_analytics.dead_letter_projection import dead_letter_log_rows, dead_letter_statement
from ccn_cli.deadletter_cmd import chosen, fold_dead_letters
from ccn_cli.log_cmd import Entry, table_lines
from ccn_core.dead_letter import MAX_ERROR_CHARS, dead_letter_id, error_text, is_poison, printable
from ccn_core.errors import BadInput, Unavailable
from ccn_core.projection import LostLeadership, isolate_poison
from ccn_core.pull import delivery_count
from ccn_proto.deadletter import DeadLettered, DeadLetterEvent, DeadLetterReplayed, DeadLetterReplayFailed
from ccn_proto.envelope import Actor, Envelope


def test_printable_escapes_control_format_and_surrogate_characters() -> None:
    assert printable("agent\x00/1.0\r\n") == "agent\\x00/1.0\\r\\n"
    assert printable("evil\u202etxt.exe") == "evil\\u202etxt.exe"  # right-to-left override
    assert printable("lone \udc80 surrogate") == "lone \\udc80 surrogate"
    assert printable("tab\there") == "tab\\there"
    assert printable("naïve café — 東京") == "naïve café — 東京"


def test_printable_is_bounded() -> None:
    assert printable("x" * 10_000) == "x" * (MAX_ERROR_CHARS - 1) + "…"
    assert len(printable("\x00" * 10_000, 40)) == 40
    assert printable("short", 40) == "short"


def test_error_text_names_the_sqlstate_and_hides_nothing_unsafe() -> None:
    error = asyncpg.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')
    error.sqlstate = "22021"  # type: ignore[misc]
    assert error_text(error) == 'invalid byte sequence for encoding "UTF8": 0x00 (SQLSTATE 22021)'
    assert error_text(BadInput("bad \x07 bell")) == "bad \\x07 bell"
    assert error_text(ValueError()) == "ValueError"


def _postgres_error(cls: type[asyncpg.PostgresError], sqlstate: str) -> asyncpg.PostgresError:
    error = cls("from the server")
    error.sqlstate = sqlstate  # type: ignore[misc]
    return error


@pytest.mark.parametrize(
    "error",
    [
        _postgres_error(asyncpg.CharacterNotInRepertoireError, "22021"),  # NUL in text
        _postgres_error(asyncpg.UntranslatableCharacterError, "22P05"),  # \u0000 in jsonb
        _postgres_error(asyncpg.NumericValueOutOfRangeError, "22003"),
        _postgres_error(asyncpg.UniqueViolationError, "23505"),
        _postgres_error(asyncpg.ProgramLimitExceededError, "54000"),  # index row too large
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),  # client side
        msgspec.ValidationError("Expected `str`, got `int` - at `$.data.user_agent`"),
        msgspec.DecodeError("JSON is malformed"),
        TypeError("unhandled node event"),
        RecursionError("maximum recursion depth exceeded"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_event_is_at_fault_when_it_cannot_be_decoded_or_stored(error: Exception) -> None:
    assert is_poison(error)


@pytest.mark.parametrize(
    "error",
    [
        _postgres_error(asyncpg.DeadlockDetectedError, "40P01"),
        _postgres_error(asyncpg.UndefinedTableError, "42P01"),  # a migration not applied
        _postgres_error(asyncpg.DiskFullError, "53100"),
        _postgres_error(asyncpg.AdminShutdownError, "57P01"),
        asyncpg.InterfaceError("connection is closed"),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_system_is_at_fault_when_the_database_or_connection_is(error: Exception) -> None:
    assert not is_poison(error)


def test_a_dead_letter_id_is_readable_and_always_a_subject_token() -> None:
    assert dead_letter_id("registry_node_read_model", "CCN_NODES", 42) == "registry_node_read_model-CCN_NODES-42"
    long = dead_letter_id("c" * 200, "CCN_NODES", 42)
    assert long.startswith("dl-") and len(long) == 43
    assert long == dead_letter_id("c" * 200, "CCN_NODES", 42) != dead_letter_id("c" * 200, "CCN_NODES", 43)


class Table:
    """An in-memory projection target: a run is applied whole or not at all, like a transaction."""

    def __init__(self, poison: set[int]) -> None:
        self.poison = poison
        self.rows: list[int] = []
        self.calls = 0
        self.set_aside: list[tuple[int, str]] = []

    async def apply(self, events: Sequence[int]) -> None:
        self.calls += 1
        bad = [event for event in events if event in self.poison]
        if bad:
            raise ValueError(f"cannot store {bad[0]}")
        self.rows.extend(events)

    async def aside(self, event: int, error: Exception) -> None:
        self.set_aside.append((event, str(error)))


async def test_isolation_applies_every_good_event_in_order_and_sets_each_poison_aside() -> None:
    table = Table(poison={17, 18, 600})
    events = list(range(1, 1001))
    await isolate_poison(events, table.apply, table.aside, is_poison)
    assert table.rows == [e for e in events if e not in {17, 18, 600}]
    assert table.set_aside == [(17, "cannot store 17"), (18, "cannot store 18"), (600, "cannot store 600")]
    assert table.calls < 70  # splitting, not one transaction per event


async def test_a_clean_batch_is_one_call() -> None:
    table = Table(poison=set())
    await isolate_poison(list(range(500)), table.apply, table.aside, is_poison)
    assert table.calls == 1 and table.set_aside == []


async def test_an_error_that_is_not_the_events_fault_is_not_isolated() -> None:
    async def lost(_: Sequence[int]) -> None:
        raise LostLeadership("someone else leads")

    async def never(event: int, error: Exception) -> None:
        raise AssertionError("nothing is set aside for a lost leadership")

    with pytest.raises(LostLeadership):
        await isolate_poison([1, 2, 3], lost, never, lambda e: not isinstance(e, LostLeadership) and is_poison(e))

    async def down(_: Sequence[int]) -> None:
        raise Unavailable("NATS is away")

    with pytest.raises(Unavailable):
        await isolate_poison([1, 2, 3], down, never, lambda e: isinstance(e, ValueError))


AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
RECORD = DeadLettered(
    consumer="registry_node_read_model",
    kind="projection",
    stream="CCN_NODES",
    stream_seq=7,
    subject="ccn.node.n-1.registered",
    event_type="node.registered",
    event_id="e-1",
    error_class="CharacterNotInRepertoireError",
    error_message="invalid byte sequence for encoding UTF8: 0x00 (SQLSTATE 22021)",
)
DL = "registry_node_read_model-CCN_NODES-7"


def dead_letter_event(data: DeadLetterEvent, seconds: int = 0) -> Envelope[DeadLetterEvent]:
    tag = type(data).__struct_config__.tag
    assert isinstance(tag, str)
    return Envelope(
        event_id=f"id-{tag}-{seconds}",
        type=tag,
        schema_version=1,
        aggregate_id=DL,
        occurred_at=AT.replace(second=seconds),
        correlation_id="corr-poison",
        causation_id="e-1",
        actor=Actor(kind="service", id="registry_node_read_model"),
        data=data,
    )


def test_dead_letters_fold_into_their_replay_status() -> None:
    recorded = dead_letter_event(RECORDED := RECORD)
    failed = dead_letter_event(DeadLetterReplayFailed(replay_id="r1", error_class="X", error_message="still"), 1)
    replayed = dead_letter_event(DeadLetterReplayed(replay_id="r2"), 2)
    assert [(v.id, v.status, v.last_error) for v in fold_dead_letters([recorded])] == [(DL, "pending", None)]
    assert [(v.status, v.last_error) for v in fold_dead_letters([recorded, failed])] == [("failed_again", "X: still")]
    views = fold_dead_letters([recorded, failed, replayed])
    assert [(v.status, v.last_error, v.record) for v in views] == [("replayed", None, RECORDED)]
    # replay picks what is not replayed yet, or exactly what was named
    assert chosen(views, [], None) == []
    assert chosen(views, [DL], None) == views
    assert chosen(fold_dead_letters([recorded]), [], "analytics_audit_log") == []


def test_a_dead_letter_is_an_orchestrator_log_step_on_the_events_thread() -> None:
    [row] = dead_letter_log_rows(dead_letter_event(RECORD), "CCN_DEADLETTER", 3)
    assert (row.event, row.node_id, row.job_id, row.correlation_id, row.stream, row.stream_seq) == (
        "event_dead_lettered",
        "n-1",
        None,
        "corr-poison",
        "CCN_DEADLETTER",
        3,
    )
    assert row.details["replay"] == f"ccn deadletter replay {DL}"
    assert row.details["stream_seq"] == 7 and row.details["error_class"] == "CharacterNotInRepertoireError"
    job = msgspec.structs.replace(RECORD, stream="CCN_JOBS", subject="ccn.job.j-9.created")
    [job_row] = dead_letter_log_rows(dead_letter_event(job), "CCN_DEADLETTER", 4)
    assert (job_row.job_id, job_row.node_id) == ("j-9", None)
    failure = DeadLetterReplayFailed(replay_id="r", error_class="E", error_message="m")
    [failed] = dead_letter_log_rows(dead_letter_event(failure), "CCN_DEADLETTER", 5)
    assert failed.event == "dead_letter_replay_failed" and failed.details["error"] == "m"


def test_each_dead_letter_event_is_one_statement_on_its_row() -> None:
    sql, args = dead_letter_statement(dead_letter_event(RECORD))
    assert "INSERT INTO dead_letters" in sql and args[0] == DL and "pending" in sql
    sql, args = dead_letter_statement(dead_letter_event(DeadLetterReplayed(replay_id="r"), 9))
    assert "status = 'replayed'" in sql and args == (DL, AT.replace(second=9))


def test_the_delivery_count_is_read_from_the_ack_subject() -> None:
    def delivery(reply: str) -> Msg:
        return Msg(_client=None, subject="ccn.tally.a.added", reply=reply, data=b"{}")  # type: ignore[arg-type]

    assert delivery_count(delivery("$JS.ACK.TEST_TALLY.reactor.3.17.9.1733486400000000000.0")) == 3
    long_form = "$JS.ACK.domain.accounthash.TEST_TALLY.reactor.5.17.9.1733486400000000000.0.token"
    assert delivery_count(delivery(long_form)) == 5


def test_ccn_log_notes_a_dead_letter_with_its_cause_and_replay_command() -> None:
    [row] = dead_letter_log_rows(dead_letter_event(RECORD), "CCN_DEADLETTER", 3)
    entry = Entry(
        occurred_at=row.occurred_at,
        event=row.event,
        node_id=row.node_id,
        correlation_id=row.correlation_id,
        details=msgspec.json.decode(msgspec.json.encode(row.details)),
    )
    note = table_lines([entry])[1].split("corr-poison", 1)[1].strip()
    assert note == (
        "registry_node_read_model: CharacterNotInRepertoireError: invalid byte sequence for encoding UTF8: 0x00"
        f" (SQLSTATE 22021); ccn deadletter replay {DL}"
    )
