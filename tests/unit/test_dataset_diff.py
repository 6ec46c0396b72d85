"""Dataset diffs (ccn_merge.diff): two published versions, record by record and field by
field, schema-aware, as data and as a table."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from ccn_core.errors import NotFound
from ccn_merge.dataset import DatasetDecider, snapshot_at
from ccn_merge.diff import DatasetDiff, diff_table, diff_versions
from ccn_merge.published import PublishedField, PublishedRecord
from ccn_merge.schema import DEFAULT_SCHEMA
from ccn_proto.datasets import (
    DatasetEvent,
    ProposeMerge,
    Provenance,
    PublishVersion,
    RecordKind,
    RecordProposal,
    RetractNode,
)

NOW = datetime(2026, 12, 7, tzinfo=UTC)
DECIDER = DatasetDecider()


def _history() -> list[DatasetEvent]:
    state = DECIDER.initial_state("grants")
    events: list[DatasetEvent] = []
    step = 0

    def run(command: object) -> None:
        for event in DECIDER.decide(command, state, NOW + timedelta(days=1)):  # type: ignore[arg-type]
            DECIDER.evolve(state, event)
            events.append(event)

    def propose(record_id: str, fields: dict[str, Any], node: str = "n1", kind: RecordKind = "opportunity") -> None:
        nonlocal step
        step += 1
        prov = Provenance(
            source="grants-gov",
            job_id=f"job-{step}",
            node_id=node,
            result_checksum=hashlib.sha256(str(step).encode()).hexdigest(),
            observed_at=NOW + timedelta(hours=step),
        )
        run(
            ProposeMerge(
                dataset="grants",
                provenance=prov,
                records=[RecordProposal(kind=kind, record_id=record_id, fields=fields)],
            )
        )

    propose("opp-1", {"title": "Rivers Grant", "url": "https://Example.org/rivers/", "amount_min": "5,000"})
    propose("opp-2", {"title": "Arts Grant", "currency": "usd"}, node="bad")
    propose("opp-4", {"title": "Forged Grant"}, node="bad")
    run(PublishVersion(dataset="grants", by="ops"))
    # version 2: opp-1's URL and title spelt otherwise (no change), a new lower minimum (a
    # change), opp-3 added, opp-4 removed (its only contributor retracted), opp-2's title gone
    propose("opp-1", {"url": "http://example.org/rivers", "amount_min": 4000, "title": "Rivers  grant"})
    propose("opp-3", {"title": "Youth Fund", "eligibility": ["nonprofit", "school"]})
    propose("opp-2", {"currency": "USD"})
    run(RetractNode(dataset="grants", node_id="bad", by="ops"))
    return events


EVENTS = _history()


def test_diff_of_two_versions_lists_added_removed_and_changed_fields() -> None:
    v1 = snapshot_at(DECIDER, "grants", EVENTS, 1)
    v2 = snapshot_at(DECIDER, "grants", EVENTS, 2)
    diff = diff_versions(DEFAULT_SCHEMA, v1, v2, dataset="grants", from_version=1, to_version=2)
    assert [r.record_id for r in diff.added] == ["opp-3"]
    assert [(f.field, f.before, f.after) for f in diff.added[0].fields] == [
        ("eligibility", None, ["nonprofit", "school"]),
        ("title", None, "Youth Fund"),
    ]
    assert [r.record_id for r in diff.changed] == ["opp-1", "opp-2"]
    # opp-1: only the amount moved; the URL and the title differ in formatting alone
    assert [(f.field, f.before, f.after) for f in diff.changed[0].fields] == [("amount_min", 5000, 4000)]
    # opp-2: its title was the retracted node's; the currency another node confirmed stays
    assert [(f.field, f.before, f.after) for f in diff.changed[1].fields] == [("title", "Arts Grant", None)]
    assert [(r.record_id, [(f.field, f.before, f.after) for f in r.fields]) for r in diff.removed] == [
        ("opp-4", [("title", "Forged Grant", None)])
    ]
    assert not diff.empty


def test_a_record_with_no_value_left_is_removed() -> None:
    record = PublishedRecord(
        record_id="opp-9",
        kind="opportunity",
        fields={"title": PublishedField(value="Gone", rule="confidence_weighted", provenance=[])},
    )
    diff = diff_versions(DEFAULT_SCHEMA, {"opp-9": record}, {}, dataset="grants", from_version=3, to_version=4)
    assert [(r.record_id, [(f.field, f.before, f.after) for f in r.fields]) for r in diff.removed] == [
        ("opp-9", [("title", "Gone", None)])
    ]


def test_a_version_diffed_with_itself_is_empty_and_says_so() -> None:
    v1 = snapshot_at(DECIDER, "grants", EVENTS, 1)
    diff = diff_versions(DEFAULT_SCHEMA, v1, v1, dataset="grants", from_version=1, to_version=1)
    assert diff.empty
    assert diff_table(diff) == "dataset grants: version 1 -> 1: 0 added, 0 removed, 0 changed\n(no differences)\n"


def test_fields_the_schema_does_not_know_compare_as_they_are() -> None:
    def record(value: str) -> PublishedRecord:
        return PublishedRecord(
            record_id="r",
            kind="funder",
            fields={"legacy": PublishedField(value=value, rule="overwrite", provenance=[])},
        )

    diff = diff_versions(
        DEFAULT_SCHEMA, {"r": record("A")}, {"r": record("a")}, dataset="d", from_version=1, to_version=2
    )
    assert [(f.field, f.before, f.after) for f in diff.changed[0].fields] == [("legacy", "A", "a")]


def test_the_table_shows_one_row_per_field() -> None:
    diff = diff_versions(
        DEFAULT_SCHEMA,
        snapshot_at(DECIDER, "grants", EVENTS, 1),
        snapshot_at(DECIDER, "grants", EVENTS, 2),
        dataset="grants",
        from_version=1,
        to_version=2,
    )
    lines = diff_table(diff).splitlines()
    assert lines[0] == "dataset grants: version 1 -> 2: 1 added, 1 removed, 2 changed"
    assert lines[1].split() == ["change", "record", "field", "before", "after"]
    rows = [re.split(r"\s{2,}", line) for line in lines[3:]]  # columns are two spaces apart at least
    assert rows == [
        ["added", "opp-3", "eligibility", "-", "nonprofit, school"],
        ["added", "opp-3", "title", "-", "Youth Fund"],
        ["removed", "opp-4", "title", "Forged Grant", "-"],
        ["changed", "opp-1", "amount_min", "5000", "4000"],
        ["changed", "opp-2", "title", "Arts Grant", "-"],
    ]


def test_the_table_escapes_and_shortens_long_values() -> None:
    record = PublishedRecord(
        record_id="opp-x",
        kind="opportunity",
        fields={
            "description": PublishedField(value="line one\nline two " + "x" * 200, rule="overwrite", provenance=[])
        },
    )
    table = diff_table(diff_versions(DEFAULT_SCHEMA, {}, {"opp-x": record}, dataset="d", from_version=0, to_version=1))
    row = table.splitlines()[-1]
    assert "line one\\nline two" in row and row.endswith("…") and "\n" not in row


def test_the_diff_is_data_that_round_trips() -> None:
    diff = diff_versions(
        DEFAULT_SCHEMA,
        snapshot_at(DECIDER, "grants", EVENTS, 1),
        snapshot_at(DECIDER, "grants", EVENTS, 2),
        dataset="grants",
        from_version=1,
        to_version=2,
    )
    assert msgspec.json.decode(msgspec.json.encode(diff), type=DatasetDiff) == diff


def test_an_unknown_version_is_not_found() -> None:
    with pytest.raises(NotFound, match="no version 9"):
        snapshot_at(DECIDER, "grants", EVENTS, 9)
