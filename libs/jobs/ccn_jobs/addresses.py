"""Addresses in parts: country (ISO 3166-1 alpha-2), region (ISO 3166-2), city, postcode, and
the street lines split into house number, street, unit and PO box.

US street lines are parsed by usaddress (a conditional random field trained on US addresses;
its model ships inside the wheel, nothing is downloaded; its tagging is a Viterbi decode, the
same on every machine). libpostal, the one parser that covers every country, needs a model of
about 2 GB fetched at install time and cannot be used here, so every other country is read by
the documented rules below, written for the UK, Ireland, Canada and continental Europe:
- a line starting with a PO box phrase ("PO Box 12", "Postfach 10 01", "BP 45") is the PO box;
- a line starting with a unit word ("Flat 3", "Suite 200", "Unit 4B") is the unit;
- a house number stands first ("10 Downing Street", "12 rue de la Paix") or, in the countries
  that write it after the street (DE, NL, AT, CH, IT, ES, PL, the Nordics...), last
  ("Hauptstraße 12", "Keizersgracht 123-A");
- a postcode of its country's form (UK "SW1A 1AA", Canada "K1A 0B1", Ireland "D02 X285", the
  Netherlands "1012 AB", five or four digits elsewhere) is taken from the last lines when no
  postcode field is given, and the words after it on that line are the city.
Countries come from ccn_jobs.places' gazetteer (names, native names, aliases) and, for the rest
of the world, the ISO 3166-1 list of the iso3166 package (English names, alpha-2, alpha-3).
Regions are coded for the US (states and DC), the UK (its nations), Canada and Australia;
elsewhere a region is kept as written and reported as not coded."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from ccn_jobs.normalisation import IssueLog, clean_line, display_case
from ccn_jobs.places import COUNTRIES, UK_NATIONS, US_STATES, find_places, fold

if TYPE_CHECKING:
    from collections.abc import Mapping

CA_PROVINCES: dict[str, str] = {
    "AB": "alberta", "BC": "british columbia", "MB": "manitoba", "NB": "new brunswick",
    "NL": "newfoundland and labrador", "NS": "nova scotia", "NT": "northwest territories", "NU": "nunavut",
    "ON": "ontario", "PE": "prince edward island", "QC": "quebec", "SK": "saskatchewan", "YT": "yukon",
}  # fmt: skip
AU_STATES: dict[str, str] = {
    "ACT": "australian capital territory", "NSW": "new south wales", "NT": "northern territory",
    "QLD": "queensland", "SA": "south australia", "TAS": "tasmania", "VIC": "victoria", "WA": "western australia",
}  # fmt: skip
GB_NATIONS = {code.split("-", 1)[1]: name for code, name in UK_NATIONS.items()}
REGIONS: dict[str, dict[str, str]] = {
    "US": US_STATES,
    "CA": CA_PROVINCES,
    "AU": AU_STATES,
    "GB": GB_NATIONS,
}

# postcodes, upper case, the country's own spacing restored by `_POSTCODE_FORMAT`
POSTCODE_FORMS: dict[str, str] = {
    "US": r"[0-9]{5}(?:-?[0-9]{4})?",
    "GB": r"(?:[A-Z]{1,2}[0-9][A-Z0-9]?) ?[0-9][A-Z]{2}",
    "CA": r"[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z] ?[0-9][ABCEGHJ-NPRSTV-Z][0-9]",
    "IE": r"(?:[AC-FHKNPRTV-Y][0-9]{2}|D6W) ?[0-9AC-FHKNPRTV-Y]{4}",
    "NL": r"[1-9][0-9]{3} ?[A-Z]{2}",
    "SE": r"[0-9]{3} ?[0-9]{2}",
    "PL": r"[0-9]{2}-[0-9]{3}",
    "PT": r"[0-9]{4}-[0-9]{3}",
}
for _code in ("DE", "FR", "IT", "ES", "FI", "EE", "HR", "LT", "MX", "UA", "GR", "CZ", "SK"):
    POSTCODE_FORMS[_code] = r"[0-9]{3} ?[0-9]{2}" if _code in ("GR", "CZ", "SK") else r"[0-9]{5}"
for _code in ("AT", "BE", "CH", "DK", "NO", "LU", "HU", "SI", "BG", "CY", "AU", "NZ", "ZA"):
    POSTCODE_FORMS[_code] = r"[0-9]{4}"
# a postcode of this form names its country on its own (a bare five digits does not)
TELLING_POSTCODES = ("GB", "CA", "IE", "NL")
# countries whose addresses write the house number after the street
NUMBER_AFTER_STREET = frozenset(
    {"DE", "NL", "AT", "CH", "IT", "ES", "PL", "DK", "NO", "SE", "FI", "CZ", "SK", "HU", "SI", "HR", "PT", "BE"}
    | {"LU", "GR", "IS"}
)
_PO_BOX = re.compile(
    r"^(?:p\.? ?o\.? ?box|post office box|postfach|bo[iî]te postale|bp|apartado(?: de correos)?"
    r"|casella postale|postbus)"
    r"\.?\s*(?P<id>[0-9A-Za-z][0-9A-Za-z -]{0,15})$",
    re.IGNORECASE,
)
_UNIT = re.compile(
    r"^(?:flat|apartment|apt|suite|ste|unit|floor|fl|room|rm|office|level|building|bldg)"
    r"\.?\s+[#0-9A-Za-z][0-9A-Za-z -]{0,15}$",
    re.IGNORECASE,
)
_HOUSE_NUMBER = r"[0-9]{1,5}[A-Za-z]?(?:[-/](?:[0-9]{1,5}[A-Za-z]?|[A-Za-z]))?"
_NUMBER_FIRST = re.compile(rf"^(?P<number>{_HOUSE_NUMBER}),?\s+(?P<street>\D.*)$")
_NUMBER_LAST = re.compile(rf"^(?P<street>\D.*?)\s+(?P<number>{_HOUSE_NUMBER})$")


@functools.cache
def _country_names() -> Mapping[str, str]:
    """Folded country name or alias -> alpha-2: the gazetteer's first, then ISO 3166-1's."""
    import iso3166

    names: dict[str, str] = {}
    for country in iso3166.countries:
        for name in (country.name, country.apolitical_name):
            names.setdefault(fold(name), country.alpha2)
    for code, aliases in COUNTRIES.items():
        for alias in aliases:
            names[fold(alias)] = code
    return names


@functools.cache
def _country_codes() -> Mapping[str, str]:
    """Alpha-2 and alpha-3 code -> alpha-2 ("UK" is the UK's common non-ISO code)."""
    import iso3166

    codes = {country.alpha3: country.alpha2 for country in iso3166.countries}
    codes.update({country.alpha2: country.alpha2 for country in iso3166.countries})
    codes["UK"] = "GB"
    return codes


def country_code(text: str) -> str | None:
    """ "US", "usa", "DEU", "Deutschland", "United Kingdom", "Viet Nam" -> alpha-2, else None."""
    stripped = text.strip()
    code = _country_codes().get(stripped.upper().replace(".", "")) if len(stripped) <= 4 else None
    return code or _country_names().get(fold(stripped))


def region_code(text: str, country: str | None) -> str | None:
    """ "WA", "Washington", "US-WA" -> "US-WA" (with the country, or where the text alone says
    it: an ISO 3166-2 code, or a full name of a coded region); else None."""
    stripped = text.strip()
    if "-" in stripped and stripped.split("-", 1)[0].upper() in REGIONS:
        prefix, local = stripped.upper().split("-", 1)
        return f"{prefix}-{local}" if local in REGIONS[prefix] and (country in (None, prefix)) else None
    folded = fold(stripped)
    countries = list(REGIONS) if country is None else [country] if country in REGIONS else []
    for candidate in countries:
        regions = REGIONS[candidate]
        if stripped.upper() in regions and country == candidate:  # a bare code needs its country
            return f"{candidate}-{stripped.upper()}"
        for code, name in regions.items():
            if folded == name:
                return f"{candidate}-{code}"
    return None


def format_postcode(text: str, country: str | None) -> str | None:
    """The postcode in its country's form ("sw1a1aa" -> "SW1A 1AA", "981091234" ->
    "98109-1234"), or None when it is not of that form; without a country, as written."""
    compact = " ".join(text.upper().split())
    if country is None:
        return compact if re.fullmatch(r"[A-Z0-9][A-Z0-9 -]{1,11}", compact) else None
    form = POSTCODE_FORMS.get(country)
    if form is None:
        return compact if re.fullmatch(r"[A-Z0-9][A-Z0-9 -]{1,11}", compact) else None
    if not re.fullmatch(form, compact):
        return None
    squeezed = compact.replace(" ", "")
    if country == "US":
        digits = squeezed.replace("-", "")
        return digits if len(digits) == 5 else f"{digits[:5]}-{digits[5:]}"
    if country in ("GB", "CA"):
        return f"{squeezed[:-3]} {squeezed[-3:]}"
    if country == "IE":  # routing key, then the unique identifier
        return f"{squeezed[:3]} {squeezed[3:]}"
    if country == "NL":
        return f"{squeezed[:4]} {squeezed[4:]}"
    if country in ("SE", "GR", "CZ", "SK"):
        return f"{squeezed[:3]} {squeezed[3:]}"
    return squeezed


def postcode_country(text: str) -> str | None:
    """The country a postcode's form alone names (UK, Canada, Ireland, the Netherlands)."""
    compact = " ".join(text.upper().split())
    return next((c for c in TELLING_POSTCODES if re.fullmatch(POSTCODE_FORMS[c], compact)), None)


class StreetParts:
    """What the street lines hold. A plain class: the job types copy it into their Structs."""

    __slots__ = ("city", "house_number", "lines", "po_box", "postcode", "region", "street", "unit")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.house_number: str | None = None
        self.street: str | None = None
        self.unit: str | None = None
        self.po_box: str | None = None
        # found in the lines when the record gave no field of its own for them
        self.city: str | None = None
        self.region: str | None = None
        self.postcode: str | None = None


def parse_street_lines(lines: list[str], country: str | None, *, want_locality: bool, issues: IssueLog) -> StreetParts:
    """The street lines in parts; with `want_locality`, a city, region and postcode found at the
    end of the lines are taken out of them (the record gave none of its own)."""
    if country == "US" or (country is None and _looks_american(lines)):
        return _us_parts(lines, want_locality=want_locality, issues=issues)
    return _rule_parts(lines, country, want_locality=want_locality)


def _looks_american(lines: list[str]) -> bool:
    return bool(lines) and re.search(r",\s*[A-Z]{2}\s+[0-9]{5}(?:-[0-9]{4})?\s*$", lines[-1]) is not None


_US_STREET_LABELS = (
    "StreetNamePreModifier",
    "StreetNamePreDirectional",
    "StreetNamePreType",
    "StreetName",
    "StreetNamePostType",
    "StreetNamePostDirectional",
)


def _us_parts(lines: list[str], *, want_locality: bool, issues: IssueLog) -> StreetParts:
    import usaddress  # type: ignore[import-untyped]

    parts = StreetParts()
    try:
        tagged, _ = usaddress.tag(", ".join(lines))
    except usaddress.RepeatedLabelError:
        issues.add("address", "address_unparsed", "the street lines repeat a part (two streets, two numbers)")
        parts.lines = lines
        return parts
    parts.house_number = _joined(tagged, ("AddressNumberPrefix", "AddressNumber", "AddressNumberSuffix"))
    parts.street = _joined(tagged, _US_STREET_LABELS)
    parts.unit = _joined(tagged, ("OccupancyType", "OccupancyIdentifier", "SubaddressType", "SubaddressIdentifier"))
    parts.po_box = _joined(tagged, ("USPSBoxType", "USPSBoxID"))
    locality = {"PlaceName", "StateName", "ZipCode", "CountryName"}
    if want_locality and locality & set(tagged):
        parts.city = tagged.get("PlaceName")
        parts.region = tagged.get("StateName")
        parts.postcode = tagged.get("ZipCode")
        parts.lines = _lines_without(lines, [tagged[label] for label in locality if label in tagged])
    else:
        parts.lines = lines
    if parts.street is None and parts.po_box is None:
        issues.add("address", "address_unparsed", "no street or PO box found in the street lines")
    return parts


def _joined(tagged: Mapping[str, str], labels: tuple[str, ...]) -> str | None:
    words = [tagged[label].strip(" ,") for label in labels if tagged.get(label, "").strip(" ,")]
    return " ".join(words) or None


def _lines_without(lines: list[str], taken: list[str]) -> list[str]:
    """The lines with the locality words taken out, each at its last place from the end (the
    locality ends an address: "100 Seattle Way, Seattle, WA" keeps its street's "Seattle"); a
    line left with nothing is dropped."""
    kept = list(lines)
    for value in taken:
        for index in range(len(kept) - 1, -1, -1):
            at = kept[index].rfind(value)
            if at != -1:
                kept[index] = kept[index][:at] + " " + kept[index][at + len(value) :]
                break
    return [" ".join(line.replace(" ,", ",").split()).strip(" ,") for line in kept if re.sub(r"[\s,.;]+", "", line)]


def _rule_parts(lines: list[str], country: str | None, *, want_locality: bool) -> StreetParts:
    parts = StreetParts()
    remaining = list(lines)
    if want_locality and remaining:
        _take_locality(remaining, country, parts)
    streets: list[str] = []
    for line in remaining:
        bare = line.strip(" ,")
        if parts.po_box is None and (box := _PO_BOX.match(bare)):
            parts.po_box = f"PO Box {box.group('id').strip()}"
        elif parts.unit is None and _UNIT.match(bare):
            parts.unit = bare
        else:
            streets.append(bare)
    # the first line with a house number is the street ("Kings Place", "90 York Way": the second)
    for line in streets:
        first, last = _NUMBER_FIRST.match(line), _NUMBER_LAST.match(line)
        chosen = last if last and (country in NUMBER_AFTER_STREET or not first) else first
        if chosen is not None:
            parts.house_number, parts.street = chosen.group("number"), chosen.group("street").strip(" ,")
            break
    else:
        if streets:
            parts.street = streets[-1]
    parts.lines = remaining
    return parts


def _take_locality(remaining: list[str], country: str | None, parts: StreetParts) -> None:
    """From the last line, as "City POSTCODE", "POSTCODE City" or "City, Region POSTCODE",
    and, with the postcode alone on it, the line before when that holds the city alone
    ("London" above "SW1A 1AA")."""
    last = remaining[-1]
    codes = [country] if country is not None and country in POSTCODE_FORMS else list(TELLING_POSTCODES)
    for code in codes:
        match = re.search(rf"(?<![A-Za-z0-9])({POSTCODE_FORMS[code]})(?![A-Za-z0-9])", last.upper())
        if match is None:
            continue
        before, after = last[: match.start()].strip(" ,"), last[match.end() :].strip(" ,")
        parts.postcode = last[match.start() : match.end()]
        if before and after:  # "Keizersgracht 123, 1015 CJ Amsterdam": the street stays
            remaining[-1] = before
            place = after
        else:
            remaining.pop()
            place = before or after
        city, _, region = place.partition(",")
        parts.city = city.strip() or None
        parts.region = region.strip() or None
        break
    if parts.postcode is not None and parts.city is None and len(remaining) > 1 and not re.search(r"\d", remaining[-1]):
        parts.city = remaining.pop().strip(" ,")


def city_display(text: str) -> str:
    return display_case(clean_line(text, 100))


def mentioned_countries(text: str, *, by_regions: bool = True) -> list[str]:
    """Every country the text names (by the gazetteer, then ISO names of comma-separated
    parts), each once, in order of mention; `by_regions`: a state or nation names its country."""
    from ccn_jobs.places import country_of

    found: list[str] = []
    for mention in find_places(text):
        if "-" in mention.code and not by_regions:
            continue
        code = country_of(mention.code)
        if code and code not in found:
            found.append(code)
    for part in text.split(","):
        code = _country_names().get(fold(part))
        if code and code not in found:
            found.append(code)
    return found
