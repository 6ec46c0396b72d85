"""Comparators (ccn_jobs.consensus_rules): each rule as a table of two results and whether they
agree, the edge cases among them, and the specs the job types declare."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest

from ccn_jobs.consensus_rules import (
    EXACT,
    MAX_FUZZY_CHARS,
    MAX_SET_ITEMS,
    Comparator,
    ConsensusSpec,
    FuzzyText,
    Ignored,
    NumericTolerance,
    SetOverlap,
    results_agree,
)
from ccn_jobs.registry import JOB_TYPES, result_to_builtins, run_job
from ccn_proto.canonical import canonical_result_bytes

NUMERIC = Comparator(rules=(NumericTolerance(path="score", abs_tol=0.01),))
RELATIVE = Comparator(rules=(NumericTolerance(path="score", rel_tol=0.001),))
NESTED = Comparator(rules=(NumericTolerance(path="parts[].points", abs_tol=0.1),))
FUZZY = Comparator(rules=(FuzzyText(path="text", threshold=0.9),))
ENTITIES = Comparator(rules=(SetOverlap(path="entities", key_fields=("type", "value"), threshold=0.5),))
SCALARS = Comparator(rules=(SetOverlap(path="tags", threshold=1.0),))
IGNORED = Comparator(rules=(Ignored(path="fetch.etag"),))

LONG = "word " * 200
CASES: list[tuple[str, Comparator, dict[str, Any], dict[str, Any], bool]] = [
    ("exact: same keys in another order", EXACT, {"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, True),
    ("exact: a list in another order", EXACT, {"a": [1, 2]}, {"a": [2, 1]}, False),
    ("exact: 1 and 1.0 encode apart", EXACT, {"a": 1}, {"a": 1.0}, False),
    ("exact: NaN and null encode alike", EXACT, {"a": math.nan}, {"a": None}, True),
    ("exact: empty results", EXACT, {}, {}, True),
    ("numeric: within abs_tol", NUMERIC, {"score": 50.0, "x": 1}, {"score": 50.009, "x": 1}, True),
    ("numeric: past abs_tol", NUMERIC, {"score": 50.0}, {"score": 50.02}, False),
    ("numeric: other fields still exact", NUMERIC, {"score": 50.0, "x": 1}, {"score": 50.0, "x": 2}, False),
    ("numeric: NaN agrees with NaN", NUMERIC, {"score": math.nan}, {"score": math.nan}, True),
    ("numeric: NaN never with a number", NUMERIC, {"score": math.nan}, {"score": 0.0}, False),
    ("numeric: infinities alike", NUMERIC, {"score": math.inf}, {"score": math.inf}, True),
    ("numeric: opposite infinities", NUMERIC, {"score": math.inf}, {"score": -math.inf}, False),
    ("numeric: a bool is not a number", NUMERIC, {"score": True}, {"score": 1}, False),
    ("numeric: a number and a string", NUMERIC, {"score": 1}, {"score": "1"}, False),
    ("numeric: null and null", NUMERIC, {"score": None}, {"score": None}, True),
    ("numeric: absent in one", NUMERIC, {"score": 1.0}, {}, False),
    ("numeric: absent in both", NUMERIC, {"x": 1}, {"x": 1}, True),
    ("numeric: huge ints past float range", NUMERIC, {"score": 10**400}, {"score": 10**400}, True),
    ("numeric: relative", RELATIVE, {"score": 1000.0}, {"score": 1000.9}, True),
    ("numeric: relative, past", RELATIVE, {"score": 1000.0}, {"score": 1002.0}, False),
    (
        "nested: each element",
        NESTED,
        {"parts": [{"points": 1.0, "k": "a"}]},
        {"parts": [{"points": 1.05, "k": "a"}]},
        True,
    ),
    (
        "nested: one element past",
        NESTED,
        {"parts": [{"points": 1.0}, {"points": 2}]},
        {"parts": [{"points": 1.0}, {"points": 2.5}]},
        False,
    ),
    (
        "nested: lists of other lengths",
        NESTED,
        {"parts": [{"points": 1.0}]},
        {"parts": [{"points": 1.0}, {"points": 1.0}]},
        False,
    ),
    (
        "nested: other keys in elements exact",
        NESTED,
        {"parts": [{"points": 1.0, "k": "a"}]},
        {"parts": [{"points": 1.0, "k": "b"}]},
        False,
    ),
    ("nested: a dict where a list should be", NESTED, {"parts": {"points": 1.0}}, {"parts": {"points": 1.0}}, False),
    ("fuzzy: one letter in a long text", FUZZY, {"text": LONG + "a"}, {"text": LONG + "b"}, True),
    ("fuzzy: different texts", FUZZY, {"text": "grant for rivers"}, {"text": "loan for roads"}, False),
    ("fuzzy: composed and decomposed é", FUZZY, {"text": "caf\u00e9"}, {"text": "cafe\u0301"}, True),
    ("fuzzy: white space runs", FUZZY, {"text": " a  b\n"}, {"text": "a b"}, True),
    ("fuzzy: empty and empty", FUZZY, {"text": ""}, {"text": ""}, True),
    ("fuzzy: empty and text", FUZZY, {"text": ""}, {"text": "x"}, False),
    ("fuzzy: a text and a number", FUZZY, {"text": "1"}, {"text": 1}, False),
    ("fuzzy: emoji and CJK kept", FUZZY, {"text": "助成金 🎉 " + LONG}, {"text": "助成金 🎊 " + LONG}, True),
    (
        "set: same entities in another order",
        ENTITIES,
        {"entities": [{"type": "a", "value": "1", "c": 0.5}, {"type": "b", "value": "2", "c": 0.1}]},
        {"entities": [{"type": "b", "value": "2", "c": 0.9}, {"type": "a", "value": "1", "c": 0.2}]},
        True,
    ),
    (
        "set: half overlap reaches 0.5",
        ENTITIES,
        {"entities": [{"type": "a", "value": "1"}, {"type": "b", "value": "2"}]},
        {
            "entities": [
                {"type": "a", "value": "1"},
                {"type": "b", "value": "2"},
                {"type": "c", "value": "3"},
                {"type": "d", "value": "4"},
            ]
        },
        True,
    ),
    (
        "set: a third overlap",
        ENTITIES,
        {"entities": [{"type": "a", "value": "1"}, {"type": "b", "value": "2"}]},
        {"entities": [{"type": "a", "value": "1"}, {"type": "c", "value": "3"}]},
        False,
    ),
    ("set: both empty", ENTITIES, {"entities": []}, {"entities": []}, True),
    ("set: empty and not", ENTITIES, {"entities": []}, {"entities": [{"type": "a", "value": "1"}]}, False),
    ("set: scalars", SCALARS, {"tags": ["x", "y"]}, {"tags": ["y", "x", "x"]}, True),
    ("set: a tuple is a list", SCALARS, {"tags": ("x", "y")}, {"tags": ["y", "x"]}, True),
    ("nested: a tuple is a list", NESTED, {"parts": ({"points": 1.0},)}, {"parts": [{"points": 1.01}]}, True),
    ("set: a list and a string", SCALARS, {"tags": ["x"]}, {"tags": "x"}, False),
    (
        "ignored: etags may differ",
        IGNORED,
        {"fetch": {"etag": "a", "sha": 1}},
        {"fetch": {"etag": "b", "sha": 1}},
        True,
    ),
    (
        "ignored: the rest is exact",
        IGNORED,
        {"fetch": {"etag": "a", "sha": 1}},
        {"fetch": {"etag": "a", "sha": 2}},
        False,
    ),
    ("ignored: present in one only", IGNORED, {"fetch": {"etag": "a"}}, {"fetch": {}}, False),
]


@pytest.mark.parametrize(
    ("comparator", "a", "b", "agree"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_comparator_table(comparator: Comparator, a: dict[str, Any], b: dict[str, Any], agree: bool) -> None:
    assert results_agree(comparator, a, b) is agree
    assert results_agree(comparator, b, a) is agree  # every rule is symmetric


def test_exact_compares_the_bytes_the_checksum_hashes() -> None:
    assert canonical_result_bytes({"b": 1, "a": [2]}) == b'{"a":[2],"b":1}'


def test_texts_are_compared_fuzzily_up_to_the_bound_and_past_it_only_when_equal() -> None:
    """Past MAX_FUZZY_CHARS rapidfuzz is not asked (its cost grows with the product of the
    lengths): one changed letter then makes two texts disagree."""
    under = "a" * (MAX_FUZZY_CHARS - 1)
    over = "a" * MAX_FUZZY_CHARS
    assert results_agree(FUZZY, {"text": under + "b"}, {"text": under + "c"})
    assert not results_agree(FUZZY, {"text": over + "b"}, {"text": over + "c"})
    assert results_agree(FUZZY, {"text": over + "b"}, {"text": over + "b  "})


def test_sets_past_the_bound_agree_only_when_equal() -> None:
    items = [{"type": "a", "value": str(i)} for i in range(MAX_SET_ITEMS + 1)]
    assert results_agree(ENTITIES, {"entities": items}, {"entities": list(items)})
    assert not results_agree(ENTITIES, {"entities": items}, {"entities": [*items[:-1], {"type": "z", "value": "z"}]})


def test_a_huge_list_under_a_path_is_bounded() -> None:
    parts = [{"points": 1.0}] * 200_000  # more values than one path may reach
    assert not results_agree(NESTED, {"parts": parts}, {"parts": parts})


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ((NumericTolerance(path="a"), FuzzyText(path="a")), "overlap"),
        ((NumericTolerance(path="a.b"), Ignored(path="a")), "overlap"),
        ((NumericTolerance(path="a[].b"), Ignored(path="a.b")), "overlap"),
    ],
)
def test_overlapping_rules_are_refused(rules: tuple[Any, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Comparator(rules=rules)


@pytest.mark.parametrize(
    "fields",
    [
        {"quorum": 3, "replicas": 2},
        {"replicas": 6, "max_replicas": 5},
        {"quorum": 5, "replicas": 5, "max_replicas": 5, "untrusted_extra": 1},
        {"spot_check_rate": 1.5},
        {"replicas": 0},
        {"comparator": {"rules": [{"type": "numeric", "path": "a..b"}]}},
    ],
)
def test_specs_off_their_bounds_do_not_decode(fields: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(fields, ConsensusSpec)


def test_a_spec_round_trips_as_data() -> None:
    spec = JOB_TYPES["score_opportunity"].consensus
    assert spec is not None
    assert msgspec.json.decode(msgspec.json.encode(spec), type=ConsensusSpec) == spec


def _paths_reached(rule_path: str, result: dict[str, Any]) -> bool:
    values: list[Any] = [result]
    for part in rule_path.split("."):
        key = part.removesuffix("[]")
        values = [v[key] for v in values if isinstance(v, dict) and key in v]
        if part.endswith("[]"):
            values = [item for v in values if isinstance(v, list | tuple) for item in v]
    return bool(values)


@pytest.mark.parametrize("name", sorted(name for name, job in JOB_TYPES.items() if job.consensus is not None))
def test_each_declared_spec_names_fields_its_results_have(name: str) -> None:
    """A rule whose path a result never reaches would compare nothing; every sample result agrees
    with itself and not with a result whose first field is changed."""
    job = JOB_TYPES[name]
    assert job.consensus is not None
    results = [result_to_builtins(run_job(name, msgspec.to_builtins(payload))) for payload in job.sample_payloads]
    assert results
    for rule in job.consensus.comparator.rules:
        assert any(_paths_reached(rule.path, result) for result in results), f"{name}: {rule.path} reaches nothing"
    for result in results:
        assert results_agree(job.consensus.comparator, result, result)
        assert not results_agree(job.consensus.comparator, result, {**result, "version": "forged"})
