"""Job type `normalize_locations` (CC-43): free-text locations ("Seattle, WA", "anywhere in the
European Union", "Toronto, Ontario", "Nationwide") as country (ISO 3166-1 alpha-2), region
(ISO 3166-2 where coded), city, the scope they cover, and a confidence.

Places are found by ccn_jobs.places (its gazetteer of countries, US states and UK nations, with
its rule that a two-letter state code counts only written in capitals after a comma), by the
ISO 3166-1 names of ccn_jobs.addresses for the rest of the world, and by the Canadian and
Australian regions of ccn_jobs.addresses. The city is the last comma-separated part that names
no region or country, less words with digits (street numbers, postcodes), of at most four
words, and not a word that names no place ("online", "remote").

Confidence says where the country came from:
  a country named in the text                       0.9
  a region, state or nation that implies it          0.85
  a postcode of a form only one country uses         0.7
  only the record's `country_hint`                   0.5 with a city, else 0.4
  no country, a city alone ("Paris")                 0.3
plus 0.05 when a city was found too; a text naming several countries keeps the first at 0.6 of
its confidence and says so. "Anywhere in the EU" is 0.8 for the EU, "worldwide" 0.9 for the
world. Nothing found is 0 with an issue. Deterministic: rules over the text, rounded to 4 digits."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from ccn_jobs.addresses import city_display, country_code, mentioned_countries, postcode_country, region_code
from ccn_jobs.job_type import JobType
from ccn_jobs.normalisation import IssueLog, Issues, clean_field, within_result_bound
from ccn_jobs.normalize_funders import CountryCode, Place, RegionCode, SourceRecordId
from ccn_jobs.places import US_STATES, PlaceMention, country_of, find_places, fold
from ccn_jobs.result_rules import Allowed, Bounds, Format, Mandatory, ResultRules
from ccn_proto.constraints import MULTI_LINE_PATTERN

NAME = "normalize_locations"
VERSION = "1"

MAX_LOCATIONS = 500
MAX_LOCATION_CHARS = 300
MAX_CITY_WORDS = 4
CONFIDENCE_DIGITS = 4
NAMED_COUNTRY, IMPLIED_BY_REGION, TELLING_POSTCODE = 0.9, 0.85, 0.7
HINT_WITH_CITY, HINT_ALONE, CITY_ALONE, CITY_BONUS, SEVERAL_COUNTRIES_FACTOR = 0.5, 0.4, 0.3, 0.05, 0.6
SUPRANATIONAL, WORLD = 0.8, 0.9

Scope = Literal["city", "region", "country", "supranational", "world"]
_WORLD = re.compile(
    r"(?i)\b(?:world-?wide|globally|global|international(?:ly)?|any country|all countries|anywhere in the world)\b"
)
_NATIONWIDE = re.compile(r"(?i)\b(?:nation-?wide|national|country-?wide|across the country)\b")
NOT_PLACES = frozenset(
    {"online", "remote", "virtual", "various", "tbd", "n a", "na", "none", "anywhere", "multiple", "other"}
)


class LocationInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`country_hint`: the country the source is about when the text does not say (a state
    register's, Grants.gov's US)."""

    id: SourceRecordId
    text: Annotated[str, msgspec.Meta(max_length=2000, pattern=MULTI_LINE_PATTERN)]
    country_hint: CountryCode | None = None


class NormalizeLocationsPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    locations: Annotated[tuple[LocationInput, ...], msgspec.Meta(min_length=1, max_length=MAX_LOCATIONS)]

    def __post_init__(self) -> None:
        ids = [location.id for location in self.locations]
        if len(set(ids)) != len(ids):
            raise ValueError("location ids must be unique")


class NormalizedLocation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`countries`: every country the text names, the first being `country`; `supranational`:
    "EU" when the text names the European Union."""

    id: SourceRecordId
    country: CountryCode | None
    region: RegionCode | None
    city: Place | None
    supranational: Literal["EU"] | None
    countries: Annotated[tuple[CountryCode, ...], msgspec.Meta(max_length=32)]
    scope: Scope | None
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    issues: Issues


class NormalizeLocationsResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    locations: Annotated[tuple[NormalizedLocation, ...], msgspec.Meta(max_length=MAX_LOCATIONS)]


def normalize_locations(payload: NormalizeLocationsPayload) -> NormalizeLocationsResult:
    result = NormalizeLocationsResult(
        version=VERSION, locations=tuple(normalize_location(location) for location in payload.locations)
    )
    return within_result_bound(NAME, result)


def normalize_location(location: LocationInput) -> NormalizedLocation:
    issues = IssueLog()
    text = clean_field(location.text, MAX_LOCATION_CHARS, "text", issues)
    parts = [part.strip() for part in text.split(",") if part.strip()]
    mentions = find_places(text)
    named_parts = {fold(m.evidence) for m in mentions}
    region = _region(mentions, parts, location.country_hint, named_parts)
    named_countries = _named_countries(text, parts, named_parts)
    if region is not None and named_countries and country_of(region) not in named_countries:
        # "Perth, WA, Australia": the state code is Western Australia's, not Washington's
        region = next((code for part in parts if (code := region_code(part, named_countries[0]))), None)
    country, confidence = _country(region, named_countries, parts, location.country_hint, text)
    implied = [country] if country is not None and region is not None and country not in named_countries else []
    countries = implied + named_countries
    supranational: Literal["EU"] | None = "EU" if any(m.code == "EU" for m in mentions) else None
    city = _city(parts, named_parts)
    if city is not None and country is not None and confidence > HINT_WITH_CITY:
        confidence += CITY_BONUS
    elif city is not None and country is not None:
        confidence = HINT_WITH_CITY
    elif city is not None:
        confidence = CITY_ALONE
    if len(countries) > 1:
        confidence *= SEVERAL_COUNTRIES_FACTOR
        issues.add("text", "several_countries", f"names {', '.join(countries[:5])}; {countries[0]} taken")
    scope: Scope | None = (
        "city" if city else "region" if region else "country" if country else "supranational" if supranational else None
    )
    if scope is None and _WORLD.search(text):
        scope, confidence = "world", WORLD
    elif scope == "supranational":
        confidence = SUPRANATIONAL
    if scope is None:
        issues.add("text", "location_unknown", f"no place in {text[:60]!r}")
    return NormalizedLocation(
        id=location.id,
        country=country,
        region=region,
        city=city,
        supranational=supranational,
        countries=tuple(countries[:32]),
        scope=scope,
        confidence=round(min(1.0, confidence), CONFIDENCE_DIGITS),
        issues=tuple(issues),
    )


def _region(mentions: list[PlaceMention], parts: list[str], hint: str | None, named_parts: set[str]) -> str | None:
    """A US state or UK nation the gazetteer found, else a part that is a coded region
    (Canadian and Australian ones, ISO 3166-2 codes as written, a bare code with the hint)."""
    for part in parts:  # an ISO 3166-2 code as written says it most exactly: "CA-ON"
        if "-" in part and (code := region_code(part, None)):
            named_parts.add(fold(part))
            return code
    region = next((m.code for m in mentions if "-" in m.code), None)
    if region is not None:
        return region
    for part in parts:
        if code := region_code(part, hint):
            named_parts.add(fold(part))
            return code
    return None


def _named_countries(text: str, parts: list[str], named_parts: set[str]) -> list[str]:
    """Every country the text names, in order: by the gazetteer, by an ISO name ("Viet Nam"),
    by a code ("DE" alone, "GBR")."""
    countries = mentioned_countries(text, by_regions=False)
    for part in parts:
        if fold(part) in named_parts:  # a region already: "CA" read as California by the hint
            continue
        is_code = part.isupper() and len(part) <= 3 and (part not in US_STATES or len(parts) == 1)
        if (is_code or len(part) > 3) and (code := country_code(part)):
            named_parts.add(fold(part))
            if code not in countries:
                countries.append(code)
    return countries


def _country(
    region: str | None, named: list[str], parts: list[str], hint: str | None, text: str
) -> tuple[str | None, float]:
    if named:
        return named[0], NAMED_COUNTRY
    if region is not None:
        return country_of(region), IMPLIED_BY_REGION
    for part in parts:
        for word_run in _postcode_candidates(part):
            if code := postcode_country(word_run):
                return code, TELLING_POSTCODE
    if hint is not None and (_NATIONWIDE.search(text) or parts):
        return hint, HINT_ALONE
    return None, 0.0


def _postcode_candidates(part: str) -> list[str]:
    """The last one and two words of a part: where a postcode stands ("London SW1A 1AA")."""
    words = part.split()
    return [" ".join(words[-2:]), words[-1]] if len(words) >= 2 else words


def _city(parts: list[str], named: set[str]) -> str | None:
    for part in reversed(parts):
        folded = fold(part)
        if not folded or folded in named or any(fold(name) in folded.split() for name in named if " " not in name):
            continue
        words = [word for word in part.split() if not any(ch.isdigit() for ch in word)]
        if not words or len(words) > MAX_CITY_WORDS or fold(" ".join(words)) in NOT_PLACES:
            continue
        if _WORLD.search(part) or _NATIONWIDE.search(part) or not any(ch.isalpha() for ch in part):
            continue
        if postcode_country(part) or (part.isupper() and len(part) <= 3):  # a postcode, a code
            continue
        return city_display(" ".join(words)) or None
    return None


SAMPLE_PAYLOADS: tuple[NormalizeLocationsPayload, ...] = (
    NormalizeLocationsPayload(
        locations=(
            LocationInput(id="gg-1", text="Seattle, WA 98109"),
            LocationInput(id="site-2", text="Anywhere in the European Union"),
            LocationInput(id="site-3", text="Toronto, Ontario"),
            LocationInput(id="site-4", text="Nationwide", country_hint="US"),
            LocationInput(id="site-5", text="LONDON SW1A 1AA"),
            LocationInput(id="site-6", text="UK and Ireland"),
            LocationInput(id="site-7", text="Online"),
            LocationInput(id="site-8", text="Zürich, Schweiz"),
        )
    ),
)

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of other rules are not comparable"),
        Mandatory(path="locations[].id"),
        Format(path="locations[].country", format="iso_country"),
        Format(path="locations[].countries[]", format="iso_country"),
        Format(path="locations[].region", format="iso_region"),
        Bounds(path="locations[].confidence", ge=0.0, le=1.0),
    ),
)

NORMALIZE_LOCATIONS: JobType[NormalizeLocationsPayload, NormalizeLocationsResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=NormalizeLocationsPayload,
    result_type=NormalizeLocationsResult,
    result_rules=RESULT_RULES,
    handler=normalize_locations,
    consent_scope="datasets",
    description="Free-text locations to country, region and city, with a confidence (CC-43)",
    sample_payloads=SAMPLE_PAYLOADS,
)
