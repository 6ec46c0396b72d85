"""A small gazetteer: countries (ISO 3166-1 alpha-2), US states and UK nations (ISO 3166-2),
and how to find them in free text such as "Seattle, WA" or "anywhere in the European Union".

Written for this project (no data file is fetched): the countries grant funders most often name
(the US, the UK and Ireland, the EU's members, the rest of Europe, and the larger Commonwealth
and Latin-American countries), in English and, where the native name is common in addresses,
in that language. Matching is on whole words of the case-folded text, except two-letter US state
codes, which count only written in capitals after a comma ("Portland, OR 97201"), since IN, OR,
ME, OK and HI are also English words."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from ccn_jobs.keyword_trie import trie_pattern

# ISO code -> names and aliases (lower case, accents kept; `fold` strips them when matching)
COUNTRIES: dict[str, tuple[str, ...]] = {
    "US": ("united states", "united states of america", "usa", "u.s.a.", "u.s."),
    "GB": (
        "united kingdom",
        "uk",
        "u.k.",
        "great britain",
        "britain",
        "england",
        "scotland",
        "wales",
        "northern ireland",
    ),
    "IE": ("ireland", "republic of ireland", "éire", "eire"),
    "CA": ("canada",),
    "AU": ("australia",),
    "NZ": ("new zealand", "aotearoa"),
    "DE": ("germany", "deutschland"),
    "FR": ("france",),
    "ES": ("spain", "españa"),
    "IT": ("italy", "italia"),
    "NL": ("netherlands", "the netherlands", "holland", "nederland"),
    "BE": ("belgium", "belgique", "belgië"),
    "LU": ("luxembourg",),
    "AT": ("austria", "österreich"),
    "CH": ("switzerland", "schweiz", "suisse", "svizzera"),
    "PT": ("portugal",),
    "SE": ("sweden", "sverige"),
    "DK": ("denmark", "danmark"),
    "FI": ("finland", "suomi"),
    "NO": ("norway", "norge"),
    "IS": ("iceland",),
    "PL": ("poland", "polska"),
    "CZ": ("czech republic", "czechia"),
    "SK": ("slovakia",),
    "HU": ("hungary",),
    "RO": ("romania",),
    "BG": ("bulgaria",),
    "GR": ("greece",),
    "CY": ("cyprus",),
    "MT": ("malta",),
    "SI": ("slovenia",),
    "HR": ("croatia",),
    "EE": ("estonia",),
    "LV": ("latvia",),
    "LT": ("lithuania",),
    "UA": ("ukraine",),
    "MX": ("mexico", "méxico"),
    "BR": ("brazil", "brasil"),
    "AR": ("argentina",),
    "CL": ("chile",),
    "CO": ("colombia",),
    "IN": ("india",),
    "KE": ("kenya",),
    "NG": ("nigeria",),
    "ZA": ("south africa",),
    "GH": ("ghana",),
    "UG": ("uganda",),
    "JP": ("japan",),
    "SG": ("singapore",),
    "BS": ("bahamas", "the bahamas"),
    "BM": ("bermuda",),
    "KY": ("cayman islands",),
    "CN": ("china",),
    "IL": ("israel",),
    "TR": ("turkey", "türkiye"),
    "PH": ("philippines",),
    "ID": ("indonesia",),
    "PK": ("pakistan",),
    "BD": ("bangladesh",),
    "EG": ("egypt",),
    "ET": ("ethiopia",),
    "TZ": ("tanzania",),
    "RW": ("rwanda",),
    "PE": ("peru",),
}

EU_MEMBERS = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip
EU_NAMES = ("european union", "eu member state", "eu member states", "horizon europe")

US_STATES: dict[str, str] = {
    "AL": "alabama", "AK": "alaska", "AZ": "arizona", "AR": "arkansas", "CA": "california",
    "CO": "colorado", "CT": "connecticut", "DE": "delaware", "DC": "district of columbia",
    "FL": "florida", "GA": "georgia", "HI": "hawaii", "ID": "idaho", "IL": "illinois",
    "IN": "indiana", "IA": "iowa", "KS": "kansas", "KY": "kentucky", "LA": "louisiana",
    "ME": "maine", "MD": "maryland", "MA": "massachusetts", "MI": "michigan", "MN": "minnesota",
    "MS": "mississippi", "MO": "missouri", "MT": "montana", "NE": "nebraska", "NV": "nevada",
    "NH": "new hampshire", "NJ": "new jersey", "NM": "new mexico", "NY": "new york",
    "NC": "north carolina", "ND": "north dakota", "OH": "ohio", "OK": "oklahoma", "OR": "oregon",
    "PA": "pennsylvania", "RI": "rhode island", "SC": "south carolina", "SD": "south dakota",
    "TN": "tennessee", "TX": "texas", "UT": "utah", "VT": "vermont", "VA": "virginia",
    "WA": "washington", "WV": "west virginia", "WI": "wisconsin", "WY": "wyoming",
}  # fmt: skip

# names that are also a city or a country's: "New York" the city is in NY all the same, but
# "Washington" alone is more often the capital (DC) than the state, and "Georgia" a country too
_AMBIGUOUS_STATE_NAMES = frozenset({"washington", "georgia"})

UK_NATIONS: dict[str, str] = {
    "GB-ENG": "england",
    "GB-SCT": "scotland",
    "GB-WLS": "wales",
    "GB-NIR": "northern ireland",
}

_STATE_CODE = re.compile(r",\s*(?P<code>[A-Z]{2})(?=\s*(?:\d{5}(?:-\d{4})?)?\s*(?:,|$|\n|;|\)|\.(?:\s|$)))")


_NOT_ALPHANUMERIC = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Lower case, accents dropped, every run of non-alphanumerics one space: what names are
    matched on ("Zürich, Schweiz" -> "zurich schweiz")."""
    folded = text.casefold()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_NOT_ALPHANUMERIC.sub(" ", folded).split())


@dataclass(frozen=True, slots=True)
class PlaceMention:
    code: str  # "US", "US-WA", "GB-SCT", or "EU"
    evidence: str  # the words that named it, as found


@functools.cache
def _name_pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    """One alternation of every folded name, longest first, and the code each stands for."""
    codes: dict[str, str] = {}
    for code, names in COUNTRIES.items():
        for name in names:
            codes.setdefault(fold(name), code)
    for code, name in UK_NATIONS.items():
        codes[fold(name)] = code  # a nation is more precise than "GB"
    for code, name in US_STATES.items():
        if name not in _AMBIGUOUS_STATE_NAMES:
            codes.setdefault(fold(name), f"US-{code}")
    for name in EU_NAMES:
        codes[fold(name)] = "EU"
    for name in _AMBIGUOUS_STATE_NAMES:  # said unambiguously
        code = next(code for code, state in US_STATES.items() if state == name)
        codes[f"{name} state"] = codes[f"state of {name}"] = f"US-{code}"
    return re.compile(rf"(?<![0-9a-z])(?:{trie_pattern(codes)})(?![0-9a-z])"), codes


def find_places(text: str) -> list[PlaceMention]:
    """Every place named in `text`, in order of appearance, each code once."""
    pattern, codes = _name_pattern()
    found: dict[str, tuple[int, str]] = {}
    for match in _STATE_CODE.finditer(text):
        code = match.group("code")
        if code in US_STATES:
            found.setdefault(f"US-{code}", (match.start("code"), match.group("code")))
    for match in pattern.finditer(fold(text)):
        code = codes[match.group(0)]
        found.setdefault(code, (10**9 + match.start(), match.group(0)))
    ordered = sorted(found.items(), key=lambda item: (item[1][0], item[0]))
    return [PlaceMention(code, evidence) for code, (_, evidence) in ordered]


def country_of(code: str) -> str | None:
    """ "US-WA" -> "US", "GB-SCT" -> "GB", "FR" -> "FR", "EU" -> None."""
    if code == "EU":
        return None
    return code.split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class Location:
    """Where one organisation is, read from an address line: what linking compares."""

    country: str | None
    subdivision: str | None
    city: str | None
    # every comma-separated part that names no state or country ("kings place", "london"):
    # two addresses of one place share one, though one may give a street and the other not
    localities: frozenset[str] = frozenset()


def parse_location(text: str) -> Location:
    """The country, the state or nation, and the city (the last comma-separated part that is
    not itself a state or country, less words with digits: street numbers, postcodes), from an
    address such as "500 Fifth Ave N, Seattle, WA 98109, USA"."""
    mentions = find_places(text)
    subdivision = next((m.code for m in mentions if "-" in m.code), None)
    country = next((country_of(m.code) for m in mentions if country_of(m.code)), None)
    if subdivision is not None:
        country = country_of(subdivision)
    named = {fold(m.evidence) for m in mentions}
    localities: list[str] = []
    for part in text.split(","):
        folded = " ".join(word for word in fold(part).split() if not any(ch.isdigit() for ch in word))
        if folded and folded not in named and not re.fullmatch(r"[a-z]{2}", folded):
            localities.append(folded)
    city = localities[-1] if localities else None
    return Location(country=country, subdivision=subdivision, city=city, localities=frozenset(localities))
