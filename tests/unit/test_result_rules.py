"""Result rules as data (ccn_jobs.result_rules): every job type declares some, they fit its
result type, their version moves whenever they change, and the named formats say yes and no
where they should."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from ccn_jobs.extract_entities import ExtractEntitiesResult
from ccn_jobs.job_type import JobType
from ccn_jobs.places import COUNTRIES, find_places
from ccn_jobs.registry import JOB_TYPES
from ccn_jobs.result_rules import (
    FORMATS,
    ISO_COUNTRIES,
    NO_RULES,
    Allowed,
    Bounds,
    Format,
    FormatName,
    LessThan,
    Mandatory,
    ResultRules,
    Size,
    When,
    format_problem,
    rules_fingerprint,
    rules_problems,
)

# Every (job type, rules version) ever shipped and the fingerprint of its rules. Append a row
# when you bump a version; never edit one: a verdict names the rules version it was judged by,
# so one version must always mean the same rules.
PINNED: dict[tuple[str, str], str] = {
    ("classify_document", "1"): "847b93d1a0c40c98ff86bd1dc711d81136b837cc7b37d68f933807ce1f48be88",
    ("crawl_domain_page", "1"): "e86fb5a306023bac47f76f90c3fd91d5697a9dab252ab025d6e5796489835800",
    ("crawl_multi_hop", "1"): "6e226386b87603ab21a888f588439337d9d09383fe4b6de096086a7f84d9f6ec",
    ("enrich_opportunity", "1"): "9a81008939657c8eac0c4909fbca5395e62c8c39b9b040513928f25935aebef1",
    ("extract_entities", "1"): "ef7090d55c7a1799041b5ad559817c25c4a381d93c4f6264d10a7884755cdfea",
    ("extract_structured_fields", "1"): "aa6740b1e96997557991db024b3f14c49c1b1f36edb9cce42019e01a1f7a9610",
    ("extract_text", "1"): "3e1c3d0533051ab04643a925a907127d7cea3b84a8f76df994d07089bae50399",
    ("fetch_document", "1"): "c6031d205a4d204a67a51c71d966d9a4d247371c505d75a9e6dc50e32b4e2617",
    ("link_entities", "1"): "bea7dab543de446555500d0d0a1f86d645b26ceadd3f14a897d068a7958ca786",
    ("normalize_funders", "1"): "7e9b0f6cc949656b4cd6eec8fb2a11ea0795c128793b06042cb9762802d0427f",
    ("normalize_locations", "1"): "e2713470f50d3c1475bf494b046d7a90d5dd56fbc3a9eb326627b50c348cffa6",
    ("normalize_opportunities", "1"): "794c1c557abad07c68453773003c838abc07bba50e65f8e710bf2c270f42de41",
    ("parse_pdf", "1"): "2e87a1231656d0956919538b2f19b6b337e3d78b44e982f54fca74f9fac93b27",
    ("score_opportunity", "1"): "1a41682d427a9f7c6d7a895119dfefd89a5714cb5113989f8d840cb9f9bd64f3",
}


@pytest.mark.parametrize("job_type", sorted(JOB_TYPES))
def test_every_job_type_declares_result_rules(job_type: str) -> None:
    rules = JOB_TYPES[job_type].result_rules
    assert rules is not NO_RULES and rules.rules, f"{job_type} declares no result rules (ccn_jobs.result_rules)"
    assert rules_problems(JOB_TYPES[job_type].result_type, rules) == []


@pytest.mark.parametrize("job_type", sorted(JOB_TYPES))
def test_rules_do_not_change_under_one_version(job_type: str) -> None:
    rules = JOB_TYPES[job_type].result_rules
    pinned = PINNED.get((job_type, rules.version))
    assert pinned is not None, (
        f"{job_type}'s rules version {rules.version} is not pinned: add "
        f'("{job_type}", "{rules.version}"): "{rules_fingerprint(rules)}" to PINNED'
    )
    assert rules_fingerprint(rules) == pinned, (
        f"{job_type}'s result rules changed but their version is still {rules.version}: bump "
        "ResultRules.version and pin the new one (a job type's VERSION is in its rules too)"
    )


def test_the_fingerprint_moves_with_any_change() -> None:
    rules = JOB_TYPES["extract_text"].result_rules
    edited = msgspec.structs.replace(rules, rules=(*rules.rules[:-1], Size(path="title", max_length=999)))
    assert rules_fingerprint(edited) != rules_fingerprint(rules)
    assert rules_fingerprint(msgspec.structs.replace(rules, version="2")) != rules_fingerprint(rules)


def test_the_schema_version_names_the_job_type_and_its_rules() -> None:
    job = JOB_TYPES["extract_text"]
    assert job.schema_version == f"{job.version}+rules.{job.result_rules.version}"


def test_rules_are_data_that_round_trips_through_json() -> None:
    for job in JOB_TYPES.values():
        encoded = msgspec.json.encode(job.result_rules)
        assert msgspec.json.decode(encoded, type=ResultRules) == job.result_rules


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (Mandatory(path="entities[].valu"), "names no field"),
        (Mandatory(path="entity"), "names no field"),
        (Mandatory(path="truncated.value"), "names no field"),  # through a bool
        (Mandatory(path="version[]"), "names no field"),  # a string is no list
        (Mandatory(path="entities[].value", when=When(field="kind", is_in=("x",))), "'kind' is not a field"),
        (LessThan(path="entities[].start", sibling="stop"), "'stop' is not a field"),
        (Format(path="version", regex="(a)\\1"), "RE2"),
    ],
)
def test_rules_that_do_not_fit_the_result_type_are_named(rule: object, problem: str) -> None:
    rules = ResultRules(version="1", rules=(rule,))  # type: ignore[arg-type]
    (found,) = rules_problems(ExtractEntitiesResult, rules)
    assert problem in found and found.startswith("rule 0 (")


def test_a_job_type_whose_rules_do_not_fit_is_refused_when_built() -> None:
    job = JOB_TYPES["extract_entities"]
    with pytest.raises(ValueError, match="names no field"):
        JobType(
            name="broken",
            version="1",
            payload_type=job.payload_type,
            result_type=job.result_type,
            handler=job.handler,
            consent_scope="nlp",
            result_rules=ResultRules(version="1", rules=(Mandatory(path="nothing"),)),
        )


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b'{"rule": "format", "path": "a"}', "one of `format` and `regex`"),
        (b'{"rule": "format", "path": "a", "format": "url", "regex": "x"}', "one of `format` and `regex`"),
        (b'{"rule": "bounds", "path": "a"}', "`ge`, `le` or both"),
        (b'{"rule": "bounds", "path": "a", "ge": 2, "le": 1}', "`ge` is above `le`"),
        (b'{"rule": "size", "path": "a", "min_length": 3, "max_length": 1}', "above `max_length`"),
        (b'{"rule": "mandatory", "path": "A.b"}', "matching regex"),
        (b'{"rule": "mandatory", "path": "a[].[]"}', "matching regex"),
        (b'{"rule": "allowed", "path": "a", "values": []}', "length >= 1"),
        (b'{"rule": "nonsense", "path": "a"}', "Invalid value 'nonsense'"),
    ],
)
def test_malformed_rules_are_refused_when_decoded(document: bytes, problem: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=problem):
        msgspec.json.decode(b'{"version": "1", "rules": [' + document + b"]}", type=ResultRules)


GOOD: dict[FormatName, list[str]] = {
    "url": ["https://funder.example/grants?x=1#y", "http://a.b", "https://[::1]:8080/p", "https://x.example:443"],
    "email": ["grants@funder.example", "a.b+c@mail.co.uk"],
    "iso_date": ["2027-03-31", "2024-02-29"],
    "iso_country": ["GB", "US", "DE", "ZW"],
    "iso_region": ["GB", "US-WA", "GB-SCT", "EU", "FR-75"],
    "ein": ["12-3456789", "123456789", "99-0000001"],
    "sha256": ["0" * 64, "a3" * 32],
    "language_code": ["en", "de", "zh", "ace", "yue"],
}
BAD: dict[FormatName, list[str]] = {
    "url": [
        "ftp://funder.example/",
        "https://",
        "https://bad_host.example/",
        "https://-lead.example/",
        "https://a..b/",
        "https://funder.example/ space",
        "https://funder.example/\u00e9",
        "javascript:alert(1)",
        "https://x.example/" + "a" * 2048,
    ],
    "email": ["grants", "@funder.example", "a@b", "a@-b.example", "a b@c.example", "x" * 65 + "@c.example"],
    "iso_date": ["2027-02-30", "2027-13-01", "27-03-31", "2027-03-31T00:00:00", "2027/03/31", "2027-03-31\n"],
    "iso_country": ["UK", "XX", "gb", "EU", "GBR", ""],
    "iso_region": ["XX-WA", "US-", "us-wa", "US-WASH", "E"],
    "ein": ["00-1234567", "07-1234567", "1-23456789", "12-345678", "12_3456789", "12-3456789\n"],
    "sha256": ["0" * 63, "A" * 64, "g" * 64, "0" * 65],
    "language_code": ["xx", "EN", "english", "e", "und", "zxx", "qab", "en-GB"],
}


@pytest.mark.parametrize("name", FORMATS)
def test_named_formats_accept_the_good_and_refuse_the_bad(name: FormatName) -> None:
    for value in GOOD[name]:
        assert format_problem(name, value) is None, value
    for value in BAD[name]:
        assert format_problem(name, value) is not None, value


def test_every_language_extract_text_can_name_is_a_language_code() -> None:
    import py3langid.langid as langid  # type: ignore[import-untyped]

    langid.classify("loads the shipped model")
    assert langid.IDENTIFIER is not None
    languages = set(langid.IDENTIFIER.nb_classes) - {"zxx"}  # zxx is "no language": never returned
    assert [code for code in sorted(languages) if format_problem("language_code", code)] == []


def test_every_place_enrichment_can_name_is_a_region_code() -> None:
    assert set(COUNTRIES) <= ISO_COUNTRIES
    found = find_places("Seattle, WA; Edinburgh, Scotland; anywhere in the European Union; Ontario, Canada")
    assert found and all(format_problem("iso_region", place.code) is None for place in found)


def test_bounds_and_sizes_refuse_nonsense_when_declared() -> None:
    with pytest.raises(ValueError):
        Bounds(path="a")
    with pytest.raises(ValueError):
        Size(path="a", min_length=2, max_length=1)
    with pytest.raises(ValueError):
        Format(path="a")
    assert Allowed(path="a", values=(True,)).values == (True,)


def test_the_rules_example_in_the_docs_fits_its_result_type() -> None:
    import ccn_jobs.result_rules as result_rules

    docs = (Path(__file__).parents[2] / "docs" / "job-types.md").read_text()
    example = docs.split("## Result rules", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {**vars(result_rules), "VERSION": "1"}
    exec(example, namespace)  # noqa: S102 - the docs' own example, run so it cannot rot
    assert rules_problems(ExtractEntitiesResult, namespace["RESULT_RULES"]) == []
