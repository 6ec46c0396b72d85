"""Load an aggregate, decide, append with optimistic concurrency, retry on conflict.

The cache holds (state, last sequence) per aggregate: a writer appends against the cached
sequence without reading first, and the server's OCC check tells it when the cache is stale.
That makes several replicas of a service safe without locks, and a hot aggregate cost one
round trip per command.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
from cachetools import LRUCache

from ccn_core import ids, subjects
from ccn_core.decider import Decider
from ccn_core.errors import Unavailable
from ccn_core.eventstore import HDR_MSG_ID, EventStore, OutgoingEvent, StoredEvent, WrongLastSequence
from ccn_core.tracing import inject_trace
from ccn_proto.envelope import (
    HEADER_CAUSATION_ID,
    HEADER_CORRELATION_ID,
    HEADER_TYPE,
    Actor,
    Envelope,
)

S = TypeVar("S")
C = TypeVar("C")
E = TypeVar("E", bound=msgspec.Struct)


class EventMeta(msgspec.Struct, frozen=True, kw_only=True):
    """Who caused the events and why; stamped on every event a command produces."""

    correlation_id: str
    actor: Actor
    causation_id: str | None = None
    # A command retried under the same key derives the same event ids (Nats-Msg-Id), so the
    # stream's duplicate window drops a second copy even if the first ack was lost.
    idempotency_key: str | None = None


class Loaded(msgspec.Struct, Generic[S]):
    state: S
    version: int  # stream sequence of the aggregate's last event; 0 = no events yet


class Executed(msgspec.Struct, Generic[S, E]):
    state: S
    version: int
    events: list[Envelope[E]]
    attempts: int


def event_name(event: msgspec.Struct) -> str:
    """The tag `node.registered` names subject segment `registered`."""
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str), f"{type(event).__name__} needs a string tag"
    return tag.split(".", 1)[1]


def envelope_headers(envelope: Envelope[Any]) -> dict[str, str]:
    headers = {
        HDR_MSG_ID: envelope.event_id,
        HEADER_TYPE: envelope.type,
        HEADER_CORRELATION_ID: envelope.correlation_id,
    }
    if envelope.causation_id:
        headers[HEADER_CAUSATION_ID] = envelope.causation_id
    inject_trace(headers)
    return headers


def outgoing_event(
    aggregate: str,
    aggregate_id: str,
    event: msgspec.Struct,
    *,
    correlation_id: str,
    actor: Actor,
    causation_id: str | None = None,
    occurred_at: datetime | None = None,
) -> OutgoingEvent:
    """One event as an append outside a decider writes it (a fixture's seed, a bench's stream):
    its envelope, subject and headers, as the repository would give them. It occurred now
    unless `occurred_at` says when."""
    envelope = Envelope(
        event_id=ids.new_event_id(),
        type=type(event).__struct_config__.tag,  # type: ignore[arg-type]
        schema_version=getattr(type(event), "schema_version", 1),
        aggregate_id=aggregate_id,
        occurred_at=occurred_at or datetime.now(UTC),
        correlation_id=correlation_id,
        causation_id=causation_id,
        actor=actor,
        data=event,
    )
    subject = subjects.event(aggregate, aggregate_id, event_name(event))
    return OutgoingEvent(subject=subject, data=msgspec.json.encode(envelope), headers=envelope_headers(envelope))


class AggregateRepository(Generic[C, S, E]):
    def __init__(
        self,
        store: EventStore,
        decider: Decider[C, S, E],
        event_type: Any,
        *,
        stream: str,
        cache_size: int = 50_000,
        deadline_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._decider = decider
        self._stream = stream
        self._decode = msgspec.json.Decoder(Envelope[event_type]).decode
        # least recently used states go first
        self._cache: LRUCache[str, Loaded[S]] = LRUCache(maxsize=cache_size)
        self._deadline_s = deadline_s
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self.conflicts = 0

    def decode(self, stored: StoredEvent) -> Envelope[E]:
        return self._decode(stored.data)

    async def history(self, aggregate_id: str) -> list[Envelope[E]]:
        scope = subjects.aggregate_filter(self._decider.aggregate, aggregate_id)
        return [self.decode(stored) for stored in await self._store.read(self._stream, scope)]

    async def load(self, aggregate_id: str, *, fresh: bool = True) -> Loaded[S]:
        """The aggregate's state. `fresh` reads past the cache (one round trip when nothing is
        new); a writer can skip it because its append is checked by the server anyway."""
        cached = self._cache.get(aggregate_id)
        if cached is not None and not fresh:
            return cached
        state = cached.state if cached else self._decider.initial_state(aggregate_id)
        version = cached.version if cached else 0
        scope = subjects.aggregate_filter(self._decider.aggregate, aggregate_id)
        for stored in await self._store.read(self._stream, scope, from_seq=version + 1):
            state = self._decider.evolve(state, self.decode(stored).data)
            version = stored.seq
        loaded = Loaded(state=state, version=version)
        self._cache[aggregate_id] = loaded
        return loaded

    def forget(self, aggregate_id: str) -> None:
        self._cache.pop(aggregate_id, None)

    def remember(self, aggregate_id: str, loaded: Loaded[S]) -> None:
        """Cache a state folded elsewhere (a replay of the whole stream) at its last sequence."""
        self._cache[aggregate_id] = loaded

    def cached(self, aggregate_id: str) -> Loaded[S] | None:
        """What the cache holds for the aggregate, without a read (it may be stale)."""
        return self._cache.get(aggregate_id)

    async def execute(self, aggregate_id: str, command: C, meta: EventMeta, *, new: bool = False) -> Executed[S, E]:
        """Decide against the current state and append; on a concurrent write, reload and decide
        again until the decision lands or the deadline passes. An empty decision appends nothing.

        `new`: the caller expects the aggregate not to exist yet (a creation), so an aggregate
        this process has not cached is decided against the initial state without a read; the
        append's expected sequence (nothing stored yet) is checked by the server, and if
        something was, the history is read and the command decided again.

        Writers in this process take turns per aggregate, so OCC conflicts come only from other
        replicas: a hot aggregate then costs one append per command, not a storm of retries."""
        lock = self._locks.get(aggregate_id)
        if lock is None:
            lock = self._locks[aggregate_id] = asyncio.Lock()
        try:
            async with lock:
                return await self._execute(aggregate_id, command, meta, new=new)
        finally:
            if not lock.locked() and not lock._waiters:
                self._locks.pop(aggregate_id, None)

    async def _execute(self, aggregate_id: str, command: C, meta: EventMeta, *, new: bool) -> Executed[S, E]:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._deadline_s
        scope = subjects.aggregate_filter(self._decider.aggregate, aggregate_id)
        cached = self._cache.get(aggregate_id) if new else None
        if new and cached is None:
            loaded = Loaded(state=self._decider.initial_state(aggregate_id), version=0)
        else:
            loaded = await self.load(aggregate_id, fresh=False)
        attempt = 0
        while True:
            attempt += 1
            now = self._clock()
            decided = self._decider.decide(command, loaded.state, now)
            if not decided:
                return Executed(state=loaded.state, version=loaded.version, events=[], attempts=attempt)
            envelopes = [self._envelope(aggregate_id, event, index, now, meta) for index, event in enumerate(decided)]
            outgoing = [
                OutgoingEvent(
                    subject=subjects.event(self._decider.aggregate, aggregate_id, event_name(env.data)),
                    data=msgspec.json.encode(env),
                    headers=envelope_headers(env),
                )
                for env in envelopes
            ]
            try:
                ack = await self._store.append_all(outgoing, expected_last_seq=loaded.version, occ_scope=scope)
            except WrongLastSequence:
                self.conflicts += 1
                if loop.time() >= give_up_at:
                    raise Unavailable(
                        f"{self._decider.aggregate} {aggregate_id} is contended; try again", retry_after=0.5
                    ) from None
                if attempt > 2:
                    # back off with jitter so a crowd of writers stops colliding in lockstep
                    await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # noqa: S311
                loaded = await self.load(aggregate_id, fresh=True)
                continue
            if ack.duplicate:
                # the same command landed before (a retry after a lost ack): report the stored truth
                loaded = await self.load(aggregate_id, fresh=True)
                return Executed(state=loaded.state, version=loaded.version, events=[], attempts=attempt)
            state = loaded.state
            for env in envelopes:
                state = self._decider.evolve(state, env.data)
            executed = Executed(state=state, version=ack.seq, events=envelopes, attempts=attempt)
            self._cache[aggregate_id] = Loaded(state=state, version=ack.seq)
            return executed

    def _envelope(self, aggregate_id: str, event: E, index: int, now: datetime, meta: EventMeta) -> Envelope[E]:
        event_id = (
            ids.derived_event_id(self._decider.aggregate, aggregate_id, meta.idempotency_key, str(index))
            if meta.idempotency_key
            else ids.new_event_id()
        )
        return Envelope(
            event_id=event_id,
            type=type(event).__struct_config__.tag,  # type: ignore[arg-type]
            schema_version=getattr(type(event), "schema_version", 1),
            aggregate_id=aggregate_id,
            occurred_at=now,
            correlation_id=meta.correlation_id,
            causation_id=meta.causation_id,
            actor=meta.actor,
            data=event,
        )
