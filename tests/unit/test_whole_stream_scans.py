"""A scan of a whole stream asks for every event (`EVERY_EVENT`), which the server reads in order,
instead of the stream's own subject filter, which makes it search its subject index on every
batch. That is the same set of events only while each stream holds one kind of aggregate: a
stream given a second subject would hand its events to replays that expect the first kind."""

from __future__ import annotations

from ccn_core.topology import STREAMS


def test_every_stream_holds_the_events_of_one_subject_tree() -> None:
    for spec in STREAMS:
        assert len(spec.subjects) == 1, spec.name
        assert spec.subjects[0].endswith(".>") and spec.subjects[0].count(".") == 2, spec.name
