"""The fetch records (CCN_FETCH): one event per request a node made, whatever became of it,
filed under the domain's policy id (`ccn.fetch.<domain id>.<event>`). Records, not decisions:
appended without an expected sequence, the fetch id as the event id (so a retried append is
stored once)."""

from __future__ import annotations

from ccn_core.eventstore import EventStore, OutgoingEvent


class FetchRecords:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def append(self, event: OutgoingEvent) -> None:
        await self._store.append(event)
