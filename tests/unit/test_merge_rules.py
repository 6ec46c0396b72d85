"""Field-level merge rules (ccn_merge.merge_rules) and the schema's cleaning and comparison:
each rule on a table of candidates, fallback when the winner is retracted, explain."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ccn_core.errors import BadInput
from ccn_merge.merge_rules import (
    MAX_CANDIDATES_PER_FIELD,
    Candidate,
    FieldState,
    RecordState,
    choose,
    explain,
    new_candidate,
    with_candidate,
)
from ccn_merge.schema import DEFAULT_SCHEMA, FieldSpec, clean_value, comparison_key, same_value
from ccn_proto.datasets import FieldValue, Provenance

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def provenance(
    job: str, *, node: str = "node-a", source: str = "crawl", hours: int = 0, conf: float = 1.0
) -> Provenance:
    return Provenance(
        source=source,
        job_id=job,
        node_id=node,
        result_checksum=hashlib.sha256(job.encode()).hexdigest(),
        confidence=conf,
        observed_at=T0 + timedelta(hours=hours),
    )


def candidates(spec: FieldSpec, *rows: tuple[FieldValue, Provenance]) -> list[Candidate]:
    out: list[Candidate] = []
    for seq, (value, prov) in enumerate(rows):
        out = with_candidate(spec, out, new_candidate(spec, value, prov, prov.confidence, seq))
    return out


def spec(rule: str, kind: str = "text", **extra: object) -> FieldSpec:
    return msgspec.convert({"name": "f", "kind": kind, "rule": rule, **extra}, FieldSpec)


def test_overwrite_takes_the_newest_observation_whatever_the_arrival_order() -> None:
    field = spec("overwrite")
    rows = candidates(field, ("new", provenance("j1", hours=5)), ("old", provenance("j2", hours=1)))
    winner = choose(field, rows)
    assert winner is not None
    assert (winner.value, winner.rule, winner.chosen) == ("new", "overwrite", (0,))


def test_prefer_source_takes_the_best_ranked_source_then_the_newest() -> None:
    field = spec("prefer_source", kind="ein", source_priority=["irs-bmf", "grants-gov"])
    rows = candidates(
        field,
        ("11-1111111", provenance("j1", source="crawl", hours=9)),
        ("22-2222222", provenance("j2", source="grants-gov", hours=1)),
        ("33-3333333", provenance("j3", source="irs-bmf", hours=0)),
        ("44-4444444", provenance("j4", source="irs-bmf", hours=2)),
    )
    winner = choose(field, rows)
    assert winner is not None and winner.value == "44-4444444"
    rows[3].retracted = True
    assert (fallback := choose(field, rows)) is not None and fallback.value == "33-3333333"
    rows[2].retracted = True
    assert (fallback := choose(field, rows)) is not None and fallback.value == "22-2222222"


def test_min_and_max_compare_amounts_as_numbers_and_dates_as_dates() -> None:
    amounts = [(9_000, provenance("a")), (10_000, provenance("b")), (500, provenance("c"))]
    low, high = choose(spec("min", "amount"), candidates(spec("min", "amount"), *amounts)), None
    high = choose(spec("max", "amount"), candidates(spec("max", "amount"), *amounts))
    assert low is not None and high is not None
    assert (low.value, high.value) == (500, 10_000)  # 9000 > 10000 as text: numbers, not strings
    dates = [("2027-01-31", provenance("a")), ("2026-12-15", provenance("b"))]
    earliest = choose(spec("min", "date"), candidates(spec("min", "date"), *dates))
    assert earliest is not None and earliest.value == "2026-12-15"


def test_confidence_weighted_sums_agreeing_candidates_and_ignores_formatting() -> None:
    field = spec("confidence_weighted", "name")
    rows = candidates(
        field,
        ("Nuffield Trust", provenance("a", node="n1", conf=0.9)),
        ("nuffield  trust", provenance("b", node="n2", conf=0.4)),
        ("Nuffield Foundation", provenance("c", node="n3", conf=0.95, hours=3)),
    )
    winner = choose(field, rows)
    assert winner is not None
    assert winner.value == "Nuffield Trust"  # 0.9 + 0.4 beats 0.95, spelt as the surer one spelt it
    assert winner.chosen == (0, 1)
    assert "1.3 from 2 candidate(s)" in winner.reason


def test_append_is_a_bounded_set_union_keeping_the_best_supported_items() -> None:
    field = spec("append", "text_list", max_items=3)
    rows = candidates(
        field,
        (["Youth", "arts"], provenance("a")),
        (["youth ", "Environment"], provenance("b")),
        (["zoology", "environment", "Arts"], provenance("c")),
        (["aardvarks"], provenance("d")),
    )
    winner = choose(field, rows)
    assert winner is not None
    assert winner.value == ["arts", "Environment", "Youth"]  # twice each; "aardvarks" once, past the bound
    assert winner.chosen == (0, 1, 2)
    assert "1 item(s) past the bound of 3" in winner.reason or "2 item(s) past the bound of 3" in winner.reason


def test_every_rule_falls_back_when_its_winner_is_retracted() -> None:
    for rule, kind in [
        ("overwrite", "text"),
        ("prefer_source", "text"),
        ("min", "amount"),
        ("max", "amount"),
        ("confidence_weighted", "text"),
    ]:
        field = spec(rule, kind, source_priority=["a", "b"])
        first: FieldValue = 5 if kind == "amount" else "first"
        second: FieldValue = 7 if kind == "amount" else "second"
        rows = candidates(
            field,
            (first, provenance("j1", node="good", source="b")),
            (second, provenance("j2", node="bad", source="a")),
        )
        bad = next(c for c in rows if c.provenance.node_id == "bad")
        bad.retracted = True
        winner = choose(field, rows)
        assert winner is not None and winner.value == first, rule
        for candidate in rows:
            candidate.retracted = True
        assert choose(field, rows) is None


def test_a_full_field_evicts_the_oldest_observation_not_behind_the_winner() -> None:
    field = spec("overwrite")
    rows = candidates(field, *[(f"v{i}", provenance(f"j{i}", hours=i)) for i in range(MAX_CANDIDATES_PER_FIELD + 5)])
    assert len(rows) == MAX_CANDIDATES_PER_FIELD
    assert min(c.seq for c in rows) == 5
    assert (winner := choose(field, rows)) is not None and winner.value == f"v{MAX_CANDIDATES_PER_FIELD + 4}"


def test_explain_names_the_rule_the_winner_and_why_each_other_candidate_lost() -> None:
    field = spec("prefer_source", "ein", source_priority=["irs-bmf", "crawl"])
    record = RecordState(record_id="fun-1", kind="funder")
    rows = candidates(
        field,
        ("12-3456789", provenance("irs-job", source="irs-bmf", node="n1")),
        ("98-7654321", provenance("crawl-job", source="crawl", node="n2", hours=4)),
        ("55-5555555", provenance("forged", source="irs-bmf", node="bad", hours=1)),
    )
    rows[2].retracted = True
    record.fields["f"] = FieldState(candidates=rows, winner=choose(field, rows))
    why = explain(record, field)
    assert why.value == "12-3456789" and why.rule == "prefer_source"
    assert [w.job_id for w in why.winners] == ["irs-job"]
    assert {lost.candidate.job_id: lost.why for lost in why.losers} == {
        "crawl-job": "source 'crawl' ranks below 'irs-bmf'",
        "forged": "retracted: node bad's contributions were withdrawn",
    }
    assert why.text.splitlines()[0] == "fun-1.f = '12-3456789'"
    assert "rule: prefer_source" in why.text
    assert "won:  '12-3456789' from irs-bmf (job irs-job, node n1" in why.text
    assert "lost: '98-7654321' from crawl (job crawl-job, node n2" in why.text


def test_explain_of_a_field_with_no_candidate_left() -> None:
    field = spec("overwrite")
    why = explain(RecordState(record_id="r", kind="funder"), field)
    assert why.value is None and why.winners == [] and why.losers == []
    assert why.text.startswith("r.f: no value")


@pytest.mark.parametrize(
    ("kind", "raw", "clean"),
    [
        ("ein", "123456789", "12-3456789"),
        ("ein", " 12-3456789 ", "12-3456789"),
        ("amount", "10,000", 10_000),
        ("amount", 2500.0, 2500),
        ("country", "gb", "GB"),
        ("currency", "usd", "USD"),
        ("text", "  Arts   Council\u00a0England ", "Arts Council England"),
        ("text_list", ["b", "A", "a "], ["A", "b"]),
        ("date", "2027-02-28", "2027-02-28"),
        ("url", "HTTPS://Example.org/Grants", "HTTPS://Example.org/Grants"),
    ],
)
def test_clean_value_checks_and_tidies(kind: str, raw: object, clean: FieldValue) -> None:
    assert clean_value(spec("overwrite", kind), raw) == clean


@pytest.mark.parametrize(
    ("kind", "raw", "why"),
    [
        ("ein", "12-345", "US EIN"),
        ("amount", float("nan"), "finite"),
        ("amount", float("inf"), "finite"),
        ("amount", -1, "between"),
        ("amount", 10**30, "between"),
        ("amount", True, "boolean"),
        ("amount", "1e9", "whole number"),
        ("date", "2027-02-30", "calendar"),
        ("text", "a\x00b", r"U\+0000"),
        ("text", "line\nbreak", r"U\+000A"),
        ("text", "x" * 5000, "longer than"),
        ("text", {"nested": ["deep"]}, "must be text"),
        ("text", "   ", "empty"),
        ("text_list", [["deep"]], "must be text"),
        ("text_list", ["x"] * 51, "more than 50"),
        ("url", "javascript:alert(1)", "scheme"),
        ("long_text", "ok\x1b[31m", r"U\+001B"),
        ("country", "GBR", "alpha-2"),
    ],
)
def test_clean_value_refuses_hostile_values_with_a_typed_error(kind: str, raw: object, why: str) -> None:
    with pytest.raises(BadInput, match=why) as caught:
        clean_value(spec("overwrite", kind), raw)
    assert caught.value.field == "f"


def test_comparison_ignores_formatting_only() -> None:
    url, name, amount = spec("overwrite", "url"), DEFAULT_SCHEMA.field_of("funder", "name"), spec("max", "amount")
    assert name is not None
    assert same_value(url, "https://Example.org/grants/", "http://example.org/grants")
    assert not same_value(url, "https://example.org/grants", "https://example.org/other")
    assert same_value(name, "The Bill & Melinda Gates Foundation, Inc.", "BILL AND MELINDA GATES FOUNDATION")
    assert not same_value(name, "Nuffield Foundation", "Nuffield Trust")
    assert same_value(amount, clean_value(amount, "10,000"), 10000)
    assert comparison_key(spec("append", "text_list"), ["B", "a"]) == comparison_key(
        spec("append", "text_list"), ["a ", "b"]
    )
    assert same_value(url, None, None) and not same_value(url, None, "https://example.org/")


def test_the_schema_metadata_decides_the_merge() -> None:
    """The same candidates under other metadata choose another value: the rule is data."""
    rows_for = [("first", provenance("j1", source="irs-bmf")), ("second", provenance("j2", source="crawl", hours=1))]
    newest = choose(spec("overwrite"), candidates(spec("overwrite"), *rows_for))
    preferred_spec = spec("prefer_source", source_priority=["irs-bmf"])
    preferred = choose(preferred_spec, candidates(preferred_spec, *rows_for))
    assert newest is not None and preferred is not None
    assert (newest.value, preferred.value) == ("second", "first")
    changed = msgspec.structs.replace(DEFAULT_SCHEMA, review_below=0.7)
    assert changed.fingerprint() != DEFAULT_SCHEMA.fingerprint()
