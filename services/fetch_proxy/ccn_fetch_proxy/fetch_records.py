"""The fetch records (CCN_FETCH): one event per request a node made, whatever became of it,
filed under the domain's policy id (`ccn.fetch.<domain id>.<event>`). Records, not decisions:
appended without an expected sequence, the fetch id as the event id (so a retried append is
stored once)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ccn_core import subjects
from ccn_core.aggregate import envelope_headers, event_name
from ccn_core.eventstore import EventStore, OutgoingEvent
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.fetch import FetchEvent

AGGREGATE = "fetch"


def record_event(
    domain_id: str,
    event: FetchEvent,
    *,
    event_id: str,
    now: datetime,
    correlation_id: str,
    causation_id: str | None,
    actor: Actor,
) -> OutgoingEvent:
    envelope = Envelope(
        event_id=event_id,
        type=type(event).__struct_config__.tag,  # type: ignore[arg-type]  # every fetch event has a string tag
        schema_version=1,
        aggregate_id=domain_id,
        occurred_at=now,
        correlation_id=correlation_id,
        causation_id=causation_id,
        actor=actor,
        data=event,
    )
    return OutgoingEvent(
        subject=subjects.event(AGGREGATE, domain_id, event_name(event)),
        data=msgspec.json.encode(envelope),
        headers=envelope_headers(envelope),
    )


class FetchRecords:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def append(self, event: OutgoingEvent) -> None:
        await self._store.append(event)
