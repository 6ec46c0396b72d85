"""The event store against a real JetStream: optimistic concurrency, dedupe, atomic batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from nats.aio.client import Client as NATS

from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.eventstore import EventStore, OutgoingEvent, WrongLastSequence
from ccn_core.ids import new_public_id
from ccn_proto.envelope import Actor
from tests.conftest import make_settings
from tests.integration.kernel_fixtures import TALLY, Add, Added, AddTwice, TallyDecider, TallyEvent, connect_with_tally

META = EventMeta(correlation_id="corr-kernel", actor=Actor(kind="service", id="test"))


@pytest.fixture
async def tally_nc(isolated_nats: str, tmp_path: object) -> AsyncIterator[NATS]:
    settings = make_settings(isolated_nats, "postgresql://unused/none", tmp_path)  # type: ignore[arg-type]
    async for client in connect_with_tally(isolated_nats, settings):
        yield client


async def open_store(nc: NATS) -> EventStore:
    store = EventStore(nc, timeout=10)
    await store.start()
    return store


def repository(store: EventStore) -> AggregateRepository[Add | AddTwice, object, TallyEvent]:
    return AggregateRepository(store, TallyDecider(), TallyEvent, stream=TALLY.name, deadline_s=60)  # type: ignore[arg-type]


async def test_200_concurrent_writers_lose_no_update(tally_nc: NATS) -> None:
    """Ten replicas (each its own cache and connection state) race 200 commands at one aggregate:
    every command is accepted exactly once, every conflict was retried, and the stream holds
    exactly 200 events."""
    replicas = [repository(await open_store(tally_nc)) for _ in range(10)]
    aggregate = new_public_id()
    command_ids = [f"c{i:03d}" for i in range(200)]
    results = await asyncio.gather(
        *(replicas[i % 10].execute(aggregate, Add(command_id=cid), META) for i, cid in enumerate(command_ids))
    )
    assert all(len(result.events) == 1 for result in results)
    assert sum(r.conflicts for r in replicas) > 0, "the race produced no conflict: the test did not test OCC"
    assert sum(result.attempts - 1 for result in results) == sum(r.conflicts for r in replicas)
    history = await replicas[0].history(aggregate)
    assert sorted(env.data.command_id for env in history) == command_ids  # type: ignore[attr-defined]
    assert len({env.event_id for env in history}) == 200
    fresh = await repository(await open_store(tally_nc)).load(aggregate)
    assert fresh.state.seen == frozenset(command_ids)  # type: ignore[attr-defined]


async def test_stale_expected_sequence_is_refused(tally_nc: NATS) -> None:
    store = await open_store(tally_nc)
    aggregate = new_public_id()
    scope = f"ccn.tally.{aggregate}.*"
    event = OutgoingEvent(subject=f"ccn.tally.{aggregate}.added", data=b'{"type":"tally.added"}', headers={})
    first = await store.append(event, expected_last_seq=0, occ_scope=scope)
    with pytest.raises(WrongLastSequence):
        await store.append(event, expected_last_seq=0, occ_scope=scope)
    second = await store.append(event, expected_last_seq=first.seq, occ_scope=scope)
    assert second.seq > first.seq


async def test_a_duplicate_message_id_is_stored_once(tally_nc: NATS) -> None:
    store = await open_store(tally_nc)
    aggregate = new_public_id()
    event = OutgoingEvent(
        subject=f"ccn.tally.{aggregate}.added",
        data=msgspec.json.encode(Added(command_id="x")),
        headers={"Nats-Msg-Id": f"dedupe-{aggregate}"},
    )
    first = await store.append(event)
    again = await store.append(event)
    assert not first.duplicate and again.duplicate and again.seq == first.seq
    assert len(await store.read(TALLY.name, f"ccn.tally.{aggregate}.*")) == 1


async def test_a_retried_command_with_its_idempotency_key_appends_nothing_new(tally_nc: NATS) -> None:
    store = await open_store(tally_nc)
    aggregate = new_public_id()
    meta = msgspec.structs.replace(META, idempotency_key="k-1")
    first = await repository(store).execute(aggregate, Add(command_id="once"), meta)
    # a second replica with a cold cache: its append is stale, and the decision is empty on reload
    retry = await repository(await open_store(tally_nc)).execute(aggregate, Add(command_id="once"), meta)
    assert len(first.events) == 1 and retry.events == []
    assert len(await store.read(TALLY.name, f"ccn.tally.{aggregate}.*")) == 1


async def test_a_creation_assumed_new_is_decided_again_against_what_another_replica_stored(
    tally_nc: NATS,
) -> None:
    """`new=True` skips the read; an aggregate that exists after all fails the append's expected
    sequence, and the command is decided against its history: nothing is appended twice."""
    aggregate = new_public_id()
    first = await repository(await open_store(tally_nc)).execute(aggregate, Add(command_id="a"), META, new=True)
    assert first.version > 0 and first.attempts == 1
    cold = repository(await open_store(tally_nc))
    again = await cold.execute(aggregate, Add(command_id="a"), META, new=True)  # the same command: a no-op
    other = await cold.execute(aggregate, Add(command_id="b"), META, new=True)  # cached now: no conflict
    assert again.events == [] and again.attempts == 2 and cold.conflicts == 1
    assert len(other.events) == 1 and other.attempts == 1
    stored = await cold.history(aggregate)
    assert [env.data.command_id for env in stored] == ["a", "b"]  # type: ignore[attr-defined]


async def test_a_decision_of_several_events_lands_atomically(tally_nc: NATS) -> None:
    store = await open_store(tally_nc)
    repo = repository(store)
    aggregate = new_public_id()
    await repo.execute(aggregate, Add(command_id="a"), META)
    executed = await repo.execute(aggregate, AddTwice(command_id="b"), META)
    stored = await store.read(TALLY.name, f"ccn.tally.{aggregate}.*")
    assert [s.seq for s in stored][-1] == executed.version
    assert [repo.decode(s).data.command_id for s in stored] == ["a", "b", "b-bis"]  # type: ignore[attr-defined]


async def test_a_retried_decision_of_several_events_under_its_key_is_answered_as_a_duplicate(
    tally_nc: NATS,
) -> None:
    """A decision of two events lands as one atomic batch; a cold replica deciding the same command
    under the same key against an assumed-new aggregate sends the same message ids, which the
    server refuses in a batch (10201): that is the decision landing before, not a failure."""
    aggregate = new_public_id()
    meta = msgspec.structs.replace(META, idempotency_key="twice-1")
    first = await repository(await open_store(tally_nc)).execute(aggregate, AddTwice(command_id="b"), meta, new=True)
    retry = await repository(await open_store(tally_nc)).execute(aggregate, AddTwice(command_id="b"), meta, new=True)
    assert len(first.events) == 2 and retry.events == [] and retry.version == first.version
    stored = await repository(await open_store(tally_nc)).history(aggregate)
    assert [env.data.command_id for env in stored] == ["b", "b-bis"]  # type: ignore[attr-defined]


async def test_reads_page_through_long_histories(tally_nc: NATS) -> None:
    store = await open_store(tally_nc)
    repo = repository(store)
    aggregate = new_public_id()
    await asyncio.gather(*(repo.execute(aggregate, Add(command_id=f"p{i}"), META) for i in range(1200)))
    cold = repository(await open_store(tally_nc))
    loaded = await cold.load(aggregate)
    assert len(loaded.state.seen) == 1200  # type: ignore[attr-defined]
    assert loaded.version == (await store.read(TALLY.name, f"ccn.tally.{aggregate}.*"))[-1].seq


async def _append_history(
    store: EventStore, aggregate: str, decisions: list[tuple[str, ...]], *, neighbour: str | None = None
) -> list[int]:
    """Appends each decision (several names: one atomic batch) under the aggregate's OCC scope,
    with a neighbour's event after each, as other aggregates interleave in a live stream; returns
    the aggregate's sequences as a scan reads them."""
    scope = f"ccn.tally.{aggregate}.*"
    last = 0
    for decision in decisions:
        events = [OutgoingEvent(subject=f"ccn.tally.{aggregate}.{name}", data=b"{}", headers={}) for name in decision]
        last = (await store.append_all(events, expected_last_seq=last, occ_scope=scope)).seq
        if neighbour is not None:
            await store.append(OutgoingEvent(subject=f"ccn.tally.{neighbour}.added", data=b"{}", headers={}))
    return [event.seq for event in await store._scan(TALLY.name, scope, 1)]


async def _no_scan(stream: str, filter_subject: str, from_seq: int) -> list[object]:
    raise AssertionError(f"scanned {filter_subject} from {from_seq}: the OCC chain should have answered")


LIFE = [("created",), ("claimed",), ("renewed",), ("renewed",), ("failed", "retried"), ("claimed",), ("renewed",)]
LIFE += [("submitted", "completed", "archived")]


async def test_a_history_is_read_by_its_occ_chain_including_events_hidden_behind_later_ones(
    tally_nc: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subjects repeat (a second claim, renewals) and decisions land as atomic batches: the chain
    read returns exactly what a scan does, from the start and from any point, without a scan."""
    store = await open_store(tally_nc)
    aggregate = new_public_id()
    scope = f"ccn.tally.{aggregate}.*"
    expected = await _append_history(store, aggregate, LIFE, neighbour=new_public_id())
    assert len(expected) == 11
    monkeypatch.setattr(store, "_scan", _no_scan)
    assert [event.seq for event in await store.read(TALLY.name, scope)] == expected
    for cut in range(len(expected)):
        read = await store.read(TALLY.name, scope, from_seq=expected[cut])
        assert [event.seq for event in read] == expected[cut:]
    assert await store.read(TALLY.name, scope, from_seq=expected[-1] + 1) == []
    assert await store.read(TALLY.name, f"ccn.tally.{new_public_id()}.*") == []


async def test_a_history_the_occ_chain_cannot_prove_is_scanned(tally_nc: NATS) -> None:
    """An event appended without an OCC check, or a run on one subject longer than the chain
    read fetches one by one, falls back to the scan: the read is still whole."""
    store = await open_store(tally_nc)
    unchecked = new_public_id()
    await _append_history(store, unchecked, [("created",), ("claimed",)])
    await store.append(OutgoingEvent(subject=f"ccn.tally.{unchecked}.claimed", data=b"{}", headers={}))
    scanned = await store._scan(TALLY.name, f"ccn.tally.{unchecked}.*", 1)
    assert len(scanned) == 3
    assert [e.seq for e in await store.read(TALLY.name, f"ccn.tally.{unchecked}.*")] == [e.seq for e in scanned]

    long_run = new_public_id()
    expected = await _append_history(store, long_run, [("created",)] + [("renewed",)] * 50)
    assert [e.seq for e in await store.read(TALLY.name, f"ccn.tally.{long_run}.*")] == expected
