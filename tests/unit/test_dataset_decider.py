"""The dataset decider (ccn_merge.dataset): proposals, provenance on every field, the review
flow, versions, retraction, hostile commands, and replay giving byte-identical datasets."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccn_core.decider import fold
from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_merge.dataset import DatasetDecider, event_subject, explain_field
from ccn_merge.dataset_state import DatasetState
from ccn_merge.merge_rules import explain
from ccn_merge.published import canonical_bytes, content_hash, snapshot
from ccn_merge.schema import DEFAULT_SCHEMA
from ccn_proto.datasets import (
    ApproveReview,
    DatasetEvent,
    MergeApplied,
    NodeRetracted,
    ProposeMerge,
    Provenance,
    PublishVersion,
    RecordKind,
    RecordProposal,
    RejectReview,
    RetractNode,
    ReviewApproved,
    ReviewRejected,
    ReviewRequested,
    VersionPublished,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)  # when the commands are decided: after every observation
DECIDER = DatasetDecider()
NAME = "grants"


def provenance(
    job: str, node: str = "node-a", source: str = "crawl", hours: float = 0, conf: float = 0.9
) -> Provenance:
    return Provenance(
        source=source,
        job_id=job,
        node_id=node,
        result_checksum=hashlib.sha256(job.encode()).hexdigest(),
        confidence=conf,
        observed_at=NOW + timedelta(hours=hours),
    )


def propose(
    prov: Provenance, fields: dict[str, Any], kind: RecordKind = "funder", record_id: str | None = None
) -> ProposeMerge:
    return ProposeMerge(
        dataset=NAME, provenance=prov, records=[RecordProposal(kind=kind, record_id=record_id, fields=fields)]
    )


class Dataset:
    """A dataset and its history, driven through decide and evolve as the service will."""

    def __init__(self) -> None:
        self.state = DECIDER.initial_state(NAME)
        self.events: list[DatasetEvent] = []

    def run(self, command: object, now: datetime = LATER) -> list[DatasetEvent]:
        events = DECIDER.decide(command, self.state, now)  # type: ignore[arg-type]
        for event in events:
            DECIDER.evolve(self.state, event)
        self.events += events
        return events

    def value(self, record_id: str, field: str) -> Any:
        return self.state.records[record_id].value(field)


GATES = {"name": "Bill & Melinda Gates Foundation", "ein": "56-2618866", "city": "Seattle", "country": "US"}


def test_a_proposal_becomes_candidates_with_provenance_on_every_field() -> None:
    ds = Dataset()
    [applied] = ds.run(propose(provenance("j1", source="irs-bmf"), GATES, record_id="fun-gates"))
    assert isinstance(applied, MergeApplied)
    assert {(c.field, c.before, c.after) for c in applied.changes} == {
        ("name", None, "Bill & Melinda Gates Foundation"),
        ("ein", None, "56-2618866"),
        ("city", None, "Seattle"),
        ("country", None, "US"),
    }
    ds.run(
        propose(
            provenance("j2", node="node-b", hours=1), {"website": "https://gatesfoundation.org"}, record_id="fun-gates"
        )
    )
    [record] = snapshot(DEFAULT_SCHEMA, ds.state).values()
    assert set(record.fields) == {"name", "ein", "city", "country", "website"}
    for name, published in record.fields.items():
        spec = DEFAULT_SCHEMA.field_of("funder", name)
        assert spec is not None and published.rule == spec.rule
        assert published.provenance, name
        job = "j2" if name == "website" else "j1"
        assert [p.job_id for p in published.provenance] == [job]
        assert published.provenance[0].result_checksum == hashlib.sha256(job.encode()).hexdigest()
        why = explain(ds.state.records["fun-gates"], spec)
        assert why.value == published.value and why.winners[0].job_id == job


def test_a_result_proposes_once() -> None:
    ds = Dataset()
    command = propose(provenance("j1"), GATES)
    assert ds.run(command)
    assert ds.run(command) == []
    assert (
        ds.run(msgspec.structs.replace(command, records=[RecordProposal(kind="funder", fields={"name": "Other"})]))
        == []
    )


def test_a_critical_change_waits_for_review_with_its_diff_and_applies_on_approval() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j1", source="irs-bmf"), GATES, record_id="fun-gates"))
    [held] = ds.run(
        propose(
            provenance("j2", source="irs-bmf", hours=2),
            {"ein": "99-1234567", "city": "Seattle WA"},
            record_id="fun-gates",
        )
    )
    assert isinstance(held, ReviewRequested)
    assert held.reasons == ["critical field ein changes"]
    assert [(c.field, c.before, c.after) for c in held.changes] == [
        ("city", "Seattle", "Seattle WA"),
        ("ein", "56-2618866", "99-1234567"),
    ]
    assert ds.value("fun-gates", "ein") == "56-2618866"  # nothing applied while it waits
    assert [r.review_id for r in ds.state.pending_reviews()] == [held.review_id]
    [approved] = ds.run(ApproveReview(dataset=NAME, review_id=held.review_id, reviewer="ana", comment="IRS re-issued"))
    assert isinstance(approved, ReviewApproved)
    assert (approved.reviewer, approved.comment, approved.record_id) == ("ana", "IRS re-issued", "fun-gates")
    assert [(c.field, c.after) for c in approved.changes] == [("city", "Seattle WA"), ("ein", "99-1234567")]
    assert ds.value("fun-gates", "ein") == "99-1234567"
    assert ds.state.reviews[held.review_id].status == "approved"
    with pytest.raises(Conflict, match="approved already"):
        ds.run(ApproveReview(dataset=NAME, review_id=held.review_id, reviewer="ana"))
    with pytest.raises(Conflict, match="approved already"):
        ds.run(RejectReview(dataset=NAME, review_id=held.review_id, reviewer="ana"))


def test_a_rejected_change_never_applies() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j1"), GATES, record_id="fun-gates"))
    [held] = ds.run(propose(provenance("j2", hours=1), {"name": "Gates Ventures"}, record_id="fun-gates"))
    assert isinstance(held, ReviewRequested) and held.reasons == ["critical field name changes"]
    [rejected] = ds.run(RejectReview(dataset=NAME, review_id=held.review_id, reviewer="bo", comment="a subsidiary"))
    assert rejected == ReviewRejected(review_id=held.review_id, reviewer="bo", comment="a subsidiary")
    assert ds.value("fun-gates", "name") == GATES["name"]
    with pytest.raises(NotFound):
        ds.run(ApproveReview(dataset=NAME, review_id="rev-" + "0" * 24, reviewer="bo"))


def test_a_low_confidence_change_waits_and_a_confirmation_does_not() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j1"), GATES, record_id="fun-gates"))
    [held] = ds.run(propose(provenance("j2", conf=0.3, hours=1), {"city": "Redmond"}, record_id="fun-gates"))
    assert isinstance(held, ReviewRequested) and held.reasons == ["low confidence 0.3 on city (below 0.5)"]
    # agreeing with the value changes nothing, so a doubtful source may add its support
    [applied] = ds.run(propose(provenance("j3", conf=0.3, hours=1), {"city": "seattle"}, record_id="fun-gates"))
    assert isinstance(applied, MergeApplied) and applied.changes == []
    # per-field confidence overrides the result's
    low = ProposeMerge(
        dataset=NAME,
        provenance=provenance("j4", hours=2),
        records=[
            RecordProposal(kind="funder", record_id="fun-gates", fields={"city": "Tacoma"}, confidence={"city": 0.1})
        ],
    )
    assert isinstance(ds.run(low)[0], ReviewRequested)


def test_an_ambiguous_match_waits_and_the_reviewer_picks_the_record() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j1"), {"name": "Comic Relief", "city": "London", "country": "GB"}, record_id="fun-uk"))
    ds.run(
        propose(
            provenance("j2"),
            {"name": "Comic Relief Inc", "city": "Los Angeles", "region": "CA", "country": "US"},
            record_id="fun-us",
        )
    )
    [held] = ds.run(propose(provenance("j3"), {"name": "Comic Relief", "description": "Red Nose Day"}))
    assert isinstance(held, ReviewRequested)
    assert held.stitch_candidates == ["fun-uk", "fun-us"]
    assert held.reasons[0].startswith("ambiguous: it could be any of 2 records")
    with pytest.raises(BadInput, match="not one this change could join"):
        ds.run(ApproveReview(dataset=NAME, review_id=held.review_id, reviewer="cy", record_id="fun-other"))
    ds.run(ApproveReview(dataset=NAME, review_id=held.review_id, reviewer="cy", record_id="fun-uk"))
    assert ds.value("fun-uk", "description") == "Red Nose Day"
    assert held.record.record_id not in ds.state.records


def test_versions_are_numbered_immutable_and_hash_the_canonical_bytes() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j0"), GATES))
    [v1] = ds.run(PublishVersion(dataset=NAME, by="ops"))
    assert isinstance(v1, VersionPublished)
    with pytest.raises(Conflict, match="nothing changed since version 1"):
        ds.run(PublishVersion(dataset=NAME, by="ops"))
    assert (v1.version, v1.records, v1.schema_version, v1.by) == (1, 1, DEFAULT_SCHEMA.version, "ops")
    assert v1.content_hash == hashlib.sha256(canonical_bytes(DEFAULT_SCHEMA, ds.state)).hexdigest()
    ds.run(propose(provenance("j1", hours=1), {"name": "Wellcome Trust", "country": "GB"}))
    [v2] = ds.run(PublishVersion(dataset=NAME, by="ops", note="second"))
    assert isinstance(v2, VersionPublished) and (v2.version, v2.records) == (2, 2)
    assert v2.content_hash != v1.content_hash
    assert [v.version for v in ds.state.versions] == [1, 2]


def test_retracting_a_node_restores_the_previous_values_and_publishes_a_version() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j1", node="honest"), GATES, record_id="fun-gates"))
    ds.run(
        propose(
            provenance("j2", node="forger", hours=1),
            {"city": "Nowhere", "website": "https://forged.example", "categories": ["health"]},
            record_id="fun-gates",
        )
    )
    ds.run(propose(provenance("j3", node="forger", hours=1), {"name": "Forged Fund", "country": "DE"}))
    [held] = ds.run(propose(provenance("j4", node="forger", hours=2), {"ein": "11-1111111"}, record_id="fun-gates"))
    assert isinstance(held, ReviewRequested)
    ds.run(PublishVersion(dataset=NAME, by="ops"))
    assert ds.value("fun-gates", "city") == "Nowhere"
    before = content_hash(DEFAULT_SCHEMA, ds.state)
    retracted, version = ds.run(RetractNode(dataset=NAME, node_id="forger", by="ops", reason="forged results"))
    assert isinstance(retracted, NodeRetracted) and isinstance(version, VersionPublished)
    assert retracted.candidates_dropped == 5
    assert retracted.reviews_dropped == [held.review_id]
    assert [(c.field, c.before, c.after) for c in retracted.changes if c.record_id == "fun-gates"] == [
        ("categories", ["health"], None),
        ("city", "Nowhere", "Seattle"),
        ("website", "https://forged.example", None),
    ]
    assert ds.value("fun-gates", "city") == "Seattle"
    assert ds.state.reviews[held.review_id].status == "dropped"
    assert version.version == 2 and version.records == 1  # the forger's own funder is gone
    # the version's hash, decided before the retraction applied, is the dataset's after it
    assert (version.content_hash, version.records) == content_hash(DEFAULT_SCHEMA, ds.state) != before
    # history is kept: the retracted candidates are still there, and say why they lost
    spec = DEFAULT_SCHEMA.field_of("funder", "city")
    assert spec is not None
    why = explain(ds.state.records["fun-gates"], spec)
    assert [lost.why for lost in why.losers] == ["retracted: node forger's contributions were withdrawn"]
    with pytest.raises(NotFound, match="no contributions"):
        ds.run(RetractNode(dataset=NAME, node_id="forger", by="ops"))


def test_retracting_since_a_time_keeps_the_nodes_earlier_contributions() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j1", node="n"), {"name": "Arts Fund", "city": "Leeds"}, record_id="fun-a"))
    ds.run(propose(provenance("j2", node="n", hours=5), {"city": "York"}, record_id="fun-a"))
    [retracted, _] = ds.run(RetractNode(dataset=NAME, node_id="n", since=NOW + timedelta(hours=1), by="ops"))
    assert isinstance(retracted, NodeRetracted) and retracted.candidates_dropped == 1
    assert ds.value("fun-a", "city") == "Leeds" and ds.value("fun-a", "name") == "Arts Fund"


@pytest.mark.parametrize(
    ("command", "why"),
    [
        (propose(provenance("j"), {"name": "x" * 100_000}), "longer than"),
        (propose(provenance("j"), {"name": "bell\x07"}), r"U\+0007"),
        (propose(provenance("j"), {"description": "\ud800"}), r"U\+D800"),
        (propose(provenance("j"), {"amount_max": float("nan")}, kind="opportunity"), "not a finite number"),
        (propose(provenance("j"), {"amount_max": 10**40}, kind="opportunity"), "64-bit"),
        (propose(provenance("j"), {"aliases": [[[["deep"]]]]}), "must be text"),
        (propose(provenance("j"), {"name": "ok", "colour": "red"}), "has no field 'colour'"),
        (propose(provenance("j"), {"name": None}), "proposes no value"),
        (propose(provenance("j", conf=float("nan")), {"name": "ok"}), "not a finite number"),
        (propose(provenance("j", conf=1.5), {"name": "ok"}), "not valid"),
        (
            propose(msgspec.structs.replace(provenance("j"), observed_at=datetime(2026, 1, 1)), {"name": "ok"}),
            "time zone",
        ),
        (propose(provenance("j", hours=30), {"name": "ok"}), "in the future"),
        (ProposeMerge(dataset="other", provenance=provenance("j"), records=[]), "not valid"),
        (
            ProposeMerge(
                dataset=NAME,
                provenance=provenance("j"),
                records=[RecordProposal(kind="funder", fields={"name": "a"})] * 1001,
            ),
            "not valid",
        ),
        (ProposeMerge(dataset="Other Set", provenance=provenance("j"), records=[]), "not valid"),
        (
            ProposeMerge(
                dataset=NAME,
                provenance=provenance("j"),
                records=[
                    RecordProposal(kind="funder", record_id="r-1", fields={"name": "a"}),
                    RecordProposal(kind="opportunity", record_id="r-1", fields={"title": "b"}),
                ],
            ),
            "proposed as two kinds",
        ),
        (PublishVersion(dataset="other", by="ops"), "not grants"),
        (RetractNode(dataset=NAME, node_id="n", since=datetime(2026, 1, 1), by="ops"), "time zone"),
        (ApproveReview(dataset=NAME, review_id="not-a-review", reviewer="a"), "not valid"),
        (object(), "not a dataset command"),
    ],
)
def test_every_bad_command_is_a_typed_error(command: object, why: str) -> None:
    with pytest.raises(BadInput, match=why):
        Dataset().run(command)


def test_hostile_nesting_is_refused_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(BadInput, match="nests deeper"):
        Dataset().run(propose(provenance("j"), {"aliases": deep}))


# ---- replay ----

NAMES = ["Arts Council", "Wellcome Trust", "Nuffield Foundation", "Nuffield Trust", "Knight Foundation"]
NODES = ["n1", "n2", "n3"]


@st.composite
def commands(draw: st.DrawFn) -> list[object]:
    out: list[object] = []
    for step in range(draw(st.integers(min_value=1, max_value=12))):
        what = draw(st.sampled_from(["propose", "propose", "propose", "publish", "retract", "review"]))
        if what == "propose":
            fields: dict[str, Any] = {"name": draw(st.sampled_from(NAMES))}
            if draw(st.booleans()):
                fields["city"] = draw(st.sampled_from(["London", "Leeds", "london "]))
            if draw(st.booleans()):
                fields["categories"] = draw(st.lists(st.sampled_from(["arts", "health", "Arts"]), max_size=3))
            record_id = draw(st.sampled_from([None, "fun-a", "fun-b"]))
            prov = provenance(
                f"job-{step}",
                node=draw(st.sampled_from(NODES)),
                source=draw(st.sampled_from(["crawl", "irs-bmf"])),
                hours=draw(st.integers(min_value=0, max_value=5)),
                conf=draw(st.sampled_from([0.3, 0.8, 1.0])),
            )
            out.append(propose(prov, fields, record_id=record_id))
        elif what == "publish":
            out.append(PublishVersion(dataset=NAME, by="ops"))
        elif what == "retract":
            out.append(RetractNode(dataset=NAME, node_id=draw(st.sampled_from(NODES)), by="ops"))
        else:
            out.append(draw(st.sampled_from(["approve", "reject"])))
    return out


def _drive(script: list[object]) -> Dataset:
    ds = Dataset()
    for command in script:
        if command in ("approve", "reject"):
            pending = ds.state.pending_reviews()
            if not pending:
                continue
            review = pending[0].review_id
            command = (
                ApproveReview(dataset=NAME, review_id=review, reviewer="r")
                if command == "approve"
                else RejectReview(dataset=NAME, review_id=review, reviewer="r")
            )
        try:
            ds.run(command)
        except (Conflict, NotFound):
            continue  # nothing to publish, or nothing of that node to retract: refused, typed
    return ds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands())
def test_replaying_the_same_events_gives_byte_identical_datasets(script: list[object]) -> None:
    ds = _drive(script)
    live = canonical_bytes(DEFAULT_SCHEMA, ds.state)
    # through the wire format and back, twice: the same bytes every time
    wire = [msgspec.json.encode(event) for event in ds.events]
    for _ in range(2):
        decoded: list[DatasetEvent] = [msgspec.json.decode(raw, type=DatasetEvent) for raw in wire]
        replayed: DatasetState = fold(DECIDER, NAME, decoded)
        assert canonical_bytes(DEFAULT_SCHEMA, replayed) == live
    # and every version's hash is what the dataset held when it was published
    for index, event in enumerate(ds.events):
        if isinstance(event, VersionPublished):
            upto = fold(DECIDER, NAME, ds.events[: index + 1])
            assert content_hash(DEFAULT_SCHEMA, upto) == (event.content_hash, event.records)


def test_the_same_commands_decide_the_same_events() -> None:
    script: list[object] = [
        propose(provenance("a", node="n1"), {"name": "Arts Council", "city": "Leeds"}),
        propose(provenance("b", node="n2", hours=1), {"name": "Arts Council England", "city": "leeds"}),
        PublishVersion(dataset=NAME, by="ops"),
        RetractNode(dataset=NAME, node_id="n2", by="ops"),
    ]
    first, second = _drive(script), _drive(script)
    assert msgspec.json.encode(first.events) == msgspec.json.encode(second.events)


def test_events_go_to_the_dataset_subjects() -> None:
    [applied] = Dataset().run(propose(provenance("j1"), GATES))
    assert event_subject(NAME, applied) == "ccn.dataset.grants.merge_applied"
    version = VersionPublished(
        version=1, content_hash="0" * 64, records=0, schema_version="1", by="ops", published_at=NOW
    )
    assert event_subject("grants-2026", version) == "ccn.dataset.grants-2026.version_published"


FIELD_NAMES = sorted({f.name for r in DEFAULT_SCHEMA.records for f in r.fields} | {"Bad Name", "x" * 70})
HOSTILE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["https://example.org/", "12-3456789", "2027-01-31", "10,000", "GB", "usd"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["funder", "opportunity"]),
    fields=st.dictionaries(st.sampled_from(FIELD_NAMES), HOSTILE, max_size=5),
    confidence=st.floats(allow_nan=True, allow_infinity=True),
)
def test_any_proposal_is_merged_or_refused_with_a_typed_error(
    kind: Any, fields: dict[str, Any], confidence: float
) -> None:
    ds = Dataset()
    ds.run(propose(provenance("seed"), {"name": "Arts Council", "city": "Leeds"}, record_id="fun-a"))
    command = propose(msgspec.structs.replace(provenance("j"), confidence=confidence), fields, kind=kind)
    try:
        events = ds.run(command)
    except BadInput:
        return
    assert events and canonical_bytes(DEFAULT_SCHEMA, ds.state) == canonical_bytes(
        DEFAULT_SCHEMA, fold(DECIDER, NAME, ds.events)
    )


def test_explain_field_answers_or_says_what_is_wrong() -> None:
    ds = Dataset()
    ds.run(propose(provenance("j1", source="irs-bmf"), GATES, record_id="fun-gates"))
    why = explain_field(DEFAULT_SCHEMA, ds.state, "fun-gates", "ein")
    assert why.value == "56-2618866" and why.rule == "prefer_source"
    with pytest.raises(NotFound, match="no record 'fun-nope'"):
        explain_field(DEFAULT_SCHEMA, ds.state, "fun-nope", "ein")
    with pytest.raises(BadInput, match="a funder has no field 'deadline'"):
        explain_field(DEFAULT_SCHEMA, ds.state, "fun-gates", "deadline")
