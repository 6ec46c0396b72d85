"""score_opportunity: the score is the sum of its explained contributions, the weights come from
the versioned file, deadlines are judged against the payload's date, relevant records rank first."""

from __future__ import annotations

import msgspec
import pytest

from ccn_jobs.enrich_opportunity import EnrichOpportunityResult, Evidence, Opportunity, TagInference
from ccn_jobs.errors import InvalidPayload
from ccn_jobs.registry import decode_payload
from ccn_jobs.score_opportunity import (
    FEATURES,
    SAMPLE_PAYLOADS,
    ScoreOpportunityPayload,
    ScoreOpportunityResult,
    WeightsEntry,
    load_weights,
    score_opportunity,
)


def score(as_of: str = "2027-01-15", **fields: object) -> ScoreOpportunityResult:
    return score_opportunity(ScoreOpportunityPayload(opportunity=msgspec.convert(fields, Opportunity), as_of=as_of))


def test_the_score_is_the_sum_of_the_explained_contributions() -> None:
    for payload in SAMPLE_PAYLOADS:
        result = score_opportunity(payload)
        assert [c.feature for c in result.contributions] == list(FEATURES)
        assert abs(sum(c.points for c in result.contributions) - result.relevance_score) <= 0.05
        for contribution in result.contributions:
            assert contribution.note in result.explanation
        assert result.explanation.startswith(f"Relevance {result.relevance_score:g} out of 100")
        assert (result.version, result.weights_version) == ("1", "1")


def test_a_fitting_grant_scores_high_and_a_closed_loan_abroad_low() -> None:
    fitting, unfitting, _ = (score_opportunity(p) for p in SAMPLE_PAYLOADS)
    assert fitting.relevance_score >= 80 and unfitting.relevance_score <= 20
    notes = {c.feature: c.note for c in unfitting.contributions}
    assert notes["deadline"] == "closed 45 days before 2027-01-15"
    assert notes["eligibility"].startswith("excludes nonprofit")


def test_relevant_opportunities_rank_first() -> None:
    titles = {
        "conservation": dict(
            title="Watershed restoration grants for nonprofits",
            description="Community groups and nonprofits restoring wetlands with youth volunteers in Oregon.",
            amount_max=40_000,
            currency="USD",
            deadline="2027-04-01",
            location="Oregon, USA",
        ),
        "arts abroad": dict(
            title="Theatre touring fund",
            description="Grants for theatre companies in Scotland.",
            amount_max=20_000,
            currency="GBP",
            location="Scotland",
        ),
        "business loan": dict(title="Loans for small businesses", description="For-profit companies only."),
        "youth, unclear": dict(title="Youth leadership awards", description="For young people."),
    }
    ranked = sorted(titles, key=lambda name: -score(**titles[name]).relevance_score)
    assert ranked[0] == "conservation"
    assert ranked[-1] in {"business loan", "arts abroad"}


def test_deadlines_are_judged_against_as_of_not_the_clock() -> None:
    fields = dict(title="Climate grants", deadline="2027-02-12")
    notes = [
        {c.feature: c for c in score(as_of, **fields).contributions}["deadline"]
        for as_of in ("2027-01-15", "2027-02-05", "2027-03-01")
    ]
    assert [n.value for n in notes] == [1.0, 0.25, 0.0]
    assert notes[1].note == "7 days left"


def test_a_given_enrichment_is_used_instead_of_one_computed_here() -> None:
    opportunity = Opportunity(title="Programme 7")
    enrichment = EnrichOpportunityResult(
        version="1",
        rules_version="1",
        eligibility=(),
        tags=(
            TagInference(
                tag="youth", confidence=1.0, low_confidence=False, evidence=(Evidence(field="title", text="x"),)
            ),
        ),
        regions=(),
        funding_type=None,
    )
    with_it = score_opportunity(
        ScoreOpportunityPayload(opportunity=opportunity, as_of="2027-01-01", enrichment=enrichment)
    )
    without = score_opportunity(ScoreOpportunityPayload(opportunity=opportunity, as_of="2027-01-01"))
    assert with_it.contributions[0].value == 0.5 and without.contributions[0].value == 0.0


def test_unknown_weights_and_impossible_dates_are_refused_on_decode() -> None:
    base = {"opportunity": {"title": "x"}, "as_of": "2027-01-15"}
    with pytest.raises(InvalidPayload, match="unknown weights_version"):
        decode_payload("score_opportunity", {**base, "weights_version": "9"})
    with pytest.raises(InvalidPayload, match="calendar date"):
        decode_payload("score_opportunity", {**base, "as_of": "2027-02-30"})
    with pytest.raises(InvalidPayload):
        decode_payload("score_opportunity", {"opportunity": {"title": "x"}})  # as_of is required


def test_the_weights_file_is_checked_when_loaded() -> None:
    entry = msgspec.to_builtins(load_weights()["1"])
    del entry["weights"]["deadline"]
    with pytest.raises(msgspec.ValidationError, match="deadline"):
        msgspec.convert(entry, WeightsEntry)
    entry = msgspec.to_builtins(load_weights()["1"])
    entry["weights"]["popularity"] = 5
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(entry, WeightsEntry)
    entry["weights"] = {feature: 0 for feature in FEATURES}
    with pytest.raises(msgspec.ValidationError, match="positive"):
        msgspec.convert(entry, WeightsEntry)
