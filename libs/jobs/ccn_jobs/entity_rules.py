"""The rules behind `extract_entities`: gazetteers (data/entity_gazetteers.json) turned into
bounded regular expressions, and one finder per entity type.

Every pattern is linear in the text: literal alternations from the gazetteers, character
classes, and repetitions with small fixed bounds ({0,5} words, at most 3 digits a group), with
no nested unbounded quantifier, so no input can make matching backtrack without end. Numbers
are read by price-parser, relative dates by dateparser (which ships its language data; no
language detection is asked of it, so it never wants a model), and absolute dates by the
month gazetteer and `datetime.date`, which checks the calendar."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal

import msgspec

DATA_DIR = Path(__file__).resolve().parent / "data"
GAZETTEERS_PATH = DATA_DIR / "entity_gazetteers.json"

EntityType = Literal[
    "organization", "opportunity_title", "deadline_date", "monetary_amount", "program_area", "person_name"
]
ENTITY_TYPES: tuple[EntityType, ...] = (
    "organization",
    "opportunity_title",
    "deadline_date",
    "monetary_amount",
    "program_area",
    "person_name",
)
CUE_WINDOW_CHARS = 120  # how far before a date its deadline cue may stand, within the sentence
MAX_AMOUNT = Decimal("1e15")

Entry = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
GazetteerList = Annotated[list[Entry], msgspec.Meta(max_length=500)]


class Gazetteers(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    organization_suffixes: GazetteerList
    organization_prefixes: GazetteerList
    title_suffixes: GazetteerList
    title_cues: GazetteerList
    program_areas: dict[Entry, GazetteerList]
    currency_prefixes: dict[Entry, Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]]
    currency_words: dict[Entry, Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]]
    currency_codes: Annotated[list[Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]], msgspec.Meta(max_length=200)]
    months: dict[Entry, Annotated[int, msgspec.Meta(ge=1, le=12)]]
    deadline_cues: GazetteerList
    not_deadline_cues: GazetteerList
    person_titles: GazetteerList
    person_cues: GazetteerList


@dataclass(frozen=True, slots=True)
class Found:
    """An entity before it becomes a result: type, span, normalised value, currency, confidence."""

    type: EntityType
    start: int
    end: int
    value: str
    confidence: float
    currency: str | None = None


def _alternation(entries: list[str] | set[str]) -> str:
    # longest first, so "pounds sterling" wins over "pounds"
    return "|".join(re.escape(entry) for entry in sorted(entries, key=lambda e: (-len(e), e)))


_UPPER = "A-ZÀ-ÖØ-ÞĀ-Ž"  # a capital, Latin scripts
_NAME_WORD = rf"[{_UPPER}][\w'\u2019&.-]{{0,30}}"
_PERSON = rf"(?P<n>[{_UPPER}][\w'\u2019-]{{1,30}}(?:\s[{_UPPER}][\w'\u2019-]{{1,30}}){{1,2}})"  # two or three names


@dataclass(frozen=True, slots=True)
class Patterns:
    gazetteers: Gazetteers
    date_day_month: re.Pattern[str]
    date_month_day: re.Pattern[str]
    date_iso: re.Pattern[str]
    date_numeric: re.Pattern[str]
    date_relative: re.Pattern[str]
    amount_prefixed: re.Pattern[str]
    amount_suffixed: re.Pattern[str]
    organization_suffixed: re.Pattern[str]
    organization_prefixed: re.Pattern[str]
    title_suffixed: re.Pattern[str]
    title_quoted: re.Pattern[str]
    area: re.Pattern[str]
    area_canonical: dict[str, str]
    person_titled: re.Pattern[str]
    person_cued: re.Pattern[str]
    deadline_cue: re.Pattern[str]
    not_deadline_cue: re.Pattern[str]


@functools.cache
def shipped_patterns() -> Patterns:
    return compile_patterns(msgspec.json.decode(GAZETTEERS_PATH.read_bytes(), type=Gazetteers))


def compile_patterns(g: Gazetteers) -> Patterns:
    months = _alternation(set(g.months))
    number = r"\d{1,3}(?:[,.\u00a0\u202f ]\d{3}){1,4}(?:[.,]\d{1,2})?|\d{1,12}(?:[.,]\d{1,2})?"
    multiplier = r"(?:\s?(?:million|mio\.|mio|bn|billion|thousand|m|k)\b)?"
    prefixes = _alternation(set(g.currency_prefixes) | set(g.currency_codes))
    words = _alternation(set(g.currency_words) | set(g.currency_codes))
    areas = {phrase.casefold(): canonical for canonical, phrases in g.program_areas.items() for phrase in phrases}
    return Patterns(
        gazetteers=g,
        date_day_month=re.compile(
            rf"\b(?P<d>[0-3]?\d)(?:st|nd|rd|th|er|\.)?\s(?:de\s)?(?P<m>{months})\b(?:\.(?=\s\d))?"
            rf"(?:,?\s(?:de\s)?(?P<y>\d{{4}})\b)?",
            re.IGNORECASE,
        ),
        date_month_day=re.compile(
            rf"\b(?P<m>{months})\b\.?\s(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\b(?:,?\s(?P<y>\d{{4}})\b)?", re.IGNORECASE
        ),
        date_iso=re.compile(r"\b(?P<y>\d{4})-(?P<m>[01]\d)-(?P<d>[0-3]\d)\b"),
        date_numeric=re.compile(r"\b(?P<a>[0-3]?\d)[./](?P<b>[0-3]?\d)[./](?P<y>\d{4})\b"),
        date_relative=re.compile(
            r"\b(?:in|within)\s(?P<n>\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten|twelve)\s"
            r"(?P<u>days?|weeks?|months?)\b",
            re.IGNORECASE,
        ),
        amount_prefixed=re.compile(rf"(?<![\w$£€¥₹])(?P<c>{prefixes})\s?(?P<n>{number})(?P<x>{multiplier})"),
        amount_suffixed=re.compile(
            rf"(?<![\w.,])(?P<n>{number})(?P<x>{multiplier})\s?(?P<c>{words})(?!\w)", re.IGNORECASE
        ),
        organization_suffixed=re.compile(
            rf"\b(?:{_NAME_WORD}\s{{1,3}}){{1,5}}(?:{_alternation(g.organization_suffixes)})(?!\w)"
            rf"|\b{_NAME_WORD}-(?:{_alternation(g.organization_suffixes)})\b"
        ),
        organization_prefixed=re.compile(
            rf"\b(?:{_alternation(g.organization_prefixes)})"
            rf"(?:\s(?:de|des|du|de la|del|der|für|y|et|und)){{0,1}}(?:\s{_NAME_WORD}){{1,4}}"
        ),
        title_suffixed=re.compile(rf"\b(?:{_NAME_WORD}\s{{1,3}}){{1,5}}(?:{_alternation(g.title_suffixes)})\b"),
        title_quoted=re.compile(r"[„«“\"]\s?(?P<t>[^„«»“”\"\n.!?]{3,80}?)\s?[“”»\"]"),
        area=re.compile(rf"(?<!\w)(?:{_alternation(set(areas))})(?!\w)", re.IGNORECASE),
        area_canonical=areas,
        person_titled=re.compile(rf"\b(?:{_alternation(g.person_titles)})\.?\s{_PERSON}"),
        # only the cue ignores case: a name must be capitalised
        person_cued=re.compile(rf"(?i:{_alternation(g.person_cues)})\s{_PERSON}"),
        deadline_cue=re.compile(rf"(?<!\w)(?:{_alternation(g.deadline_cues)})(?!\w)", re.IGNORECASE),
        not_deadline_cue=re.compile(rf"(?<!\w)(?:{_alternation(g.not_deadline_cues)})(?!\w)", re.IGNORECASE),
    )


# --- dates ------------------------------------------------------------------------------------

_STRONG_CUES = frozenset(
    {
        "deadline",
        "closing date",
        "closes",
        "close on",
        "closes on",
        "no later than",
        "antragsschluss",
        "antragsfrist",
        "date limite",
        "plazo",
        "fecha límite",
        "clôture",
    }
)
_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
}


def find_deadlines(p: Patterns, text: str, reference: dt.date | None) -> list[Found]:
    """Dates with a deadline cue before them in their sentence, and no other kind of date cue
    (decisions, start, interviews) nearer to them."""
    found: list[Found] = []
    taken_until = -1  # dates come sorted by start: one that starts before the last one ended overlaps it
    for start, end, date, ambiguous in _dates(p, text, reference):
        if start < taken_until:
            continue
        taken_until = end
        strength = _deadline_cue(p, text, start)
        if strength is None:
            continue
        confidence = 0.9 if strength == "strong" else 0.7
        if ambiguous:
            confidence -= 0.2
        found.append(Found("deadline_date", start, end, date.isoformat(), round(confidence, 2)))
    return found


def _dates(p: Patterns, text: str, reference: dt.date | None) -> list[tuple[int, int, dt.date, bool]]:
    months = p.gazetteers.months
    out: list[tuple[int, int, dt.date, bool]] = []
    for pattern in (p.date_day_month, p.date_month_day):
        for match in pattern.finditer(text):
            month = months.get(match["m"].casefold())
            if month is None:
                continue
            date = _calendar_date(match["y"], month, int(match["d"]), reference)
            if date is not None:
                out.append((match.start(), match.end(), date, match["y"] is None))
    for match in p.date_iso.finditer(text):
        date = _calendar_date(match["y"], int(match["m"]), int(match["d"]), reference)
        if date is not None:
            out.append((match.start(), match.end(), date, False))
    for match in p.date_numeric.finditer(text):
        first, second = int(match["a"]), int(match["b"])
        # day first, as everywhere but the US; month first only when the day-first reading is impossible
        date = _calendar_date(match["y"], second, first, reference) or _calendar_date(
            match["y"], first, second, reference
        )
        if date is not None:
            out.append((match.start(), match.end(), date, first <= 12 and second <= 12 and first != second))
    if reference is not None:
        for match in p.date_relative.finditer(text):
            date = _relative_date(match["n"], match["u"], reference)
            if date is not None:
                out.append((match.start(), match.end(), date, False))
    # longest first at each start, so "15 March 2027" beats "15 March"
    out.sort(key=lambda item: (item[0], -(item[1] - item[0])))
    return out


def first_calendar_date(text: str) -> dt.date | None:
    """The first date with a year that the text spells out (`15 March 2027`, `2027-03-15`,
    `15/03/2027`, read day first as find_deadlines reads it), or None."""
    found = _dates(shipped_patterns(), text, None)
    return min(found, key=lambda item: item[0])[2] if found else None


def _calendar_date(year: str | None, month: int, day: int, reference: dt.date | None) -> dt.date | None:
    try:
        if year is not None:
            date = dt.date(int(year), month, day)
            return date if 1900 <= date.year <= 2200 else None
        if reference is None:
            return None  # a year-less date needs the payload's reference date
        # the next such day on or after the reference date
        date = dt.date(reference.year, month, day)
        return date if date >= reference else dt.date(reference.year + 1, month, day)
    except ValueError:
        return None


def _relative_date(amount: str, unit: str, reference: dt.date) -> dt.date | None:
    count = int(amount) if amount.isdigit() else _NUMBER_WORDS[amount.casefold()]
    return _date_after(count, unit.casefold(), reference)


# At most 999 counts x 6 units per reference date: a text repeating one phrase costs one parse.
@functools.lru_cache(maxsize=4096)
def _date_after(count: int, unit: str, reference: dt.date) -> dt.date | None:
    import dateparser  # type: ignore[import-untyped]

    base = dt.datetime(reference.year, reference.month, reference.day)  # a calendar day: no zone
    parsed = dateparser.parse(
        f"in {count} {unit}",
        languages=["en"],
        # the zone named, so the machine's own (TZ, /etc/localtime) plays no part
        settings={
            "RELATIVE_BASE": base,
            "PREFER_DATES_FROM": "future",
            "TIMEZONE": "UTC",
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    return parsed.date() if parsed is not None else None


def _deadline_cue(p: Patterns, text: str, start: int) -> str | None:
    window_start = max(0, start - CUE_WINDOW_CHARS)
    window = text[window_start:start]
    # the sentence the date is in: after the last full stop, question or exclamation mark or line break
    for boundary in (". ", "! ", "? ", "\n"):
        cut = window.rfind(boundary)
        if cut >= 0:
            window = window[cut + len(boundary) :]
    cue = negative = None
    for match in p.deadline_cue.finditer(window):
        cue = match
    for match in p.not_deadline_cue.finditer(window):
        negative = match
    if cue is None or (negative is not None and negative.start() > cue.start()):
        return None
    return "strong" if cue.group().casefold() in _STRONG_CUES else "weak"


# --- amounts ----------------------------------------------------------------------------------

_MULTIPLIERS = {
    "million": 1_000_000,
    "mio": 1_000_000,
    "mio.": 1_000_000,
    "m": 1_000_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
    "thousand": 1_000,
    "k": 1_000,
}


def find_amounts(p: Patterns, text: str) -> list[Found]:
    from price_parser import Price

    g = p.gazetteers
    found: list[Found] = []
    for pattern, table in ((p.amount_prefixed, g.currency_prefixes), (p.amount_suffixed, g.currency_words)):
        for match in pattern.finditer(text):
            symbol = match["c"]
            code = table.get(symbol) or table.get(symbol.casefold()) or (symbol if symbol in g.currency_codes else None)
            if code is None:
                continue
            amount = Price.fromstring(match["n"]).amount
            if amount is None:
                continue
            multiplier = match["x"].strip().casefold()
            try:
                value = amount * _MULTIPLIERS.get(multiplier, 1)
            except InvalidOperation:
                continue
            if not Decimal(0) < value < MAX_AMOUNT:
                continue
            confidence = 0.8 if symbol == "$" else 0.9
            found.append(Found("monetary_amount", match.start(), match.end(), decimal_string(value), confidence, code))
    return found


def decimal_string(value: Decimal) -> str:
    """A whole amount without decimals ("2500000"), a fractional one with two ("12.50")."""
    if value == value.to_integral_value():
        return str(int(value))
    return f"{value.quantize(Decimal('0.01')):f}"


# --- names ------------------------------------------------------------------------------------

_LEADING_ARTICLES = ("The ", "the ", "Die ", "La ", "Le ", "El ", "Der ", "Das ")


def find_names(p: Patterns, text: str) -> list[Found]:
    found: list[Found] = []
    for match in p.organization_suffixed.finditer(text):
        found.append(_named("organization", match.start(), match.group(), 0.85))
    for match in p.organization_prefixed.finditer(text):
        found.append(_named("organization", match.start(), match.group(), 0.8))
    for match in p.title_suffixed.finditer(text):
        found.append(_named("opportunity_title", match.start(), match.group(), 0.75))
    for match in p.title_quoted.finditer(text):
        title = match["t"].strip()
        if title[:1].isupper() and len(title.split()) <= 8:
            found.append(_named("opportunity_title", match.start("t"), title, 0.7))
    titles = tuple(f"{title}{dot} " for title in p.gazetteers.person_titles for dot in ("", "."))
    for pattern in (p.person_titled, p.person_cued):
        for match in pattern.finditer(text):
            start, name = match.start("n"), match["n"]
            # "contact Dr Jane Smith": the cue took the title as the name's first word
            title = next((t for t in titles if name.startswith(t)), "")
            found.append(_named("person_name", start + len(title), name[len(title) :], 0.7))
    for match in p.area.finditer(text):
        canonical = p.area_canonical[match.group().casefold()]
        found.append(Found("program_area", match.start(), match.end(), canonical, 0.75))
    return found


def _named(entity_type: EntityType, start: int, name: str, confidence: float) -> Found:
    for article in _LEADING_ARTICLES:
        if name.startswith(article):
            start, name = start + len(article), name[len(article) :]
            break
    name = name.rstrip(" .,;:")
    # the span is the text as written; the value has its line breaks and runs of spaces as one space
    return Found(entity_type, start, start + len(name), " ".join(name.split()), confidence)
