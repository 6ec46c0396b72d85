"""`ccn deadletter list | replay`: the events projections and reactors could not process
(ADR 0012), and processing them again once the cause is fixed.

Both read CCN_DEADLETTER itself, not its read model: the service whose projection is failing
may be the analytics service that keeps `dead_letters`. A replay is a command to the owner of
the consumer (ccn.cmd.<consumer>.replay_dead_letter): the projection's leader or one replica of
the reactor applies the original event again and records the outcome on the dead letter.
Exit 0 when every replay succeeded (or, for list, always once the stream was read)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec
import nats
import nats.errors
from nats.aio.client import Client as NATS

from ccn_cli.console import fail, say, warn
from ccn_cli.stack.run_state import load_state
from ccn_cli.subcommand import Subparsers
from ccn_core import ids
from ccn_core.commands import CommandClient
from ccn_core.dead_letter import REPLAY_COMMAND, decode_dead_letter_event, printable
from ccn_core.errors import CcnError
from ccn_core.eventstore import EventStore
from ccn_core.settings import Settings
from ccn_core.topology import DEADLETTER
from ccn_proto.deadletter import (
    DeadLettered,
    DeadLetterEvent,
    DeadLetterReplayed,
    DeadLetterReplayFailed,
    ReplayDeadLetter,
    ReplayDeadLetterReply,
)
from ccn_proto.envelope import Envelope

_REPLAY_TIMEOUT_S = 30.0
STATUSES = ("pending", "replayed", "failed_again")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("deadletter", help="list dead-lettered events, or replay them once fixed")
    commands = parser.add_subparsers(dest="deadletter_command", required=True, metavar="COMMAND")
    listing = commands.add_parser("list", help="every dead letter: consumer, event, error, status")
    listing.add_argument("--consumer", metavar="NAME", help="only this durable consumer's")
    listing.add_argument("--status", choices=STATUSES, help="only dead letters in this status")
    listing.set_defaults(run=run_list)
    replay = commands.add_parser(
        "replay", help="process dead-lettered events again (default: every pending or failed one)"
    )
    replay.add_argument("--consumer", metavar="NAME", help="only this durable consumer's")
    replay.add_argument("ids", nargs="*", metavar="ID", help="dead letter ids (from `ccn deadletter list`)")
    replay.set_defaults(run=run_replay)


class DeadLetterView(msgspec.Struct, kw_only=True):
    """A dead letter as its events so far tell it."""

    id: str
    record: DeadLettered
    correlation_id: str
    dead_lettered_at: datetime
    status: str = "pending"
    last_error: str | None = None


def fold_dead_letters(events: Iterable[Envelope[DeadLetterEvent]]) -> list[DeadLetterView]:
    """Each dead letter's state, in the order they were recorded."""
    views: dict[str, DeadLetterView] = {}
    for envelope in events:
        view = views.get(envelope.aggregate_id)
        match envelope.data:
            case DeadLettered() as record:
                views[envelope.aggregate_id] = DeadLetterView(
                    id=envelope.aggregate_id,
                    record=record,
                    correlation_id=envelope.correlation_id,
                    dead_lettered_at=envelope.occurred_at,
                )
            case DeadLetterReplayed() if view is not None:
                view.status, view.last_error = "replayed", None
            case DeadLetterReplayFailed() as failed if view is not None:
                view.status, view.last_error = "failed_again", f"{failed.error_class}: {failed.error_message}"
    return list(views.values())


def chosen(views: Sequence[DeadLetterView], wanted_ids: Sequence[str], consumer: str | None) -> list[DeadLetterView]:
    """What `replay` acts on: the named ids whatever their status (a replay applies an event at
    most once), else every one not replayed yet; of one consumer when asked."""
    of_consumer = [view for view in views if consumer is None or view.record.consumer == consumer]
    if wanted_ids:
        return [view for view in of_consumer if view.id in set(wanted_ids)]
    return [view for view in of_consumer if view.status != "replayed"]


def table_lines(views: Sequence[DeadLetterView]) -> list[str]:
    lines = []
    for view in views:
        record = view.record
        lines.append(
            f"{view.id}  {view.status}  {view.dead_lettered_at:%Y-%m-%d %H:%M:%S}  {record.consumer}"
            f"  {record.stream}#{record.stream_seq}  {record.subject}  {record.event_type or '-'}"
        )
        error = view.last_error or f"{record.error_class}: {record.error_message}"
        lines.append(f"    {printable(error, 300)}")
    return lines


async def _connect(settings: Settings) -> NATS:
    # max_reconnect_attempts=1: nats-py never gives up a first connect with reconnects off
    return await nats.connect(
        _nats_url(settings), connect_timeout=3, max_reconnect_attempts=1, error_cb=_quiet, name="ccn-deadletter"
    )


async def _quiet(_: Exception) -> None:
    """nats-py logs every failed attempt through error_cb; the command reports its own failure."""


def _nats_url(settings: Settings) -> str:
    state = load_state(settings.home)
    return state.nats_url if state is not None and state.nats_url else settings.effective_nats_url


async def _read_views(nc: NATS) -> list[DeadLetterView]:
    store = EventStore(nc, timeout=10)
    await store.start()
    try:
        stored = await store.read(DEADLETTER.name, "ccn.deadletter.>")
    finally:
        await store.close()
    events = []
    for event in stored:
        try:
            events.append(decode_dead_letter_event(event.data))
        except msgspec.DecodeError:
            warn(f"skipping an undecodable record at {DEADLETTER.name}#{event.seq}")
    return fold_dead_letters(events)


async def _list(settings: Settings, consumer: str | None, status: str | None) -> int:
    nc = await _connect(settings)
    try:
        views = [
            view
            for view in await _read_views(nc)
            if (consumer is None or view.record.consumer == consumer) and (status is None or view.status == status)
        ]
    finally:
        await nc.close()
    if not views:
        say("no dead letters")
        return 0
    for line in table_lines(views):
        say(line)
    pending = sum(view.status != "replayed" for view in views)
    say(f"{len(views)} dead letter(s), {pending} not replayed")
    say("once the cause is fixed: ccn deadletter replay [--consumer NAME] [ID ...]")
    return 0


async def _replay(settings: Settings, wanted_ids: Sequence[str], consumer: str | None) -> int:
    nc = await _connect(settings)
    try:
        views = chosen(await _read_views(nc), wanted_ids, consumer)
        unknown = sorted(set(wanted_ids) - {view.id for view in views})
        for missing in unknown:
            warn(f"no dead letter {missing}" + (f" of {consumer}" if consumer else ""))
        if not views:
            say("nothing to replay")
            return 1 if unknown else 0
        client = CommandClient(nc, timeout=_REPLAY_TIMEOUT_S)
        replayed = 0
        for view in views:
            request = ReplayDeadLetter(dead_letter_id=view.id, replay_id=ids.new_event_id())
            try:
                reply = await client.call(
                    view.record.consumer,
                    REPLAY_COMMAND,
                    request,
                    ReplayDeadLetterReply,
                    correlation_id=view.correlation_id,
                )
            except CcnError as exc:
                say(f"{view.id}: not replayed: {exc.message}")
                continue
            if reply.outcome == "replayed":
                replayed += 1
                say(f"{view.id}: replayed")
            else:
                say(f"{view.id}: failed again: {reply.error}")
    finally:
        await nc.close()
    say(f"{replayed} of {len(views)} replayed")
    return 0 if replayed == len(views) and not unknown else 1


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_list(settings, args.consumer, args.status))
    except (OSError, nats.errors.Error, CcnError) as exc:
        fail(f"cannot read the dead letters: NATS at {_nats_url(settings)} did not answer ({exc}); is the stack up?")
        return 1


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_replay(settings, args.ids, args.consumer))
    except (OSError, nats.errors.Error, CcnError) as exc:
        fail(f"cannot replay: NATS at {_nats_url(settings)} did not answer ({exc}); is the stack up?")
        return 1
