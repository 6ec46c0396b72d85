"""Job type `extract_entities` (CC-72): organisations, opportunity titles, deadlines, amounts,
program areas and contact people in a page's text, each with its span and a confidence.

Rules and gazetteers, no statistical model (entity_rules): nothing is downloaded or trained,
and the gazetteers are a JSON file an administrator can extend. Values are normalised:
  deadline_date    ISO 8601 date ("2027-03-15"). A date without a year, or a relative one
                   ("within 30 days"), is read against the payload's `reference_date` (the
                   date the page was fetched); without one such dates are left out. The clock
                   is never read.
  monetary_amount  a decimal string ("2500000", "12.50") and an ISO 4217 `currency`; "$" alone
                   is read as USD, with a lower confidence.
  program_area     a canonical area ("arts_culture", "environment", ...), from the gazetteer.
  organization, opportunity_title, person_name   the name as written, without a leading article.
Spans are offsets in Unicode code points into `text`: `text[start:end]` is what was read.
Where candidates overlap, the more specific type wins (amount, date, organisation, title,
person, area), so "Greyhaven Heritage Trust" is an organisation, not a heritage area.

Bounds: the text is at most `MAX_TEXT_CHARS` (the payload schema), the result at most
`MAX_ENTITIES` entities (then `truncated`), each name at most `MAX_NAME_CHARS`."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Annotated

import msgspec

from ccn_jobs.consensus_rules import Comparator, ConsensusSpec, SetOverlap
from ccn_jobs.entity_rules import (
    ENTITY_TYPES,
    EntityType,
    Found,
    find_amounts,
    find_deadlines,
    find_names,
    shipped_patterns,
)
from ccn_jobs.job_type import JobType
from ccn_jobs.result_rules import Allowed, Bounds, Format, LessThan, Mandatory, ResultRules, Size, When
from ccn_proto.constraints import END

NAME = "extract_entities"
VERSION = "1"

MAX_TEXT_CHARS = 200_000
MAX_ENTITIES = 1_000
MAX_NAME_CHARS = 300
PRIORITY = ("monetary_amount", "deadline_date", "organization", "opportunity_title", "person_name", "program_area")

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS, description="the page's clean text")]
IsoDate = Annotated[str, msgspec.Meta(pattern=rf"^\d{{4}}-\d{{2}}-\d{{2}}{END}", description="YYYY-MM-DD")]
Offset = Annotated[int, msgspec.Meta(ge=0, le=MAX_TEXT_CHARS)]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Value = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
CurrencyCode = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{3}}{END}")]
Version = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9._-]+{END}")]


class ExtractEntitiesPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Text
    reference_date: IsoDate | None = None

    def __post_init__(self) -> None:
        if self.reference_date is not None:
            try:
                dt.date.fromisoformat(self.reference_date)
            except ValueError:
                raise ValueError(f"reference_date {self.reference_date!r} is not a calendar date") from None


class Entity(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: EntityType
    start: Offset
    end: Offset
    value: Value
    currency: CurrencyCode | None = None
    confidence: Confidence

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("an entity's end must come after its start")
        if (self.currency is None) != (self.type != "monetary_amount"):
            raise ValueError("an amount has a currency, and nothing else has one")


class ExtractEntitiesResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Entities in text order (by start, then type)."""

    entities: Annotated[list[Entity], msgspec.Meta(max_length=MAX_ENTITIES)]
    truncated: bool
    version: Version
    gazetteers_version: Version


def extract_entities(payload: ExtractEntitiesPayload) -> ExtractEntitiesResult:
    patterns = shipped_patterns()
    text = payload.text
    reference = dt.date.fromisoformat(payload.reference_date) if payload.reference_date else None
    candidates = [
        *find_amounts(patterns, text),
        *find_deadlines(patterns, text, reference),
        *find_names(patterns, text),
    ]
    kept = _without_overlaps(candidates)
    entities = [
        Entity(
            type=found.type,
            start=found.start,
            end=found.end,
            value=found.value[:MAX_NAME_CHARS],
            currency=found.currency,
            confidence=found.confidence,
        )
        for found in kept[:MAX_ENTITIES]
        if found.value
    ]
    return ExtractEntitiesResult(
        entities=entities,
        truncated=len(kept) > MAX_ENTITIES,
        version=VERSION,
        gazetteers_version=patterns.gazetteers.version,
    )


def _without_overlaps(candidates: list[Found]) -> list[Found]:
    """The more specific type first, then the earlier and longer span; a candidate overlapping
    one already kept is dropped. Returned in text order."""
    rank = {entity_type: index for index, entity_type in enumerate(PRIORITY)}
    ordered = sorted(candidates, key=lambda f: (rank[f.type], f.start, -(f.end - f.start), f.value))
    kept: list[Found] = []
    # the kept spans, disjoint and sorted: a new span overlaps one only if it overlaps a neighbour
    starts: list[int] = []
    ends: list[int] = []
    for found in ordered:
        at = bisect.bisect_right(starts, found.start)
        if (at > 0 and ends[at - 1] > found.start) or (at < len(starts) and starts[at] < found.end):
            continue
        starts.insert(at, found.start)
        ends.insert(at, found.end)
        kept.append(found)
    kept.sort(key=lambda f: (f.start, ENTITY_TYPES.index(f.type)))
    return kept


SAMPLE_PAYLOADS: tuple[ExtractEntitiesPayload, ...] = (
    ExtractEntitiesPayload(
        text="The Hartwell Foundation announces the Coastal Resilience Fellowship. Awards of "
        "EUR 40,000 support research on climate adaptation. Deadline: 30 April 2027. Contact "
        "Dr. Maria Lopez.",
        reference_date="2026-12-01",
    ),
    ExtractEntitiesPayload(text="Applications close in two weeks; grants of up to £5,000 are available."),
)

CONSENSUS = ConsensusSpec(
    # the same entities at the same places; their confidences are the rules' own and not compared
    comparator=Comparator(
        rules=(SetOverlap(path="entities", key_fields=("type", "start", "end", "value", "currency"), threshold=0.95),)
    ),
)


# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of another extractor are not comparable"),
        Mandatory(path="gazetteers_version"),
        Size(path="entities", max_length=MAX_ENTITIES),
        Allowed(path="entities[].type", values=ENTITY_TYPES),
        Mandatory(path="entities[].value"),
        LessThan(path="entities[].start", sibling="end", note="a span ends after it starts"),
        Bounds(path="entities[].end", ge=1, le=MAX_TEXT_CHARS, note="a span lies within the text"),
        Bounds(path="entities[].confidence", ge=0.0, le=1.0),
        Format(path="entities[].value", format="iso_date", when=When(field="type", is_in=("deadline_date",))),
        Format(
            path="entities[].value",
            regex=r"[0-9]{1,16}(\.[0-9]{2})?",
            when=When(field="type", is_in=("monetary_amount",)),
            note="an amount is a decimal string",
        ),
        Mandatory(path="entities[].currency", when=When(field="type", is_in=("monetary_amount",))),
    ),
)

EXTRACT_ENTITIES: JobType[ExtractEntitiesPayload, ExtractEntitiesResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=ExtractEntitiesPayload,
    result_type=ExtractEntitiesResult,
    result_rules=RESULT_RULES,
    handler=extract_entities,
    consent_scope="nlp",
    description="Organisations, titles, deadlines, amounts, program areas and people in a text, normalised (CC-72)",
    sample_payloads=SAMPLE_PAYLOADS,
    consensus=CONSENSUS,
)
