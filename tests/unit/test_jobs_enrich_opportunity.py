"""enrich_opportunity: each inference with the words that produced it; exclusions read as
exclusions; places from the gazetteer; the rules file checked on load."""

from __future__ import annotations

import msgspec
import pytest

from ccn_jobs.enrich_opportunity import (
    SAMPLE_PAYLOADS,
    EnrichmentRules,
    EnrichOpportunityPayload,
    EnrichOpportunityResult,
    Opportunity,
    enrich_opportunity,
    load_rules,
)
from ccn_jobs.places import find_places, parse_location


def enrich(**fields: object) -> EnrichOpportunityResult:
    return enrich_opportunity(EnrichOpportunityPayload(opportunity=msgspec.convert(fields, Opportunity)))


def test_the_sample_names_who_may_apply_and_who_may_not_with_evidence() -> None:
    result = enrich_opportunity(SAMPLE_PAYLOADS[0])
    by_kind = {e.kind: e for e in result.eligibility}
    assert by_kind["nonprofit"].eligible and by_kind["government"].eligible
    assert not by_kind["individual"].eligible and not by_kind["business"].eligible
    assert by_kind["individual"].evidence[0].text == "Individuals and for-profit businesses are not eligible"
    assert result.tags[0].tag == "environment" and not result.tags[0].low_confidence
    assert {e.field for e in result.tags[0].evidence} >= {"title", "description"}
    assert {r.code for r in result.regions} == {"US", "US-WA"}
    assert result.funding_type is not None and result.funding_type.funding_type == "grant"
    assert (result.version, result.rules_version) == ("1", load_rules().version)


def test_a_fellowship_for_university_researchers_in_the_eu() -> None:
    result = enrich_opportunity(SAMPLE_PAYLOADS[1])
    assert result.funding_type is not None and result.funding_type.funding_type == "fellowship"
    kinds = {e.kind for e in result.eligibility if e.eligible}
    assert {"university", "individual"} <= kinds
    assert {r.code for r in result.regions} == {"EU", "GB"}
    assert all(r.confidence <= 0.7 for r in result.regions)  # named in the text, not the location field
    assert "research" in {t.tag for t in result.tags}


def test_nothing_to_go_on_infers_nothing() -> None:
    result = enrich_opportunity(SAMPLE_PAYLOADS[2])
    assert (result.eligibility, result.tags, result.regions, result.funding_type) == ((), (), (), None)


def test_an_amount_and_no_type_is_a_grant_at_low_confidence() -> None:
    result = enrich(title="Support for village halls", amount_max=3000, currency="GBP")
    assert result.funding_type is not None
    assert result.funding_type.funding_type == "grant" and result.funding_type.low_confidence
    assert result.funding_type.evidence[0].field == "amount"
    assert "3000 GBP" in result.funding_type.evidence[0].text


def test_keywords_match_whole_words_only() -> None:
    result = enrich(title="Article on partnership", description="Charted artefacts; the farmhouse kitchen.")
    assert result.tags == ()


def test_places_are_read_from_addresses_and_text() -> None:
    assert [m.code for m in find_places("Portland, OR 97201")] == ["US-OR"]
    assert find_places("Or maybe not, in any case") == []  # "or", "in" are words, not states
    assert [m.code for m in find_places("open across Washington State and Oregon")] == ["US-WA", "US-OR"]
    location = parse_location("500 Fifth Ave N, Seattle, WA 98109, USA")
    assert (location.country, location.subdivision, location.city) == ("US", "US-WA", "seattle")
    assert parse_location("Zürich, Schweiz").country == "CH"


def test_the_rules_file_is_checked_when_loaded() -> None:
    good = msgspec.json.encode(load_rules())
    assert msgspec.json.decode(good, type=EnrichmentRules) == load_rules()
    bad = msgspec.json.decode(good)
    bad["tags"]["environment"] = ["Climate"]  # keywords are lower case
    with pytest.raises(msgspec.ValidationError, match="lower-case"):
        msgspec.convert(bad, EnrichmentRules)
    bad = msgspec.json.decode(good)
    bad["eligibility"]["aliens"] = ["martians"]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(bad, EnrichmentRules)
