"""A tiny aggregate for testing the kernel itself, on a stream of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import msgspec
import nats
from nats.aio.client import Client as NATS

from ccn_core.settings import Settings
from ccn_core.topology import StreamSpec, ensure_streams, stream_config

TALLY = StreamSpec(name="TEST_TALLY", subjects=("ccn.tally.>",), description="kernel tests")


class Added(msgspec.Struct, tag="tally.added", frozen=True):
    command_id: str


class Reset(msgspec.Struct, tag="tally.reset", frozen=True):
    pass


TallyEvent = Added | Reset


class Add(msgspec.Struct, frozen=True):
    command_id: str


class AddTwice(msgspec.Struct, frozen=True):
    command_id: str


class TallyState(msgspec.Struct, frozen=True):
    seen: frozenset[str] = frozenset()


class TallyDecider:
    aggregate = "tally"

    def initial_state(self, aggregate_id: str) -> TallyState:
        return TallyState()

    def decide(self, command: Add | AddTwice, state: TallyState, now: datetime) -> list[TallyEvent]:
        if command.command_id in state.seen:
            return []
        if isinstance(command, AddTwice):
            return [Added(command_id=command.command_id), Added(command_id=command.command_id + "-bis")]
        return [Added(command_id=command.command_id)]

    def evolve(self, state: TallyState, event: TallyEvent) -> TallyState:
        if isinstance(event, Added):
            return TallyState(seen=state.seen | {event.command_id})
        return TallyState()


async def connect_with_tally(url: str, settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(url)
    js = client.jetstream()
    await ensure_streams(js, settings)
    await js.add_stream(stream_config(TALLY, settings))
    yield client
    await client.drain()
