"""Job type `normalize_opportunities` (CC-43): raw opportunity records, as Grants.gov listings or
funders' pages give them, in one canonical form: the title and eligibility text cleaned, the
funder's name in display form with its match key (ccn_jobs.org_names, as normalize_funders
gives it, so the merge can join the two), amounts as decimal strings with their ISO 4217
currency, the deadline as an ISO date, categories in the canonical vocabulary, the URL
canonical; per record, every issue.

Amounts: numbers in the text with a currency before or after them ("$5,000", "EUR 1.5m",
"250 000 €"), read by price-parser, a multiplier (k, m, million, bn) applied; a number with no
currency counts when it is joined to one that has ("$5,000 - 50,000") or when no number in the
text has one (then the record's or batch's currency applies). Several amounts are a range,
smallest to largest; one amount after "up to", "maximum"... is a maximum, after "at least",
"minimum", "from"... a minimum, otherwise both. Grants.gov's award floor and ceiling, given
apart, are the minimum and the maximum. "$" with no currency given is read as USD and reported.

Deadlines: read by dateparser against the payload's `as_of` date (RELATIVE_BASE: "in 30 days",
"15 March" with no year is the next 15 March after it): the clock is never read. The
time of day and its zone are dropped first, because a deadline is the calendar day as written
("March 15, 2027 11:59 PM ET" is 2027-03-15, not the UTC day it falls on). 02/03/2027 is read by
the record's (or batch's) `date_order`; with none given and both readings possible it is
reported as ambiguous, not guessed. "Rolling" and its kin set `rolling` and no date."""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

from ccn_jobs.entity_rules import decimal_string, shipped_patterns
from ccn_jobs.job_type import JobType
from ccn_jobs.normalisation import (
    CategoryId,
    CategoryScheme,
    IssueLog,
    Issues,
    canonical_categories,
    canonical_website,
    clean_field,
    display_case,
    load_vocabulary,
    name_match_key,
    within_result_bound,
)
from ccn_jobs.normalize_funders import MatchKey, Name, RawCategory, RawName, SourceName, SourceRecordId, Website
from ccn_jobs.result_rules import Allowed, Format, Mandatory, ResultRules
from ccn_proto.constraints import END, MULTI_LINE_PATTERN, SINGLE_LINE_PATTERN

NAME = "normalize_opportunities"
VERSION = "1"

MAX_RECORDS = 200
MAX_TITLE_CHARS = 500
MAX_ELIGIBILITY_CHARS = 5000
MAX_AMOUNT = Decimal(10**15)
MAX_AMOUNTS_READ = 16
EARLIEST_YEAR, LATEST_YEAR = 1900, 2200

DateOrder = Literal["DMY", "MDY", "YMD"]
Currency = Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{3}}{END}")]
IsoDate = Annotated[str, msgspec.Meta(pattern=rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{END}")]
DecimalString = Annotated[str, msgspec.Meta(max_length=24, pattern=rf"^[0-9]+(?:\.[0-9]{{2}})?{END}")]
RawAmount = Annotated[str, msgspec.Meta(max_length=500, pattern=MULTI_LINE_PATTERN)]
RawDeadline = Annotated[str, msgspec.Meta(max_length=300, pattern=MULTI_LINE_PATTERN)]
RawEligibility = Annotated[str, msgspec.Meta(max_length=20_000, pattern=MULTI_LINE_PATTERN)]
RawUrl = Annotated[str, msgspec.Meta(max_length=4096, pattern=MULTI_LINE_PATTERN)]


class RawOpportunity(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An opportunity as one source gives it. `currency` and `date_order` are what the source
    is known to mean when its text does not say (Grants.gov: USD, MDY)."""

    source: SourceName
    source_record_id: SourceRecordId
    title: RawName
    funder_name: RawName | None = None
    amount_text: RawAmount | None = None
    award_floor: RawAmount | None = None
    award_ceiling: RawAmount | None = None
    currency: Currency | None = None
    deadline_text: RawDeadline | None = None
    date_order: DateOrder | None = None
    eligibility_text: RawEligibility | None = None
    categories: Annotated[tuple[RawCategory, ...], msgspec.Meta(max_length=20)] = ()
    category_scheme: CategoryScheme = "text"
    url: RawUrl | None = None


class NormalizeOpportunitiesPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`as_of`: the day relative and year-less deadlines are read against (the job's creation
    day, say): the result depends on it, never on the clock of the node that runs the job."""

    records: Annotated[tuple[RawOpportunity, ...], msgspec.Meta(min_length=1, max_length=MAX_RECORDS)]
    as_of: IsoDate
    default_currency: Currency | None = None
    default_date_order: DateOrder | None = None

    def __post_init__(self) -> None:
        _reference_day(self.as_of)
        keys = [(record.source, record.source_record_id) for record in self.records]
        if len(set(keys)) != len(keys):
            raise ValueError("(source, source_record_id) pairs must be unique")


class NormalizedOpportunity(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    source: SourceName
    source_record_id: SourceRecordId
    title: Annotated[str, msgspec.Meta(max_length=MAX_TITLE_CHARS, pattern=SINGLE_LINE_PATTERN)]
    funder_name: Name | None
    funder_key: MatchKey | None
    amount_min: DecimalString | None
    amount_max: DecimalString | None
    currency: Currency | None
    deadline: IsoDate | None
    rolling: bool
    eligibility: Annotated[str, msgspec.Meta(max_length=MAX_ELIGIBILITY_CHARS, pattern=SINGLE_LINE_PATTERN)] | None
    categories: Annotated[tuple[CategoryId, ...], msgspec.Meta(max_length=32)]
    url: Website | None
    issues: Issues


class NormalizeOpportunitiesResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One record per input record, in input order."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    vocabulary_version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    as_of: IsoDate
    records: Annotated[tuple[NormalizedOpportunity, ...], msgspec.Meta(max_length=MAX_RECORDS)]
    records_with_issues: Annotated[int, msgspec.Meta(ge=0, le=MAX_RECORDS)]


def normalize_opportunities(payload: NormalizeOpportunitiesPayload) -> NormalizeOpportunitiesResult:
    as_of = _reference_day(payload.as_of)
    records = tuple(
        normalize_opportunity(record, as_of, payload.default_currency, payload.default_date_order)
        for record in payload.records
    )
    result = NormalizeOpportunitiesResult(
        version=VERSION,
        vocabulary_version=load_vocabulary().version,
        as_of=payload.as_of,
        records=records,
        records_with_issues=sum(1 for record in records if record.issues),
    )
    return within_result_bound(NAME, result)


def normalize_opportunity(
    raw: RawOpportunity,
    as_of: dt.date,
    default_currency: str | None = None,
    default_date_order: DateOrder | None = None,
) -> NormalizedOpportunity:
    issues = IssueLog()
    funder = display_case(clean_field(raw.funder_name, 300, "funder_name", issues)) if raw.funder_name else ""
    money = read_money(raw, raw.currency or default_currency, issues)
    deadline, rolling = (None, False)
    if raw.deadline_text is not None:
        deadline, rolling = read_deadline(raw.deadline_text, as_of, raw.date_order or default_date_order, issues)
    eligibility = (
        clean_field(raw.eligibility_text, MAX_ELIGIBILITY_CHARS, "eligibility_text", issues)
        if raw.eligibility_text
        else ""
    )
    return NormalizedOpportunity(
        source=raw.source,
        source_record_id=raw.source_record_id,
        title=clean_field(raw.title, MAX_TITLE_CHARS, "title", issues),
        funder_name=funder or None,
        funder_key=(name_match_key(funder) or None) if funder else None,
        amount_min=money.minimum,
        amount_max=money.maximum,
        currency=money.currency,
        deadline=deadline,
        rolling=rolling,
        eligibility=eligibility or None,
        categories=canonical_categories(raw.categories, raw.category_scheme, issues)[0],
        url=canonical_website(raw.url, issues, "url") if raw.url is not None else None,
        issues=tuple(issues),
    )


def _reference_day(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"as_of {text!r} is not a calendar date") from None
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValueError(f"as_of {text!r} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return day


# ---- amounts ----------------------------------------------------------------------------------

DOLLAR_CURRENCIES = frozenset({"USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN"})
_MULTIPLIERS = {"k": 1000, "thousand": 1000, "m": 10**6, "mn": 10**6, "million": 10**6, "bn": 10**9, "billion": 10**9}
_NUMBER = r"[0-9]{1,3}(?:[,.\u00a0 ][0-9]{3})+(?:[.,][0-9]{1,2})?|[0-9]+(?:[.,][0-9]{1,2})?"
_MAX_CUES = re.compile(
    r"(?i)\b(?:up\s+to|upto|maximum|max\.?|not\s+to\s+exceed|no\s+more\s+than|ceiling|under|less\s+than|capped\s+at)\W*$"
)
_MIN_CUES = re.compile(
    r"(?i)\b(?:at\s+least|minimum|min\.?|from|over|more\s+than|starting\s+at|floor|no\s+less\s+than)\W*$"
)
_RANGE_JOIN = re.compile("(?i)^\\s*(?:-|\u2013|\u2014|to|and|or|through)\\s*$")  # hyphen, en and em dash
_YEAR = re.compile(r"^(?:19|20|21)[0-9]{2}$")


@functools.cache
def _amount_pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    """Numbers with an optional currency before (symbol or code) and after (code or word),
    and the currency each marker stands for (the extract_entities gazetteer's)."""
    g = shipped_patterns().gazetteers
    markers = {**g.currency_prefixes, **{word: code for word, code in g.currency_words.items()}}
    markers.update({code: code for code in g.currency_codes})
    before = "|".join(
        re.escape(m) for m in sorted(set(g.currency_prefixes) | set(g.currency_codes), key=len, reverse=True)
    )
    after = "|".join(re.escape(m) for m in sorted(set(g.currency_words) | set(g.currency_codes), key=len, reverse=True))
    pattern = re.compile(
        rf"(?:(?P<pre>{before})\s?)?(?<![0-9.,])(?P<num>{_NUMBER})(?![0-9])"
        rf"(?:\s?(?P<mult>(?i:k|thousand|mn|m|million|bn|billion))\b)?"
        rf"(?:\s?(?P<post>(?i:{after}))(?![A-Za-z]))?"
    )
    # a bare "$" stays "$" until the record's currency says which dollar (`_currency`)
    return pattern, {marker.casefold(): code for marker, code in markers.items()} | {"$": "$"}


class Money(msgspec.Struct, frozen=True):
    minimum: str | None = None
    maximum: str | None = None
    currency: str | None = None


class _Amount(msgspec.Struct, frozen=True):
    value: Decimal
    currency: str | None
    start: int
    end: int
    marked: bool


def read_amounts(text: str, field: str, issues: IssueLog) -> tuple[list[_Amount], str]:
    """Every amount in the text (at most MAX_AMOUNTS_READ), and the cleaned text."""
    cleaned = clean_field(text, 500, field, issues)
    pattern, markers = _amount_pattern()
    found: list[_Amount] = []
    for match in pattern.finditer(cleaned):
        if len(found) == MAX_AMOUNTS_READ:
            break
        marker = match["pre"] or match["post"]
        currency = markers.get(marker.casefold()) if marker else None
        value = _amount_value(match["num"], match["mult"])
        if value is None or not Decimal(0) <= value <= MAX_AMOUNT:
            issues.add(field, "amount_out_of_bounds", f"{match['num'][:30]} is not an amount from 0 to {MAX_AMOUNT}")
            continue
        found.append(_Amount(value, currency, match.start(), match.end(), marker is not None or bool(match["mult"])))
    return _counted(found, cleaned), cleaned


def _amount_value(number: str, multiplier: str | None) -> Decimal | None:
    from price_parser import Price

    amount = Price.fromstring(number.replace("\u00a0", " ")).amount
    if amount is None:
        return None
    try:
        value = amount * _MULTIPLIERS.get((multiplier or "").casefold(), 1)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _counted(found: list[_Amount], text: str) -> list[_Amount]:
    """The amounts that count: with any marked, the marked and those joined to one by a range
    word ("$5,000 - 50,000"); with none marked, all but years among other numbers."""
    if not any(amount.marked for amount in found):
        numbers = [a for a in found if not _YEAR.match(text[a.start : a.end].strip())]
        return numbers or found
    counted: list[_Amount] = []
    for index, amount in enumerate(found):
        if amount.marked:
            counted.append(amount)
            continue
        before = found[index - 1] if index else None
        if before is not None and before.marked and _RANGE_JOIN.match(text[before.end : amount.start]):
            counted.append(_Amount(amount.value, before.currency, amount.start, amount.end, True))
    return counted


def read_money(raw: RawOpportunity, currency_hint: str | None, issues: IssueLog) -> Money:
    minimum = maximum = None
    currencies: list[str | None] = []
    if raw.amount_text:
        amounts, text = read_amounts(raw.amount_text, "amount_text", issues)
        if not amounts:
            issues.add("amount_text", "amount_unparsed", f"no amount in {text[:60]!r}")
        else:
            first_currency = amounts[0].currency
            amounts = [a for a in amounts if a.currency in (first_currency, None)]
            currencies.append(first_currency)
            values = sorted(a.value for a in amounts)
            lead = text[: amounts[0].start]
            if len(values) == 1 and _MAX_CUES.search(lead):
                maximum = values[0]
            elif len(values) == 1 and _MIN_CUES.search(lead):
                minimum = values[0]
            else:
                minimum, maximum = values[0], values[-1]
    for field, written in (("award_floor", raw.award_floor), ("award_ceiling", raw.award_ceiling)):
        if not written:
            continue
        amounts, text = read_amounts(written, field, issues)
        if not amounts:
            issues.add(field, "amount_unparsed", f"no amount in {text[:60]!r}")
            continue
        currencies.append(amounts[0].currency)
        if field == "award_floor":
            minimum = amounts[0].value
        else:
            maximum = amounts[0].value
    if minimum is not None and maximum is not None and minimum > maximum:
        issues.add("award_floor", "amount_range_inverted", "the minimum was above the maximum: swapped")
        minimum, maximum = maximum, minimum
    if minimum is None and maximum is None:
        return Money()
    return Money(
        minimum=decimal_string(minimum) if minimum is not None else None,
        maximum=decimal_string(maximum) if maximum is not None else None,
        currency=_currency(next((c for c in currencies if c), None), currency_hint, issues),
    )


def _currency(written: str | None, hint: str | None, issues: IssueLog) -> str | None:
    """The currency the text names; a bare "$" is the hint's dollar when the hint is one,
    else USD, reported."""
    if written is None:
        if hint is None:
            issues.add("currency", "currency_unknown", "the amounts name no currency and the record gives none")
        return hint
    if written == "$":
        if hint in DOLLAR_CURRENCIES:
            return hint
        issues.add("currency", "currency_assumed", f"'$' with {hint or 'no currency'} given: read as USD")
        return "USD"
    return written


# ---- deadlines --------------------------------------------------------------------------------

_ZONES = (
    r"(?:ET|EST|EDT|CT|CST|CDT|MT|MST|MDT|PT|PST|PDT|AKST|AKDT|HST|GMT|BST|UTC|CET|CEST|EET|EEST|WET|WEST|"
    r"AEST|AEDT|ACST|AWST|NZST|NZDT|IST|JST|Z)(?:\s?[+-]\s?[0-9]{1,2}(?::?[0-9]{2})?)?"
    r"|(?i:eastern|pacific|central|mountain|atlantic)(?:\s+(?i:standard|daylight))?(?:\s+(?i:time))?"
)
_TIME_OF_DAY = re.compile(
    r"(?i:\b(?:at\s+|by\s+)?(?:[0-9]{1,2}(?::[0-9]{2}){1,2}(?:\s?[ap]\.?\s?m\b\.?)?|[0-9]{1,2}\s?[ap]\.?\s?m\b\.?|noon|midnight))"
    rf"(?:\s*\(?\s*(?:{_ZONES})\s*\)?)?"
)
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NUMERIC_DAY = re.compile(r"(?<![0-9])([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{2,4})(?![0-9])")
_ROLLING = re.compile(r"(?i)\b(?:rolling|ongoing|open until filled|no (?:fixed )?deadline|continuous|any ?time)\b")


def read_deadline(text: str, as_of: dt.date, order: DateOrder | None, issues: IssueLog) -> tuple[str | None, bool]:
    """(ISO date or None, rolling)."""
    cleaned = clean_field(text, 300, "deadline_text", issues)
    if _ISO_DAY.match(cleaned):
        try:
            day: dt.date | None = dt.date.fromisoformat(cleaned)
        except ValueError:
            day = None
    else:
        without_time = " ".join(_TIME_OF_DAY.sub(" ", cleaned).split())
        numeric = _NUMERIC_DAY.search(without_time)
        if order is None and numeric and _both_readings(numeric):
            issues.add("deadline_text", "deadline_ambiguous", f"{numeric.group(0)!r} reads as day/month and month/day")
            return None, False
        day = _parsed_day(without_time, as_of, order or "DMY")
    if day is None:
        if _ROLLING.search(cleaned):
            return None, True
        issues.add("deadline_text", "deadline_unparsed", f"no date in {cleaned[:60]!r}")
        return None, False
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        issues.add(
            "deadline_text", "deadline_out_of_range", f"{day.isoformat()} is outside {EARLIEST_YEAR}-{LATEST_YEAR}"
        )
        return None, False
    return day.isoformat(), False


def _both_readings(match: re.Match[str]) -> bool:
    first, second = int(match.group(1)), int(match.group(2))
    return first != second and 1 <= first <= 12 and 1 <= second <= 12


@functools.lru_cache(maxsize=4096)
def _parsed_day(text: str, as_of: dt.date, order: DateOrder) -> dt.date | None:
    """dateparser on the whole text, then its search for a date inside it."""
    import dateparser  # type: ignore[import-untyped]
    from dateparser.search import search_dates  # type: ignore[import-untyped]

    settings = {
        "RELATIVE_BASE": dt.datetime(as_of.year, as_of.month, as_of.day),  # a calendar day: no zone
        "PREFER_DATES_FROM": "future",
        "TIMEZONE": "UTC",  # named, so the machine's own zone plays no part
        "RETURN_AS_TIMEZONE_AWARE": False,
        "DATE_ORDER": order,
        "PARSERS": ["relative-time", "custom-formats", "absolute-time"],  # not epoch timestamps
        "REQUIRE_PARTS": ["day", "month"],
    }
    parsed = dateparser.parse(text, languages=["en"], settings=settings)
    if parsed is None:
        found = search_dates(text, languages=["en"], settings=settings)
        parsed = found[0][1] if found else None
    return parsed.date() if parsed is not None else None


_SAMPLE_RECORDS = (
    RawOpportunity(
        source="grants-gov",
        source_record_id="EPA-R-OAR-CCG-27",
        title="FY2027 Community  Change Grants\t(Track I)",
        funder_name="ENVIRONMENTAL PROTECTION AGENCY",
        award_floor="$1,000,000",
        award_ceiling="$20,000,000",
        deadline_text="03/15/2027 11:59 PM ET",
        date_order="MDY",
        eligibility_text="Partnerships between two community-based organizations,\nor a CBO and a local government.",
        categories=("ENV", "CD"),
        category_scheme="grants_gov",
        url="https://www.grants.gov/search-results-detail/350000?utm_medium=email",
    ),
    RawOpportunity(
        source="foundation-site",
        source_record_id="riverside/orchards",
        title="Orchard grants",
        funder_name="The Riverside Community Foundation",
        amount_text="Grants from £500 to £2,500",
        deadline_text="Closes 5pm (BST) on 15 May",
        categories=("environment", "food"),
        url="riverside.example/p/orchards",
    ),
    RawOpportunity(
        source="foundation-site",
        source_record_id="lumen/fellowship",
        title="Lumen research fellowship",
        funder_name="Lumen Stiftung",
        amount_text="up to EUR 1.5m",
        deadline_text="02/03/2027",
    ),
    RawOpportunity(
        source="foundation-site",
        source_record_id="seed/rolling",
        title="Seed fund",
        amount_text="$5,000 - 25,000",
        deadline_text="Rolling",
    ),
)
SAMPLE_PAYLOADS: tuple[NormalizeOpportunitiesPayload, ...] = (
    NormalizeOpportunitiesPayload(records=_SAMPLE_RECORDS, as_of="2026-12-07"),
    NormalizeOpportunitiesPayload(records=_SAMPLE_RECORDS[1:2], as_of="2027-06-01", default_currency="GBP"),
)

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="version", values=(VERSION,), note="results of other rules are not comparable"),
        Format(path="as_of", format="iso_date"),
        Mandatory(path="records[].source_record_id"),
        Format(path="records[].deadline", format="iso_date"),
        Format(path="records[].currency", regex=r"[A-Z]{3}"),
        Format(path="records[].url", format="url"),
        Format(path="records[].categories[]", regex=r"[a-z0-9][a-z0-9_.-]{0,63}"),
    ),
)

NORMALIZE_OPPORTUNITIES: JobType[NormalizeOpportunitiesPayload, NormalizeOpportunitiesResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=NormalizeOpportunitiesPayload,
    result_type=NormalizeOpportunitiesResult,
    result_rules=RESULT_RULES,
    handler=normalize_opportunities,
    consent_scope="datasets",
    description="Raw opportunity records to one canonical form: amounts, currency, deadline, categories (CC-43)",
    sample_payloads=SAMPLE_PAYLOADS,
)
