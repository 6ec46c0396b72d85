"""Job type `normalize_funders` (CC-43): a batch of raw funder records, as IRS Business Master
File rows, Grants.gov agency entries or a foundation's own site give them, in one canonical
form that the merge service can stitch across sources (CC-44):
- the name in display form (title case for the all-capitals BMF names) and its match key
  (ccn_jobs.org_names: folded, "The" and legal forms dropped, what link_entities compares);
  aliases the same, each once;
- the EIN as 12-3456789, checked (9 digits, an IRS prefix that is issued); an invalid one is
  reported, never corrected;
- the address in parts (ccn_jobs.addresses): street, house number, unit, PO box, city, region
  (ISO 3166-2 where coded), postcode in its country's form, country (ISO 3166-1 alpha-2);
- the website canonical (ccn_jobs.normalisation.canonical_website);
- categories (NTEE codes, Grants.gov codes, or words) as ids of the canonical vocabulary, the
  NTEE major groups (ccn_jobs/data/categories.json), with the NTEE codes kept as given;
- per record, every issue: what could not be normalised and why.

Deterministic (the payload alone decides; usaddress's tagging is a fixed model's Viterbi
decode) and idempotent: a normalised record, given back as a raw one, comes out unchanged.

Bounds: at most MAX_RECORDS records, every raw field bounded, every normalised one cut to its
own bound (reported), one issue per field and code; a batch whose result would encode to over
MAX_RESULT_BYTES fails as `too_large` (the same on every node) rather than being cut."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ccn_jobs.addresses import (
    city_display,
    country_code,
    format_postcode,
    mentioned_countries,
    parse_street_lines,
    postcode_country,
    region_code,
)
from ccn_jobs.job_type import JobType
from ccn_jobs.normalisation import (
    CategoryId,
    CategoryScheme,
    Issue,
    IssueLog,
    Issues,
    canonical_categories,
    canonical_website,
    clean_field,
    display_case,
    load_vocabulary,
    name_match_key,
    normalise_ein,
    within_result_bound,
)
from ccn_jobs.places import US_STATES, parse_location
from ccn_jobs.result_rules import Allowed, Format, Mandatory, ResultRules
from ccn_proto.constraints import END, MULTI_LINE_PATTERN, SINGLE_LINE_PATTERN

NAME = "normalize_funders"
VERSION = "1"

MAX_RECORDS = 500
MAX_NAME_CHARS = 300
MAX_ALIASES = 20
MAX_ADDRESS_LINES = 4
MAX_LINE_CHARS = 200
MAX_PLACE_CHARS = 100
MAX_CATEGORIES = 20

# raw fields: tabs and line breaks allowed (cleaning folds them), other control characters not
RawName = Annotated[str, msgspec.Meta(max_length=1000, pattern=MULTI_LINE_PATTERN)]
RawLine = Annotated[str, msgspec.Meta(max_length=1000, pattern=MULTI_LINE_PATTERN)]
RawPlace = Annotated[str, msgspec.Meta(max_length=300, pattern=MULTI_LINE_PATTERN)]
RawEin = Annotated[str, msgspec.Meta(max_length=64, pattern=MULTI_LINE_PATTERN)]
RawWebsite = Annotated[str, msgspec.Meta(max_length=4096, pattern=MULTI_LINE_PATTERN)]
RawCategory = Annotated[str, msgspec.Meta(max_length=300, pattern=MULTI_LINE_PATTERN)]
SourceName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9][A-Za-z0-9._:-]*{END}")]
SourceRecordId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=rf"^[\x21-\x7e]+{END}")]

Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS, pattern=SINGLE_LINE_PATTERN)]
MatchKey = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS, pattern=rf"^[a-z0-9 ]*{END}")]
Line = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LINE_CHARS, pattern=SINGLE_LINE_PATTERN)]
Place = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PLACE_CHARS, pattern=SINGLE_LINE_PATTERN)]
Ein = Annotated[str, msgspec.Meta(pattern=rf"^[0-9]{{2}}-[0-9]{{7}}{END}")]
CountryCode = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{2}}{END}")]
RegionCode = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{2}}-[A-Z0-9]{{1,3}}{END}")]
Postcode = Annotated[str, msgspec.Meta(min_length=2, max_length=12, pattern=rf"^[A-Z0-9][A-Z0-9 -]*{END}")]
Website = Annotated[str, msgspec.Meta(min_length=1, max_length=2048, pattern=rf"^https?://[\x21-\x7e]+{END}")]
NteeCode = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z](?:[0-9]{{2}}[A-Z0-9]?)?{END}")]


class RawFunder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A funder as one source gives it. `category_scheme` says what `categories` hold: NTEE
    codes ("ntee", as the BMF's NTEE_CD), Grants.gov category codes ("grants_gov"), or words."""

    source: SourceName
    source_record_id: SourceRecordId
    name: RawName
    aliases: Annotated[tuple[RawName, ...], msgspec.Meta(max_length=MAX_ALIASES)] = ()
    ein: RawEin | None = None
    address_lines: Annotated[tuple[RawLine, ...], msgspec.Meta(max_length=MAX_ADDRESS_LINES)] = ()
    city: RawPlace | None = None
    region: RawPlace | None = None
    postcode: RawPlace | None = None
    country: RawPlace | None = None
    website: RawWebsite | None = None
    categories: Annotated[tuple[RawCategory, ...], msgspec.Meta(max_length=MAX_CATEGORIES)] = ()
    category_scheme: CategoryScheme = "text"


class NormalizeFundersPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    records: Annotated[tuple[RawFunder, ...], msgspec.Meta(min_length=1, max_length=MAX_RECORDS)]

    def __post_init__(self) -> None:
        keys = [(record.source, record.source_record_id) for record in self.records]
        if len(set(keys)) != len(keys):
            raise ValueError("(source, source_record_id) pairs must be unique")


class NormalizedAddress(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`lines`: the street-level lines, cleaned (in display case), without what was read out of
    them as city, region or postcode; `region`: ISO 3166-2 where coded, else `region_name` as
    written; `postcode` in its country's form, else `postcode_written` as written (reported)."""

    lines: Annotated[tuple[Line, ...], msgspec.Meta(max_length=MAX_ADDRESS_LINES)] = ()
    house_number: Place | None = None
    street: Line | None = None
    unit: Place | None = None
    po_box: Place | None = None
    city: Place | None = None
    region: RegionCode | None = None
    region_name: Place | None = None
    postcode: Postcode | None = None
    postcode_written: Place | None = None
    country: CountryCode | None = None


class NormalizedFunder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source: SourceName
    source_record_id: SourceRecordId
    name: Name
    name_key: MatchKey
    aliases: Annotated[tuple[Name, ...], msgspec.Meta(max_length=MAX_ALIASES)]
    alias_keys: Annotated[tuple[MatchKey, ...], msgspec.Meta(max_length=MAX_ALIASES)]
    ein: Ein | None
    address: NormalizedAddress
    website: Website | None
    categories: Annotated[tuple[CategoryId, ...], msgspec.Meta(max_length=32)]
    ntee_codes: Annotated[tuple[NteeCode, ...], msgspec.Meta(max_length=MAX_CATEGORIES)]
    issues: Issues


class NormalizeFundersResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One record per input record, in input order."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    vocabulary_version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    records: Annotated[tuple[NormalizedFunder, ...], msgspec.Meta(max_length=MAX_RECORDS)]
    records_with_issues: Annotated[int, msgspec.Meta(ge=0, le=MAX_RECORDS)]


def normalize_funders(payload: NormalizeFundersPayload) -> NormalizeFundersResult:
    records = tuple(normalize_funder(record) for record in payload.records)
    result = NormalizeFundersResult(
        version=VERSION,
        vocabulary_version=load_vocabulary().version,
        records=records,
        records_with_issues=sum(1 for record in records if record.issues),
    )
    return within_result_bound(NAME, result)


def normalize_funder(raw: RawFunder) -> NormalizedFunder:
    issues = IssueLog()
    name = display_case(clean_field(raw.name, MAX_NAME_CHARS, "name", issues))
    if not name:
        issues.add("name", "empty_name", "nothing of the name is left once cleaned")
    key = name_match_key(name) if name else ""
    aliases: list[str] = []
    alias_keys: list[str] = []
    for alias in raw.aliases:
        shown = display_case(clean_field(alias, MAX_NAME_CHARS, "aliases", issues))
        alias_key = name_match_key(shown) if shown else ""
        if alias_key and alias_key != key and alias_key not in alias_keys:
            aliases.append(shown)
            alias_keys.append(alias_key)
    categories, ntee_codes = canonical_categories(raw.categories, raw.category_scheme, issues)
    return NormalizedFunder(
        source=raw.source,
        source_record_id=raw.source_record_id,
        name=name,
        name_key=key,
        aliases=tuple(aliases),
        alias_keys=tuple(alias_keys),
        ein=normalise_ein(raw.ein, issues) if raw.ein is not None else None,
        address=normalize_address(raw, issues),
        website=canonical_website(raw.website, issues) if raw.website is not None else None,
        categories=categories,
        ntee_codes=ntee_codes,
        issues=tuple(issues),
    )


def normalize_address(raw: RawFunder, issues: IssueLog) -> NormalizedAddress:
    lines = [
        line
        for written in raw.address_lines
        if (line := display_case(clean_field(written, MAX_LINE_CHARS, "address_lines", issues)))
    ]
    city = _place(raw.city, "city", issues)
    region_text = _place(raw.region, "region", issues)
    postcode_text = _place(raw.postcode, "postcode", issues)
    country_text = _place(raw.country, "country", issues)
    country = None
    if country_text:
        country = country_code(country_text)
        if country is None:
            issues.add("country", "unknown_country", f"{country_text[:60]!r} is not an ISO 3166-1 country")
    if country is None:
        country = _country_from(lines, region_text, postcode_text)
    parts = parse_street_lines(lines, country, want_locality=not city and not postcode_text, issues=issues)
    city = city or parts.city
    region_text = region_text or parts.region
    postcode_text = postcode_text or parts.postcode
    if country is None:
        country = _country_from(lines, region_text, postcode_text)
        if country is None and not country_text and (lines or city or region_text or postcode_text):
            issues.add("country", "country_unknown", "no country given and none could be read from the address")
    elif lines and (named := mentioned_countries(", ".join(lines))) and country not in named:
        issues.add("country", "country_conflict", f"the address names {', '.join(named[:3])}, the country {country}")
    region = region_name = None
    if region_text:
        region = region_code(region_text, country)
        if region is None:
            region_name = region_text
            issues.add("region", "region_not_coded", f"{region_text[:60]!r} has no ISO 3166-2 code here")
    postcode = postcode_written = None
    if postcode_text:
        postcode = format_postcode(postcode_text, country)
        if postcode is None:
            postcode_written = postcode_text
            issues.add("postcode", "invalid_postcode", f"{postcode_text[:20]!r} is not a postcode of {country}")
    return NormalizedAddress(
        lines=tuple(parts.lines[:MAX_ADDRESS_LINES]),
        house_number=_bounded(parts.house_number, MAX_PLACE_CHARS),
        street=_bounded(parts.street, MAX_LINE_CHARS),
        unit=_bounded(parts.unit, MAX_PLACE_CHARS),
        po_box=_bounded(parts.po_box, MAX_PLACE_CHARS),
        city=city_display(city) or None if city else None,
        region=region,
        region_name=region_name,
        postcode=postcode,
        postcode_written=postcode_written,
        country=country,
    )


def _place(raw: str | None, field: str, issues: IssueLog) -> str | None:
    return clean_field(raw, MAX_PLACE_CHARS, field, issues) or None if raw is not None else None


def _bounded(text: str | None, limit: int) -> str | None:
    return text[:limit].strip() or None if text else None


def _country_from(lines: list[str], region: str | None, postcode: str | None) -> str | None:
    """The country the other parts name: a coded region, a postcode of a telling form, a US
    "City, ST 12345" line, or a place the lines name."""
    if region and (code := region_code(region, None)):
        return code.split("-", 1)[0]
    if postcode and (code := postcode_country(postcode)):
        return code
    if region and postcode and region.strip().upper() in US_STATES and format_postcode(postcode, "US"):
        return "US"  # "ND" and "58102": a state code and a ZIP code
    if lines:
        return parse_location(", ".join(lines)).country
    return None


_SAMPLE_RECORDS = (
    RawFunder(
        source="irs-bmf",
        source_record_id="562618866",
        name="BILL & MELINDA GATES FOUNDATION",
        ein="562618866",
        address_lines=("500 5TH AVE N",),
        city="SEATTLE",
        region="WA",
        postcode="981096910",
        country="US",
        categories=("T20",),
        category_scheme="ntee",
    ),
    RawFunder(
        source="foundation-site",
        source_record_id="https://www.nuffieldfoundation.org/about",
        name="The Nuffield Foundation",
        aliases=("Nuffield Fdn",),
        address_lines=("100 St John Street", "London EC1M 4EH"),
        country="United Kingdom",
        website="HTTPS://WWW.NuffieldFoundation.org/?utm_source=newsletter#top",
        categories=("Education", "Social science research", "Justice"),
    ),
    RawFunder(
        source="grants-gov",
        source_record_id="agency:NSF",
        name="National Science Foundation",
        aliases=("NSF",),
        ein="07-1234567",
        address_lines=("2415 Eisenhower Avenue", "Alexandria, VA 22314"),
        website="nsf.gov",
        categories=("ST", "ED"),
        category_scheme="grants_gov",
    ),
    RawFunder(
        source="foundation-site",
        source_record_id="robert-bosch-stiftung",
        name="Robert Bosch Stiftung GmbH",
        address_lines=("Heidehofstraße 31", "70184 Stuttgart"),
        country="Deutschland",
        region="Baden-Württemberg",
        website="https://www.bosch-stiftung.de/en",
        categories=("international", "health", "education", "basket weaving"),
    ),
)
SAMPLE_PAYLOADS: tuple[NormalizeFundersPayload, ...] = (NormalizeFundersPayload(records=_SAMPLE_RECORDS),)

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of other rules are not comparable"),
        Mandatory(path="records[].name"),
        Mandatory(path="records[].name_key"),
        Format(path="records[].ein", format="ein"),
        Format(path="records[].website", format="url"),
        Format(path="records[].address.country", format="iso_country"),
        Format(path="records[].address.region", format="iso_region"),
        Format(path="records[].categories[]", regex=r"[a-z0-9][a-z0-9_.-]{0,63}"),
    ),
)

NORMALIZE_FUNDERS: JobType[NormalizeFundersPayload, NormalizeFundersResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=NormalizeFundersPayload,
    result_type=NormalizeFundersResult,
    result_rules=RESULT_RULES,
    handler=normalize_funders,
    consent_scope="datasets",
    description="Raw funder records to one canonical form: names, EINs, addresses, websites, categories (CC-43)",
    sample_payloads=SAMPLE_PAYLOADS,
)

__all__ = ["NORMALIZE_FUNDERS", "Issue", "NormalizedFunder", "RawFunder", "normalize_funder", "normalize_funders"]
