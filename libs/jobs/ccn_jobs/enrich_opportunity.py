"""Job type `enrich_opportunity` (CC-74): who may apply, what it is about, where, and what kind
of money, inferred from an opportunity record by rules, each inference with the words that
produced it.

The rules are data (ccn_jobs/data/enrichment_rules.json, checked when loaded): keyword lists for
thematic tags, for kinds of applicant and for funding types, and phrases that turn a mention of
an applicant kind into an exclusion ("individuals are not eligible"). Places come from the
gazetteer in ccn_jobs.places. Keywords match whole words, case-insensitively.

Confidence says how much evidence there is and where: a keyword in the title counts more than
one in the description. An inference below LOW_CONFIDENCE is kept, flagged `low_confidence`, so
a reviewer or the scorer can discount it rather than a wrong guess passing as fact.

Determinism: plain string rules over the payload; confidences are rounded to 4 digits. A change
of the rules file that alters output must bump VERSION (the rules carry a version of their own,
which is in every result).

Bounds: the description is at most MAX_DESCRIPTION_CHARS; each inference keeps at most
MAX_EVIDENCE pieces of evidence, each at most MAX_EVIDENCE_CHARS long."""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Annotated, Literal

import msgspec

from ccn_jobs.job_type import JobType
from ccn_jobs.keyword_trie import trie_pattern
from ccn_jobs.places import find_places
from ccn_jobs.result_rules import Allowed, Bounds, Format, Mandatory, ResultRules
from ccn_proto.constraints import END, MULTI_LINE_PATTERN, SINGLE_LINE_PATTERN

NAME = "enrich_opportunity"
VERSION = "1"

MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 100_000
MAX_EVIDENCE = 5
MAX_EVIDENCE_CHARS = 200
LOW_CONFIDENCE = 0.6
CONFIDENCE_DIGITS = 4
# how much one piece of evidence is worth, by where it was found
FIELD_WEIGHT = {"title": 0.45, "funder": 0.25, "location": 0.45, "description": 0.3, "amount": 0.0}
BASE_CONFIDENCE = 0.3
REGION_FROM_TEXT_CAP = 0.7  # a place named in the description may be an example, not a rule
NEGATION_WINDOW_CHARS = 80  # how near a negation must be, in the same sentence, to exclude

Field = Literal["title", "description", "funder", "location", "amount"]
EligibilityKind = Literal["nonprofit", "individual", "university", "government", "business"]
FundingType = Literal["grant", "loan", "fellowship", "prize", "in_kind"]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Amount = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
Currency = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{3}}{END}")]
IsoDate = Annotated[str, msgspec.Meta(pattern=rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{END}")]


class Opportunity(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An opportunity record as extraction leaves it; every field but the title may be missing.
    Amounts are whole units of `currency`."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_CHARS, pattern=SINGLE_LINE_PATTERN)]
    description: Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_CHARS, pattern=MULTI_LINE_PATTERN)] = ""
    funder: Annotated[str, msgspec.Meta(max_length=300, pattern=SINGLE_LINE_PATTERN)] | None = None
    amount_min: Amount | None = None
    amount_max: Amount | None = None
    currency: Currency | None = None
    deadline: IsoDate | None = None
    location: Annotated[str, msgspec.Meta(max_length=500, pattern=SINGLE_LINE_PATTERN)] | None = None


class EnrichOpportunityPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    opportunity: Opportunity


class Evidence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    field: Field
    text: Annotated[str, msgspec.Meta(max_length=MAX_EVIDENCE_CHARS)]


EvidenceList = Annotated[tuple[Evidence, ...], msgspec.Meta(min_length=1, max_length=MAX_EVIDENCE)]


class EligibilityInference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`eligible` False: the record says this kind of applicant may not apply."""

    kind: EligibilityKind
    eligible: bool
    confidence: Confidence
    low_confidence: bool
    evidence: EvidenceList


class TagInference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tag: Annotated[str, msgspec.Meta(pattern=rf"^[a-z_]{{1,40}}{END}")]
    confidence: Confidence
    low_confidence: bool
    evidence: EvidenceList


class RegionInference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`code`: ISO 3166-1 alpha-2 ("GB"), ISO 3166-2 ("US-WA"), or "EU"."""

    code: Annotated[str, msgspec.Meta(pattern=rf"^(?:[A-Z]{{2}}(?:-[A-Z0-9]{{1,3}})?){END}")]
    confidence: Confidence
    low_confidence: bool
    evidence: EvidenceList


class FundingTypeInference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    funding_type: FundingType
    confidence: Confidence
    low_confidence: bool
    evidence: EvidenceList


class EnrichOpportunityResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    rules_version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    eligibility: Annotated[tuple[EligibilityInference, ...], msgspec.Meta(max_length=8)]
    tags: Annotated[tuple[TagInference, ...], msgspec.Meta(max_length=64)]
    regions: Annotated[tuple[RegionInference, ...], msgspec.Meta(max_length=64)]
    funding_type: FundingTypeInference | None


class EnrichmentRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The rules file: keyword lists by tag, by applicant kind and by funding type."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    tags: dict[Annotated[str, msgspec.Meta(pattern=rf"^[a-z_]{{1,40}}{END}")], tuple[str, ...]]
    eligibility: dict[EligibilityKind, tuple[str, ...]]
    funding_types: dict[FundingType, tuple[str, ...]]
    negations: tuple[str, ...]

    def __post_init__(self) -> None:
        for group in (self.tags, self.eligibility, self.funding_types):
            for name, keywords in group.items():
                if not keywords or any(not k.strip() or k != k.lower() for k in keywords):
                    raise ValueError(f"{name}: keywords must be non-empty lower-case phrases")


@functools.cache
def load_rules() -> EnrichmentRules:
    raw = resources.files("ccn_jobs").joinpath("data/enrichment_rules.json").read_bytes()
    return msgspec.json.decode(raw, type=EnrichmentRules)


@functools.cache
def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """Any of the keywords as whole words (a hyphen joins words: "non-profit" is one), the
    longest where one is a prefix of another."""
    return re.compile(rf"(?<![\w-])(?:{trie_pattern(keywords)})(?![\w-])", re.IGNORECASE)


def _texts(opportunity: Opportunity) -> _Texts:
    fields: list[tuple[Field, str | None]] = [
        ("title", opportunity.title),
        ("funder", opportunity.funder),
        ("location", opportunity.location),
        ("description", opportunity.description),
    ]
    return _Texts([(field, text) for field, text in fields if text])


@functools.cache
def _first_words(keywords: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_WORD.findall(keyword)[0] for keyword in keywords if _WORD.search(keyword))


_WORD = re.compile(r"\w+")


class _Texts(list[tuple[Field, str]]):
    """The fields to search, and every word in them: a keyword whose first word is not among
    them cannot match, so most keyword lists are passed over without a regex scan."""

    def __init__(self, texts: list[tuple[Field, str]]) -> None:
        super().__init__(texts)
        self.words = frozenset(word for _, text in texts for word in _WORD.findall(text.lower()))


def _find(keywords: tuple[str, ...], texts: _Texts) -> list[tuple[Field, str, int, str]]:
    """(field, matched words, position, the field's text) for each whole-word match."""
    if texts.words.isdisjoint(_first_words(keywords)):
        return []
    pattern = _keyword_pattern(keywords)
    return [(field, m.group(0), m.start(), text) for field, text in texts for m in pattern.finditer(text)]


def _confidence(hits: list[tuple[Field, str]], cap: float = 1.0) -> float:
    distinct = dict.fromkeys(hits)  # one word counted once per field, in first-seen order
    score = BASE_CONFIDENCE + sum(FIELD_WEIGHT[field] for field, _ in distinct)
    return round(min(cap, score, 1.0), CONFIDENCE_DIGITS)


def _evidence(hits: list[tuple[Field, str]]) -> tuple[Evidence, ...]:
    distinct = list(dict.fromkeys(hits))
    distinct.sort(key=lambda hit: -FIELD_WEIGHT[hit[0]])  # title, location first; stable otherwise
    return tuple(Evidence(field=field, text=text[:MAX_EVIDENCE_CHARS]) for field, text in distinct[:MAX_EVIDENCE])


def enrich_opportunity(payload: EnrichOpportunityPayload) -> EnrichOpportunityResult:
    rules = load_rules()
    texts = _texts(payload.opportunity)
    return EnrichOpportunityResult(
        version=VERSION,
        rules_version=rules.version,
        eligibility=_eligibility(rules, texts),
        tags=_tags(rules, texts),
        regions=_regions(payload.opportunity),
        funding_type=_funding_type(rules, payload.opportunity, texts),
    )


def _tags(rules: EnrichmentRules, texts: _Texts) -> tuple[TagInference, ...]:
    inferred = []
    for tag, keywords in sorted(rules.tags.items()):
        hits = [(field, words.lower()) for field, words, _, _ in _find(keywords, texts)]
        if hits:
            confidence = _confidence(hits)
            inferred.append(
                TagInference(
                    tag=tag,
                    confidence=confidence,
                    low_confidence=confidence < LOW_CONFIDENCE,
                    evidence=_evidence(hits),
                )
            )
    return tuple(sorted(inferred, key=lambda t: (-t.confidence, t.tag)))


def _eligibility(rules: EnrichmentRules, texts: _Texts) -> tuple[EligibilityInference, ...]:
    negation = _keyword_pattern(rules.negations)
    inferred = []
    for kind, keywords in sorted(rules.eligibility.items()):
        eligible_hits: list[tuple[Field, str]] = []
        excluded_hits: list[tuple[Field, str]] = []
        for field, words, position, text in _find(keywords, texts):
            sentence = _sentence_around(text, position)
            if negation.search(sentence):
                excluded_hits.append((field, sentence.strip()))
            else:
                eligible_hits.append((field, words.lower()))
        # an explicit exclusion outweighs mentions: "X may apply" rarely follows "X are not eligible"
        eligible, hits = (False, excluded_hits) if excluded_hits else (True, eligible_hits)
        if hits:
            confidence = _confidence(hits)
            inferred.append(
                EligibilityInference(
                    kind=kind,
                    eligible=eligible,
                    confidence=confidence,
                    low_confidence=confidence < LOW_CONFIDENCE,
                    evidence=_evidence(hits),
                )
            )
    return tuple(inferred)


def _sentence_around(text: str, position: int) -> str:
    """The sentence (or list item) holding `position`, cut to NEGATION_WINDOW_CHARS each side."""
    start = max(text.rfind(mark, 0, position) for mark in (".", "\n", ";", "!", "?")) + 1
    ends = [i for i in (text.find(mark, position) for mark in (".", "\n", ";", "!", "?")) if i != -1]
    end = min(ends) if ends else len(text)
    return text[max(start, position - NEGATION_WINDOW_CHARS) : min(end, position + NEGATION_WINDOW_CHARS)]


def _regions(opportunity: Opportunity) -> tuple[RegionInference, ...]:
    found: dict[str, list[tuple[Field, str]]] = {}
    sources: list[tuple[Field, str | None]] = [
        ("location", opportunity.location),
        ("title", opportunity.title),
        ("description", opportunity.description),
    ]
    for field, text in sources:
        for mention in find_places(text or ""):
            found.setdefault(mention.code, []).append((field, mention.evidence))
    inferred = []
    for code, hits in found.items():
        named_in_location = any(field == "location" for field, _ in hits)
        confidence = _confidence(hits, cap=1.0 if named_in_location else REGION_FROM_TEXT_CAP)
        inferred.append(
            RegionInference(
                code=code, confidence=confidence, low_confidence=confidence < LOW_CONFIDENCE, evidence=_evidence(hits)
            )
        )
    return tuple(sorted(inferred, key=lambda r: (-r.confidence, r.code))[:64])


def _funding_type(rules: EnrichmentRules, opportunity: Opportunity, texts: _Texts) -> FundingTypeInference | None:
    """The type with the strongest evidence; ties go to the earlier type in the rules file.
    With no type named but an amount given, a grant at low confidence: most offers of money
    that name no type are grants."""
    best: tuple[float, int, FundingType, list[tuple[Field, str]]] | None = None
    for order, (funding_type, keywords) in enumerate(rules.funding_types.items()):
        hits = [(field, words.lower()) for field, words, _, _ in _find(keywords, texts)]
        if hits:
            confidence = _confidence(hits)
            if best is None or (confidence, -order) > (best[0], -best[1]):
                best = (confidence, order, funding_type, hits)
    if best is None:
        if opportunity.amount_max is None and opportunity.amount_min is None:
            return None
        amount = opportunity.amount_max if opportunity.amount_max is not None else opportunity.amount_min
        money = f"{amount} {opportunity.currency}" if opportunity.currency else str(amount)
        return FundingTypeInference(
            funding_type="grant",
            confidence=BASE_CONFIDENCE,
            low_confidence=True,
            evidence=(Evidence(field="amount", text=f"an amount ({money}) and no type named"),),
        )
    confidence, _, funding_type, hits = best
    return FundingTypeInference(
        funding_type=funding_type,
        confidence=confidence,
        low_confidence=confidence < LOW_CONFIDENCE,
        evidence=_evidence(hits),
    )


SAMPLE_PAYLOADS: tuple[EnrichOpportunityPayload, ...] = (
    EnrichOpportunityPayload(
        opportunity=Opportunity(
            title="Community Climate Action Grants 2027",
            description=(
                "Grants of up to $50,000 for nonprofits and tribal governments restoring wetlands and urban "
                "green spaces. Projects must involve young people from low-income neighborhoods.\n"
                "Individuals and for-profit businesses are not eligible."
            ),
            funder="Puget Sound Environmental Fund",
            amount_max=50_000,
            currency="USD",
            deadline="2027-03-31",
            location="Washington State, USA",
        )
    ),
    EnrichOpportunityPayload(
        opportunity=Opportunity(
            title="Early-career research fellowship in digital humanities",
            description="Open to postdoctoral researchers at universities in any EU member state or the UK.",
            location="Europe",
        )
    ),
    EnrichOpportunityPayload(opportunity=Opportunity(title="Untitled")),
)

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of another enricher are not comparable"),
        Mandatory(path="rules_version"),
        Bounds(path="eligibility[].confidence", ge=0.0, le=1.0),
        Mandatory(path="eligibility[].evidence[].text", note="an inference shows the words it rests on"),
        Bounds(path="tags[].confidence", ge=0.0, le=1.0),
        Mandatory(path="tags[].evidence[].text", note="an inference shows the words it rests on"),
        Format(path="regions[].code", format="iso_region"),
        Bounds(path="regions[].confidence", ge=0.0, le=1.0),
        Bounds(path="funding_type.confidence", ge=0.0, le=1.0),
        Mandatory(path="funding_type.evidence[].text", note="an inference shows the words it rests on"),
    ),
)

ENRICH_OPPORTUNITY: JobType[EnrichOpportunityPayload, EnrichOpportunityResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=EnrichOpportunityPayload,
    result_type=EnrichOpportunityResult,
    result_rules=RESULT_RULES,
    handler=enrich_opportunity,
    consent_scope="enrichment",
    description="Eligibility, thematic tags, region and funding type of an opportunity, with evidence (CC-74)",
    sample_payloads=SAMPLE_PAYLOADS,
)
