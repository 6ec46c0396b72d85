"""Job type `score_opportunity` (CC-75): how relevant an opportunity is to a profile (by
default EcoServants', a US environmental nonprofit), 0 to 100, with a plain-language account
of what each feature contributed.

Each feature is a value in [0, 1] with a note saying why; the score is the weighted mean of the
values times 100. The weights, and the default profile, live in ccn_jobs/data/score_weights.json
by version; a payload names the version it wants (`weights_version`), and the result says which
was used, so scores are only compared between equal versions. The file is checked when loaded:
a feature it does not know, one it leaves out, or a negative weight is an error, not a guess.

The features read the enrichment (CC-74), computed here from the opportunity when the payload
does not carry one; the enrichment's confidence scales what it contributes, so a tag found once
in the description counts for less than one in the title. A fact that is missing (no deadline,
no amount, no place named) scores 0.5: unknown, neither for nor against.

Determinism: the payload carries `as_of`, the day deadlines are judged against; nothing reads
the clock. Values and points are rounded before they are summed."""

from __future__ import annotations

import functools
import math
from datetime import date
from importlib import resources
from typing import Annotated, Literal

import msgspec

from ccn_jobs.consensus_rules import Comparator, ConsensusSpec, FuzzyText, NumericTolerance
from ccn_jobs.enrich_opportunity import (
    EligibilityKind,
    EnrichOpportunityPayload,
    EnrichOpportunityResult,
    FundingType,
    IsoDate,
    Opportunity,
    enrich_opportunity,
)
from ccn_jobs.job_type import JobType
from ccn_jobs.places import EU_MEMBERS, country_of
from ccn_jobs.result_rules import Allowed, Bounds, Mandatory, ResultRules, Size
from ccn_proto.constraints import END, SINGLE_LINE_PATTERN

NAME = "score_opportunity"
VERSION = "1"

Feature = Literal["thematic_fit", "eligibility", "region", "funding_type", "deadline", "amount", "completeness"]
FEATURES: tuple[Feature, ...] = (
    "thematic_fit",
    "eligibility",
    "region",
    "funding_type",
    "deadline",
    "amount",
    "completeness",
)
FEATURE_LABELS: dict[Feature, str] = {
    "thematic_fit": "thematic fit",
    "eligibility": "eligibility",
    "region": "region",
    "funding_type": "funding type",
    "deadline": "time to deadline",
    "amount": "amount",
    "completeness": "record completeness",
}
UNKNOWN = 0.5
COMFORTABLE_LEAD_DAYS = 28  # a deadline this far off leaves time to apply; nearer ones count less
ABOVE_RANGE_VALUE = 0.75  # bigger than asked for: still of interest, but competitive or a poor fit
TAGS_FOR_FULL_FIT = 2  # two of the profile's themes, found with confidence 1, are a full thematic fit
VALUE_DIGITS = 4
POINT_DIGITS = 2

WeightsVersion = Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=rf"^[A-Za-z0-9._-]+{END}")]
TagName = Annotated[str, msgspec.Meta(pattern=rf"^[a-z_]{{1,40}}{END}")]
RegionCode = Annotated[str, msgspec.Meta(pattern=rf"^(?:[A-Z]{{2}}(?:-[A-Z0-9]{{1,3}})?){END}")]
Amount = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
Currency = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{3}}{END}")]


class Profile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the scorer looks for. Empty lists mean "no preference" for that feature."""

    description: Annotated[str, msgspec.Meta(max_length=500, pattern=SINGLE_LINE_PATTERN)] = ""
    tags: Annotated[tuple[TagName, ...], msgspec.Meta(max_length=32)] = ()
    regions: Annotated[tuple[RegionCode, ...], msgspec.Meta(max_length=64)] = ()
    eligible_kinds: Annotated[tuple[EligibilityKind, ...], msgspec.Meta(max_length=8)] = ()
    funding_types: Annotated[tuple[FundingType, ...], msgspec.Meta(max_length=8)] = ()
    min_amount: Amount | None = None
    max_amount: Amount | None = None
    currency: Currency | None = None


class WeightsEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    weights: dict[Feature, Annotated[float, msgspec.Meta(ge=0, le=1000)]]
    default_profile: Profile

    def __post_init__(self) -> None:
        missing = sorted(set(FEATURES) - set(self.weights))
        if missing:
            raise ValueError(f"weights for {', '.join(missing)} are missing")
        if sum(self.weights.values()) <= 0:
            raise ValueError("at least one weight must be positive")


@functools.cache
def load_weights() -> dict[str, WeightsEntry]:
    raw = resources.files("ccn_jobs").joinpath("data/score_weights.json").read_bytes()
    return msgspec.json.decode(raw, type=dict[WeightsVersion, WeightsEntry])


class ScoreOpportunityPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    opportunity: Opportunity
    as_of: IsoDate
    enrichment: EnrichOpportunityResult | None = None
    profile: Profile | None = None
    weights_version: WeightsVersion = "1"

    def __post_init__(self) -> None:
        if self.weights_version not in load_weights():
            raise ValueError(f"unknown weights_version {self.weights_version!r}; known: {', '.join(load_weights())}")
        _parse_date(self.as_of)
        if self.opportunity.deadline is not None:
            _parse_date(self.opportunity.deadline)


class Contribution(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`points` = weight x value / (sum of weights) x 100: what this feature added to the score."""

    feature: Feature
    weight: Annotated[float, msgspec.Meta(ge=0.0)]
    value: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    points: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
    note: Annotated[str, msgspec.Meta(max_length=500)]


class ScoreOpportunityResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    weights_version: WeightsVersion
    relevance_score: Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
    contributions: Annotated[tuple[Contribution, ...], msgspec.Meta(max_length=len(FEATURES))]
    explanation: Annotated[str, msgspec.Meta(max_length=4000)]


def score_opportunity(payload: ScoreOpportunityPayload) -> ScoreOpportunityResult:
    entry = load_weights()[payload.weights_version]
    profile = payload.profile or entry.default_profile
    enrichment = payload.enrichment or enrich_opportunity(EnrichOpportunityPayload(opportunity=payload.opportunity))
    opportunity = payload.opportunity
    features: dict[Feature, tuple[float, str]] = {
        "thematic_fit": _thematic_fit(enrichment, profile),
        "eligibility": _eligibility(enrichment, profile),
        "region": _region(enrichment, profile),
        "funding_type": _funding_type(enrichment, profile),
        "deadline": _deadline(opportunity, _parse_date(payload.as_of)),
        "amount": _amount(opportunity, profile),
        "completeness": _completeness(opportunity),
    }
    total_weight = sum(entry.weights.values())
    contributions = []
    for feature in FEATURES:
        value, note = features[feature]
        value = round(min(1.0, max(0.0, value)), VALUE_DIGITS)
        weight = entry.weights[feature]
        points = round(weight * value / total_weight * 100, POINT_DIGITS)
        contributions.append(Contribution(feature=feature, weight=weight, value=value, points=points, note=note))
    score = round(min(100.0, sum(c.points for c in contributions)), 1)
    return ScoreOpportunityResult(
        version=VERSION,
        weights_version=payload.weights_version,
        relevance_score=score,
        contributions=tuple(contributions),
        explanation=_explain(score, contributions, total_weight),
    )


def _explain(score: float, contributions: list[Contribution], total_weight: float) -> str:
    ranked = sorted(contributions, key=lambda c: (-c.points, FEATURES.index(c.feature)))
    lines = [f"Relevance {score:g} out of 100. What each feature added, largest first:"]
    for c in ranked:
        most = round(c.weight / total_weight * 100, POINT_DIGITS)
        lines.append(f"- {FEATURE_LABELS[c.feature]}: {c.points:g} of {most:g} points ({c.note})")
    return "\n".join(lines)[:4000]


def _thematic_fit(enrichment: EnrichOpportunityResult, profile: Profile) -> tuple[float, str]:
    if not profile.tags:
        return 1.0, "no themes asked for"
    matched = [t for t in enrichment.tags if t.tag in profile.tags]
    if not matched:
        found = ", ".join(t.tag for t in enrichment.tags[:3]) or "no recognised theme"
        return 0.0, f"none of the profile's themes; it is about {found}"
    value = sum(t.confidence for t in matched) / min(TAGS_FOR_FULL_FIT, len(profile.tags))
    named = ", ".join(f"{t.tag} ({t.confidence:g})" for t in matched)
    return value, f"matches {named}"


def _eligibility(enrichment: EnrichOpportunityResult, profile: Profile) -> tuple[float, str]:
    if not profile.eligible_kinds:
        return 1.0, "no applicant kind asked for"
    relevant = [e for e in enrichment.eligibility if e.kind in profile.eligible_kinds]
    excluded = [e for e in relevant if not e.eligible]
    if excluded:
        return 0.0, f"excludes {', '.join(e.kind for e in excluded)}: {excluded[0].evidence[0].text!r}"
    if relevant:
        best = max(relevant, key=lambda e: (e.confidence, e.kind))
        return best.confidence, f"open to {best.kind} (confidence {best.confidence:g})"
    others = [e.kind for e in enrichment.eligibility if e.eligible]
    if others:
        return 0.25, f"names only other applicants: {', '.join(others)}"
    return UNKNOWN, "says nothing about who may apply"


def _region_within(code: str, wanted: str) -> bool:
    if code == wanted or country_of(code) == wanted:
        return True
    if code == "EU":
        return wanted == "EU" or (country_of(wanted) or "") in EU_MEMBERS
    return wanted == "EU" and (country_of(code) or "") in EU_MEMBERS


def _region(enrichment: EnrichOpportunityResult, profile: Profile) -> tuple[float, str]:
    if not profile.regions:
        return 1.0, "no region asked for"
    if not enrichment.regions:
        return UNKNOWN, "no place named"
    inside = [r for r in enrichment.regions if any(_region_within(r.code, wanted) for wanted in profile.regions)]
    if inside:
        best = max(inside, key=lambda r: (r.confidence, r.code))
        return best.confidence, f"{best.code}, within {'/'.join(profile.regions)}"
    return 0.0, f"{', '.join(r.code for r in enrichment.regions[:3])}: outside {'/'.join(profile.regions)}"


def _funding_type(enrichment: EnrichOpportunityResult, profile: Profile) -> tuple[float, str]:
    if not profile.funding_types:
        return 1.0, "no funding type asked for"
    inferred = enrichment.funding_type
    if inferred is None:
        return UNKNOWN, "funding type unknown"
    if inferred.funding_type in profile.funding_types:
        return inferred.confidence, f"a {inferred.funding_type} (confidence {inferred.confidence:g})"
    return 0.0, f"a {inferred.funding_type}, not a {' or '.join(profile.funding_types)}"


def _deadline(opportunity: Opportunity, as_of: date) -> tuple[float, str]:
    if opportunity.deadline is None:
        return UNKNOWN, "no deadline given (rolling or unknown)"
    days = (_parse_date(opportunity.deadline) - as_of).days
    if days < 0:
        return 0.0, f"closed {-days} days before {as_of.isoformat()}"
    return min(1.0, days / COMFORTABLE_LEAD_DAYS), f"{days} days left"


def _amount(opportunity: Opportunity, profile: Profile) -> tuple[float, str]:
    amount = opportunity.amount_max if opportunity.amount_max is not None else opportunity.amount_min
    if amount is None:
        return UNKNOWN, "no amount given"
    money = f"{amount:,} {opportunity.currency or ''}".strip()
    if profile.min_amount is None and profile.max_amount is None:
        return 1.0, f"{money}; no range asked for"
    if profile.currency and opportunity.currency and profile.currency != opportunity.currency:
        # no exchange rates: a rate would have to come from outside the payload
        return UNKNOWN, f"{money}, not in {profile.currency}"
    if profile.min_amount is not None and amount < profile.min_amount:
        # log scale: a tenth of the minimum is worth half as much as a third of it, not a tenth
        value = max(0.0, 1.0 + math.log10(max(amount, 1) / profile.min_amount))
        return value, f"{money}, below the {profile.min_amount:,} asked for"
    if profile.max_amount is not None and amount > profile.max_amount:
        return ABOVE_RANGE_VALUE, f"{money}, above the {profile.max_amount:,} range"
    return 1.0, f"{money}, within range"


def _completeness(opportunity: Opportunity) -> tuple[float, str]:
    present = {
        "description": bool(opportunity.description.strip()),
        "funder": opportunity.funder is not None,
        "amount": opportunity.amount_max is not None or opportunity.amount_min is not None,
        "currency": opportunity.currency is not None,
        "deadline": opportunity.deadline is not None,
        "location": opportunity.location is not None,
    }
    missing = [name for name, there in present.items() if not there]
    value = (len(present) - len(missing)) / len(present)
    return value, f"missing {', '.join(missing)}" if missing else "every field given"


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date") from None


SAMPLE_PAYLOADS: tuple[ScoreOpportunityPayload, ...] = (
    ScoreOpportunityPayload(
        opportunity=Opportunity(
            title="Youth Conservation Corps Grants",
            description="Grants for nonprofits engaging young people in habitat restoration across the United States.",
            funder="National Environmental Education Fund",
            amount_min=10_000,
            amount_max=75_000,
            currency="USD",
            deadline="2027-03-01",
            location="United States",
        ),
        as_of="2027-01-15",
    ),
    ScoreOpportunityPayload(
        opportunity=Opportunity(
            title="Start-up loans for food businesses",
            description="Low-interest loans for small businesses in Scotland. Charities are not eligible.",
            amount_max=25_000,
            currency="GBP",
            deadline="2026-12-01",
            location="Scotland",
        ),
        as_of="2027-01-15",
    ),
    ScoreOpportunityPayload(
        opportunity=Opportunity(title="Research prize"),
        as_of="2027-01-15",
        profile=Profile(tags=("research",), funding_types=("prize",)),
    ),
)

CONSENSUS = ConsensusSpec(
    # floating-point sums may differ in their last digits between platforms; the explanation
    # prints the same numbers rounded, so it may differ by a digit
    comparator=Comparator(
        rules=(
            NumericTolerance(path="relevance_score", abs_tol=0.01),
            NumericTolerance(path="contributions[].weight", abs_tol=1e-9, rel_tol=1e-9),
            NumericTolerance(path="contributions[].value", abs_tol=1e-6),
            NumericTolerance(path="contributions[].points", abs_tol=0.01),
            FuzzyText(path="explanation", threshold=0.97),
        )
    ),
)


# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of another scorer are not comparable"),
        Bounds(path="relevance_score", ge=0.0, le=100.0),
        Size(path="contributions", min_length=len(FEATURES), max_length=len(FEATURES), note="one per feature"),
        Allowed(path="contributions[].feature", values=FEATURES),
        Bounds(path="contributions[].value", ge=0.0, le=1.0),
        Bounds(path="contributions[].points", ge=0.0, le=100.0),
        Bounds(path="contributions[].weight", ge=0.0, le=1000.0),
        Mandatory(path="explanation"),
    ),
)

SCORE_OPPORTUNITY: JobType[ScoreOpportunityPayload, ScoreOpportunityResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=ScoreOpportunityPayload,
    result_type=ScoreOpportunityResult,
    result_rules=RESULT_RULES,
    handler=score_opportunity,
    consent_scope="enrichment",
    description="Relevance score 0-100 of an opportunity to a profile, with each feature's contribution (CC-75)",
    sample_payloads=SAMPLE_PAYLOADS,
    consensus=CONSENSUS,
)
