"""The pure validator (ccn_jobs.result_validation.judge_result): every job type's good results
pass; each broken rule is reported with its code and exact field path, alongside any schema
reason; the checksum is the scheduler's; hostile input never raises and every reason is typed
and fits the verdict event."""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccn_jobs.registry import JOB_TYPES
from ccn_jobs.result_validation import (
    MAX_RESULT_BYTES,
    MAX_VALUES_VISITED,
    Verdict,
    _plainly_storable,
    judge_result,
)
from ccn_proto.canonical import result_checksum
from ccn_proto.constraints import document_problem
from ccn_proto.documents import PDF
from ccn_proto.results import MAX_REASONS, REASON_CODES, ReasonCode, ResultRejected
from tests.support.result_samples import DELETE, changed, good_results
from tests.support.sizes import SLOW

_read_rejected = msgspec.json.Decoder(ResultRejected).decode


def judged(job_type: str, result: Any, checksum: str | None = None) -> Verdict:
    if checksum is None:
        checksum = result_checksum(result) if isinstance(result, Mapping) else ""
    return judge_result(job_type, result, checksum)


def reason_pairs(verdict: Verdict) -> set[tuple[str, str | None]]:
    return {(reason.code, reason.field) for reason in verdict.reasons}


def assert_well_formed(verdict: Verdict) -> None:
    """Accepted exactly when there is no reason; each reason typed and bounded as the event's."""
    assert verdict.accepted == (not verdict.reasons)
    assert len(verdict.reasons) <= MAX_REASONS
    for reason in verdict.reasons:
        assert reason.code in REASON_CODES
    if not verdict.accepted:
        event = ResultRejected(
            node_id="n1",
            attempt=1,
            checksum="c" * 64,
            job_type=verdict.job_type or "?",
            job_type_version=verdict.job_type_version,
            rules_version=verdict.rules_version,
            reasons=verdict.reasons,
            reasons_truncated=verdict.reasons_truncated,
        )
        assert _read_rejected(msgspec.json.encode(event)) == event  # within every bound it declares


@pytest.mark.parametrize("job_type", sorted(JOB_TYPES))
def test_the_sample_results_of_every_job_type_are_accepted(job_type: str) -> None:
    for result in good_results(job_type):
        verdict = judged(job_type, result)
        assert verdict.reasons == ()
        assert verdict.accepted
        assert verdict.checksum == result_checksum(result)
        assert (verdict.job_type_version, verdict.rules_version) == (
            JOB_TYPES[job_type].version,
            JOB_TYPES[job_type].result_rules.version,
        )


def test_bytes_and_the_decoded_object_get_the_same_verdict() -> None:
    for job_type in ("extract_entities", "crawl_domain_page"):
        result = good_results(job_type)[0]
        broken = changed(result, "fields_found" if job_type == "crawl_domain_page" else "version", 99)
        for document in (result, broken):
            checksum = result_checksum(document)
            assert judge_result(job_type, msgspec.json.encode(document), checksum) == judged(job_type, document)


# (job type, sample index, path, new value, the reasons expected: exactly these)
BROKEN: list[tuple[str, int, str, Any, set[tuple[str, str | None]]]] = [
    ("normalize_funders", 0, "version", "0", {("forbidden", "version")}),
    ("normalize_funders", 0, "records[0].address.country", "XX", {("format", "records[0].address.country")}),
    ("normalize_opportunities", 0, "version", "0", {("forbidden", "version")}),
    ("normalize_opportunities", 0, "as_of", "2027-02-30", {("format", "as_of")}),
    ("normalize_locations", 0, "version", "0", {("forbidden", "version")}),
    ("normalize_locations", 0, "locations[0].country", "XX", {("format", "locations[0].country")}),
    ("extract_text", 0, "extractor_version", "2", {("forbidden", "extractor_version")}),
    ("extract_text", 0, "language", "xx", {("format", "language")}),
    ("extract_text", 0, "language", "qab", {("format", "language")}),
    ("extract_text", 1, "confidence", 0.5, {("bounds", "confidence")}),
    ("extract_text", 0, "media_type", PDF, {("mandatory", "pages")}),
    ("extract_text", 0, "pages", 0, {("bounds", "pages")}),
    ("extract_text", 0, "title", DELETE, {("schema", "title")}),
    ("extract_text", 0, "confidence", 1.5, {("schema", "confidence")}),
    ("classify_document", 0, "version", "1", {("forbidden", "version")}),
    ("classify_document", 0, "model_version", DELETE, {("schema", "model_version"), ("mandatory", "model_version")}),
    (
        "classify_document",
        0,
        "matched_rules",
        ["Not A Rule"],
        {("schema", "matched_rules[0]"), ("format", "matched_rules[0]")},
    ),
    ("classify_document", 0, "scores", [], {("schema", "scores"), ("bounds", "scores")}),
    ("extract_entities", 0, "entities[5].value", "2027-02-30", {("format", "entities[5].value")}),
    ("extract_entities", 0, "entities[2].value", "40,000", {("format", "entities[2].value")}),
    ("extract_entities", 0, "entities[0].value", "   ", {("mandatory", "entities[0].value")}),
    (
        "extract_entities",
        0,
        "entities[2].currency",
        None,
        {("schema", "entities[2]"), ("mandatory", "entities[2].currency")},
    ),
    ("extract_entities", 0, "entities[3].start", 106, {("schema", "entities[3]"), ("bounds", "entities[3].start")}),
    ("extract_entities", 0, "version", "2", {("forbidden", "version")}),
    (
        "extract_entities",
        0,
        "gazetteers_version",
        DELETE,
        {("schema", "gazetteers_version"), ("mandatory", "gazetteers_version")},
    ),
    ("link_entities", 0, "links", [], {("mandatory", "links")}),
    ("link_entities", 0, "entities", 0, {("bounds", "entities")}),
    ("link_entities", 0, "version", "2", {("forbidden", "version")}),
    ("enrich_opportunity", 0, "regions[0].code", "XX", {("format", "regions[0].code")}),
    ("enrich_opportunity", 0, "tags[1].evidence[0].text", "", {("mandatory", "tags[1].evidence[0].text")}),
    ("enrich_opportunity", 1, "funding_type.evidence[0].text", " ", {("mandatory", "funding_type.evidence[0].text")}),
    ("enrich_opportunity", 0, "version", "0", {("forbidden", "version")}),
    ("score_opportunity", 0, "contributions", [], {("bounds", "contributions")}),
    ("score_opportunity", 0, "explanation", "", {("mandatory", "explanation")}),
    ("score_opportunity", 0, "version", "7", {("forbidden", "version")}),
    ("parse_pdf", 0, "page_count", 0, {("bounds", "page_count")}),
    ("parse_pdf", 0, "language", "zz", {("format", "language")}),
    ("parse_pdf", 0, "sections[0].level", 4, {("schema", "sections[0].level"), ("bounds", "sections[0].level")}),
    ("parse_pdf", 0, "parser_version", "0", {("forbidden", "parser_version")}),
    ("crawl_domain_page", 0, "fetch.status", None, {("mandatory", "fetch.status")}),
    ("crawl_domain_page", 0, "links[2]", "https://bad_host.example/", {("format", "links[2]")}),
    ("crawl_domain_page", 0, "fields_found", 3, {("bounds", "fields_found")}),
    ("crawl_domain_page", 0, "fetch.final_url", "https://a..example/", {("format", "fetch.final_url")}),
    ("crawl_domain_page", 0, "crawler_version", "2", {("forbidden", "crawler_version")}),
    (
        "extract_structured_fields",
        0,
        "fields_found",
        9,
        {("schema", None), ("bounds", "fields_found")},
    ),
    ("extract_structured_fields", 0, "extractor_version", "0", {("forbidden", "extractor_version")}),
    ("extract_structured_fields", 0, "fields", [], {("mandatory", "fields")}),
    ("crawl_multi_hop", 0, "pages[1].links_followed", 4, {("bounds", "pages[1].links_followed")}),
    ("crawl_multi_hop", 0, "discovered[1]", "https://-funder.example/", {("format", "discovered[1]")}),
    ("crawl_multi_hop", 0, "domain", "", {("schema", "domain"), ("mandatory", "domain")}),
    ("fetch_document", 0, "sha256", None, {("mandatory", "sha256")}),
    ("fetch_document", 0, "fetch.url", "https://bad_host.example/x", {("format", "fetch.url")}),
    ("fetch_document", 0, "fetcher_version", "9", {("forbidden", "fetcher_version")}),
]


@pytest.mark.parametrize(
    ("job_type", "sample", "path", "value", "expected"),
    BROKEN,
    ids=[f"{row[0]}:{row[2]}={row[3]!r:.20}" for row in BROKEN],
)
def test_each_broken_rule_is_reported_with_its_exact_field(
    job_type: str, sample: int, path: str, value: Any, expected: set[tuple[str, str | None]]
) -> None:
    result = changed(good_results(job_type)[sample], path, value)
    verdict = judged(job_type, result)
    assert reason_pairs(verdict) == expected, verdict.reasons
    assert not verdict.accepted
    assert_well_formed(verdict)


def test_every_job_type_has_a_broken_rule_in_the_table() -> None:
    assert {row[0] for row in BROKEN} == set(JOB_TYPES)


def test_a_result_broken_many_ways_hears_of_every_way() -> None:
    result = good_results("extract_entities")[0]
    for path, value in (("entities[5].value", "2027-13-01"), ("entities[0].value", ""), ("version", "0")):
        result = changed(result, path, value)
    verdict = judged("extract_entities", result, checksum="0" * 64)
    assert reason_pairs(verdict) == {
        ("checksum", None),
        ("schema", "entities[0].value"),  # the schema's own bound (min_length 1), read first
        ("mandatory", "entities[0].value"),
        ("format", "entities[5].value"),
        ("forbidden", "version"),
    }
    messages = {reason.field: reason.message for reason in verdict.reasons}
    assert messages["entities[5].value"] == "'2027-13-01' is not a calendar date"
    assert messages["version"] == ("'0' is not one of '1'; results of another extractor are not comparable")


def test_a_checksum_that_is_not_the_results_is_one_checksum_reason() -> None:
    result = good_results("classify_document")[0]
    right = result_checksum(result)
    for asserted in ("0" * 64, right.upper(), right[:-1], "", None, 5):
        verdict = judge_result("classify_document", result, asserted)  # type: ignore[arg-type]
        assert [(r.code, r.field) for r in verdict.reasons] == [("checksum", None)]
        assert verdict.checksum == right
    # a result changed after its checksum was taken, as a forger might send it
    forged = changed(result, "label", "irrelevant")
    verdict = judge_result("classify_document", forged, right)
    assert ("checksum", None) in reason_pairs(verdict)


def test_the_checksum_is_the_job_deciders_for_every_sample() -> None:
    for job_type in JOB_TYPES:
        for result in good_results(job_type):
            assert judge_result(job_type, result, "").checksum == result_checksum(result)


def test_an_unknown_job_type_is_named_and_the_checksum_still_checked() -> None:
    verdict = judge_result("mine_bitcoin", {"a": 1}, "0" * 64)
    assert reason_pairs(verdict) == {("unknown_job_type", None), ("checksum", None)}
    assert "'mine_bitcoin'" in verdict.reasons[0].message
    assert (verdict.job_type_version, verdict.rules_version) == ("", "")
    assert_well_formed(verdict)


class _Exploding(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Any:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


def _nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth):
        document = {"a": document}
    return document


def _text_result() -> dict[str, Any]:
    return good_results("extract_text")[0]


# (what, job type, result, checksum or None for its own, the codes expected among the reasons)
HOSTILE: list[tuple[str, str, Any, Any, set[str]]] = [
    ("empty bytes", "extract_text", b"", "", {"schema"}),
    ("not JSON", "extract_text", b"{not json", "", {"schema"}),
    ("a JSON array", "extract_text", b"[1, 2]", "", {"schema", "checksum"}),
    ("JSON null", "extract_text", b"null", "", {"schema", "checksum"}),
    ("a bare string", "extract_text", b'"text"', "", {"schema", "checksum"}),
    ("deep nesting past the decoder", "extract_text", b"[" * 100_000 + b"]" * 100_000, "", {"schema"}),
    ("deep nesting, an object", "extract_text", _nested(100_000), "", {"schema"}),
    ("nesting past 32", "extract_text", msgspec.json.encode(_nested(40)), "", {"schema", "checksum"}),
    ("over the size cap", "extract_text", b" " * (MAX_RESULT_BYTES + 1), "", {"too_large"}),
    ("a 2**70 integer", "extract_text", {**_text_result(), "chars": 2**70}, None, {"schema"}),
    ("a huge integer literal", "extract_text", b'{"chars": ' + b"9" * 5000 + b"}", "", {"schema"}),
    ("NaN", "extract_text", {**_text_result(), "confidence": math.nan}, None, {"schema"}),
    ("infinity", "extract_text", {**_text_result(), "confidence": math.inf}, None, {"schema"}),
    ("a NUL in text", "extract_text", {**_text_result(), "text": "a\x00b", "chars": 3}, None, {"schema"}),
    ("a lone surrogate", "extract_text", {**_text_result(), "title": "\ud800"}, None, {"schema"}),
    ("control characters in a key", "extract_text", {**_text_result(), "\x1b[31m": 1}, None, {"schema"}),
    ("an unknown field", "extract_text", {**_text_result(), "extra": 1}, None, {"schema"}),
    (
        "wrong types",
        "extract_text",
        {"text": 5, "title": [], "language": {}, "confidence": "x", "chars": None},
        None,
        {"schema"},
    ),
    (
        "a bool for a number",
        "classify_document",
        {**good_results("classify_document")[0], "confidence": True},
        None,
        {"schema"},
    ),
    ("non-string keys", "extract_text", {1: 2}, None, {"schema"}),
    ("a set inside", "extract_text", {"text": {1, 2}}, None, {"schema"}),
    ("an object msgspec cannot encode", "extract_text", {"text": object()}, "", {"schema"}),
    ("a Mapping that raises", "extract_text", _Exploding(), "", {"schema"}),
    ("not bytes nor a mapping", "extract_text", 12345, "", {"schema"}),
    ("a long hostile key", "extract_text", {"\u2028" * 10_000: 1}, None, {"schema"}),
    ("a job type that is not a string", None, {"a": 1}, None, {"unknown_job_type"}),  # type: ignore[list-item]
    ("a checksum that is not a string", "extract_text", _text_result(), 12, {"checksum"}),
    ("a bytearray", "extract_text", bytearray(msgspec.json.encode(_text_result())), "", {"checksum"}),
    ("a memoryview", "extract_text", memoryview(msgspec.json.encode(_text_result())), "", {"checksum"}),
]


@pytest.mark.parametrize(("what", "job_type", "result", "checksum", "codes"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_never_raises_and_every_reason_is_typed(
    what: str, job_type: Any, result: Any, checksum: Any, codes: set[str]
) -> None:
    if checksum is None:
        try:
            checksum = result_checksum(result)
        except Exception:
            checksum = ""
    verdict = judge_result(job_type, result, checksum)
    assert not verdict.accepted
    assert codes <= {reason.code for reason in verdict.reasons}, verdict.reasons
    assert_well_formed(verdict)


def test_reasons_are_capped_and_the_cap_is_said() -> None:
    result = good_results("crawl_domain_page")[0]
    result["links"] = [f"https://bad_host{n}.example/" for n in range(400)]
    verdict = judged("crawl_domain_page", result)
    assert len(verdict.reasons) == MAX_REASONS
    assert verdict.reasons_truncated
    assert [r.field for r in verdict.reasons[:3]] == ["links[0]", "links[1]", "links[2]"]
    assert_well_formed(verdict)


def test_a_result_too_big_to_check_fully_says_so() -> None:
    # within the byte cap, and too many values for the rules' walk (the schema refuses the list)
    result = {**good_results("crawl_multi_hop")[0], "discovered": [1] * (MAX_VALUES_VISITED + 10)}
    verdict = judged("crawl_multi_hop", result)
    assert ("too_large", None) in reason_pairs(verdict)
    assert_well_formed(verdict)


def test_messages_quote_hostile_values_on_one_bounded_line() -> None:
    result = changed(good_results("crawl_domain_page")[0], "links[0]", "https://" + "\u202e\x85" * 900)
    verdict = judged("crawl_domain_page", result)
    (message,) = [r.message for r in verdict.reasons if (r.code, r.field) == ("format", "links[0]")]
    assert message.isprintable() and len(message) < 200
    assert_well_formed(verdict)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=40,
)


def _never_raises(job_type: str, document: Any, as_bytes: bool) -> None:
    raw: Any = msgspec.json.encode(document) if as_bytes or not isinstance(document, dict) else document
    verdict = judge_result(job_type, raw, "0" * 64)
    assert_well_formed(verdict)


_arbitrary = {
    "job_type": st.sampled_from(sorted(JOB_TYPES)),
    "document": st.dictionaries(st.text(max_size=20), _json, max_size=8) | _json,
    "as_bytes": st.booleans(),
}


# CCN_SLOW=1 (tests.support.sizes) runs the long form
@settings(max_examples=3000 if SLOW else 60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**_arbitrary)
def test_judge_result_never_raises_on_arbitrary_json(job_type: str, document: Any, as_bytes: bool) -> None:
    _never_raises(job_type, document, as_bytes)


@settings(max_examples=60, deadline=None)
@given(job_type=st.sampled_from(sorted(JOB_TYPES)), data=st.data())
def test_a_good_result_with_one_field_replaced_never_raises(job_type: str, data: st.DataObject) -> None:
    results = good_results(job_type)
    result = data.draw(st.sampled_from(results))
    key = data.draw(st.sampled_from(sorted(result)))
    result[key] = data.draw(_json)
    verdict = judged(job_type, result)
    assert_well_formed(verdict)


def test_the_reason_codes_listed_are_the_types() -> None:
    assert typing.get_args(ReasonCode) == REASON_CODES


_any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(st.characters(codec="utf-8")),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=6), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=5000 if SLOW else 150, deadline=None)
@given(document=st.dictionaries(st.text(max_size=6), _any_json, max_size=6))
def test_the_cheap_storability_proof_never_passes_what_the_full_check_refuses(document: dict[str, Any]) -> None:
    canonical = msgspec.json.encode(document, order="sorted")
    if _plainly_storable(document, canonical):
        assert document_problem(document) is None


def test_the_cheap_storability_proof_passes_ordinary_results() -> None:
    for job_type in JOB_TYPES:
        for result in good_results(job_type):
            assert _plainly_storable(result, msgspec.json.encode(result, order="sorted")), job_type
    assert _plainly_storable({"text": "a\tb\r\nc é ✓"}, msgspec.json.encode({"text": "a\tb\r\nc é ✓"}))


class _HostileStr(str):
    def __hash__(self) -> int:
        raise RuntimeError("boom")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("boom")


def test_names_and_checksums_that_only_pretend_to_be_strings_are_refused() -> None:
    result = good_results("extract_text")[0]
    verdict = judge_result(_HostileStr("extract_text"), result, _HostileStr(result_checksum(result)))
    assert reason_pairs(verdict) == {("unknown_job_type", None), ("checksum", None)}
    assert verdict.job_type == "<_HostileStr>"
    assert_well_formed(verdict)
