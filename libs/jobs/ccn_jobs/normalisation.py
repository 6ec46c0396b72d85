"""The rules the normalisation job types share (CC-43): cleaning a raw field, an organisation
name's display form and match key, EINs, websites, categories, and the issue a record carries
for each thing that could not be normalised.

Every rule is a pure function of its input and is idempotent: applied to its own output it
changes nothing, so normalising a normalised record gives the same record. A value that
cannot be normalised is never guessed: it is left out (None) and an `Issue` says why.

Hostile text: fields arrive bounded by their payload's schema (which also refuses control
characters other than tab and line breaks); cleaning then drops invisible format characters
(bidi marks and overrides, zero-width characters, soft hyphens), applies NFKC (fullwidth
letters are plain ones), collapses whitespace, and, in a word that mixes Latin letters with
Cyrillic or Greek look-alikes ("Gates" written with a Cyrillic a, U+0430), replaces the look-alikes with the
Latin letters and reports it: a match key must not be split, or spoofed, by a homoglyph."""

from __future__ import annotations

import functools
import re
import unicodedata
from importlib import resources
from typing import Annotated, Literal, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import msgspec

from ccn_jobs.errors import DocumentRefused
from ccn_jobs.org_names import normalise
from ccn_jobs.places import fold
from ccn_jobs.text_normalisation import valid_unicode
from ccn_proto.constraints import END, SINGLE_LINE_PATTERN

IssueCode = Literal[
    "homoglyphs_replaced",  # look-alike letters of another script inside a Latin word were replaced
    "truncated",  # the cleaned value was longer than its field's bound and was cut
    "empty_name",  # nothing of the name was left after cleaning
    "invalid_ein",  # not 9 digits, or an IRS prefix that is never issued
    "invalid_website",  # not an http(s) URL with a host
    "unknown_country",  # the country named is not an ISO 3166-1 country
    "country_unknown",  # no country given, and none could be read from the address
    "country_conflict",  # the address names another country than the country field
    "region_not_coded",  # the region has no ISO 3166-2 code here: kept as written
    "invalid_postcode",  # the postcode is not of its country's form
    "address_unparsed",  # the street lines could not be split into parts
    "unknown_category",  # a category that maps to nothing in the vocabulary
    "amount_unparsed",  # no amount could be read from the text
    "amount_out_of_bounds",  # an amount below 0 or above MAX_AMOUNT
    "amount_range_inverted",  # the minimum was above the maximum: they were swapped
    "currency_unknown",  # amounts without a currency the text or the record names
    "currency_assumed",  # "$" with no hint: read as USD, as Grants.gov and most US funders mean
    "deadline_unparsed",  # no date could be read from the text
    "deadline_ambiguous",  # 02/03/2027 with no date order given: day and month cannot be told apart
    "deadline_out_of_range",  # a year before 1900 or after 2200
    "location_unknown",  # no place could be read from the text
    "several_countries",  # the text names more than one country; the first is taken
]
R = TypeVar("R", bound=msgspec.Struct)
MAX_ISSUE_DETAIL_CHARS = 160
MAX_ISSUES = 32
# a result must fit in one frame to the edge (1 MiB) with room to spare; a batch whose result
# would not fails as `too_large` (typed, and the same on every node) rather than being cut
MAX_RESULT_BYTES = 768 * 1024


class Issue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Something of a record that could not be normalised: which field, what, and why."""

    field: Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[a-z_][a-z0-9_.\[\]]*{END}")]
    code: IssueCode
    detail: Annotated[str, msgspec.Meta(max_length=MAX_ISSUE_DETAIL_CHARS, pattern=SINGLE_LINE_PATTERN)]


Issues = Annotated[tuple[Issue, ...], msgspec.Meta(max_length=MAX_ISSUES)]


class IssueLog(list[Issue]):
    """The issues of one record, in the order found, one per field and code (the first one's
    detail kept): a record's issues are bounded by its fields, whatever the input repeats."""

    def add(self, field: str, code: IssueCode, detail: str) -> None:
        if len(self) < MAX_ISSUES and not any(i.field == field and i.code == code for i in self):
            self.append(Issue(field=field, code=code, detail=clean_line(detail, MAX_ISSUE_DETAIL_CHARS)))


def within_result_bound(job_type: str, result: R) -> R:
    """The result, or DocumentRefused("too_large") when it encodes to over MAX_RESULT_BYTES."""
    size = len(msgspec.json.encode(result))
    if size > MAX_RESULT_BYTES:
        raise DocumentRefused(
            job_type, "too_large", f"the result is {size} bytes, over {MAX_RESULT_BYTES}: send fewer or shorter records"
        )
    return result


# ---- text -------------------------------------------------------------------------------------

# Cyrillic and Greek letters that look like Latin ones, and the Latin letter each looks like
_CONFUSABLES = str.maketrans(
    "\u0430\u0432\u0435\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0455\u0456\u0458\u0501"
    "\u04bb\u051b\u051d\u04af\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425"
    "\u0405\u0406\u0408"  # Cyrillic
    "\u03b1\u03bf\u03c1\u03bd\u03b9\u03ba\u03c4\u03c5\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c"
    "\u039d\u039f\u03a1\u03a4\u03a5\u03a7",  # Greek
    "abekmhopctyxsijdhqwyABEKMHOPCTYXSIJaopviktuABEZHIKMNOPTYX",
)
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LOOKALIKE_SCRIPT = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u0500-\u052f]")


def _without_format_characters(text: str) -> str:
    # Cf: bidi marks, embeddings, overrides and isolates, zero-width (non-)joiners, BOM, soft hyphen
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def clean_line(text: str, limit: int) -> str:
    """One line of text: valid Unicode, no format characters, NFKC, whitespace runs one space,
    cut at `limit` characters (at a word boundary when there is one in the last tenth)."""
    return _cut(_cleaned(text), limit)


def _cleaned(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", _without_format_characters(valid_unicode(text))).split())


def _cut(cleaned: str, limit: int) -> str:
    if len(cleaned) <= limit:
        return cleaned
    cut = cleaned[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit * 9 // 10 else cut).rstrip()


def deconfused(text: str) -> tuple[str, bool]:
    """Each word that mixes Latin letters with Cyrillic or Greek ones, with the look-alikes
    made Latin; words wholly of one script are left alone. (text, whether anything changed)."""
    if not _LOOKALIKE_SCRIPT.search(text):
        return text, False
    words = text.split(" ")
    changed = False
    for index, word in enumerate(words):
        if _LATIN_LETTER.search(word) and _LOOKALIKE_SCRIPT.search(word):
            replaced = word.translate(_CONFUSABLES)
            changed = changed or replaced != word
            words[index] = replaced
    return " ".join(words), changed


def clean_field(text: str, limit: int, field: str, issues: IssueLog) -> str:
    """`clean_line` then `deconfused`, each loss reported on `field`."""
    full = _cleaned(text)
    if len(full) > limit:
        issues.add(field, "truncated", f"cut to {limit} characters")
    cleaned, replaced = deconfused(_cut(full, limit))
    if replaced:
        issues.add(field, "homoglyphs_replaced", "Cyrillic or Greek look-alikes in a Latin word made Latin")
    return cleaned


# ---- names ------------------------------------------------------------------------------------

# written in capitals whatever the case around them
ACRONYMS = frozenset(
    {
        "usa", "us", "uk", "eu", "un", "llc", "llp", "lp", "plc", "cic", "cio", "ymca", "ywca", "naacp",
        "aarp", "nasa", "unicef", "ii", "iii", "iv", "vi", "vii", "viii", "ix", "xi", "xii", "dc", "nyc",
        "la", "ny", "rspca", "nspcc", "gmbh", "ggmbh", "ag", "sa", "nv", "bv", "asbl", "vzw", "po", "ne", "nw",
        "se", "sw",
    }
)  # fmt: skip
# address and title abbreviations without a vowel that are words, not acronyms: "N Lakeshore Dr"
ABBREVIATIONS = frozenset(
    {
        "st", "dr", "rd", "ste", "blvd", "pkwy", "hwy", "ct", "ln", "pl", "sq", "fl", "bldg", "rm", "mr",
        "mrs", "ms", "jr", "sr", "mt", "ft", "pt", "pk", "cv", "trl", "xing", "cswy", "frwy", "expy",
    }
)  # fmt: skip
SMALL_WORDS = frozenset({"a", "an", "and", "as", "at", "by", "de", "for", "in", "of", "on", "or", "the", "to", "with"})
_VOWELS = frozenset("aeiouy")


def display_case(text: str) -> str:
    """A name or address line written all in capitals (as the IRS Business Master File writes
    them) in title case: "BILL & MELINDA GATES FOUNDATION INC" is "Bill & Melinda Gates
    Foundation Inc". Known acronyms, short words with no vowel ("NPR"), words with digits
    ("SW1A", "N1") but ordinals ("5TH" is "5th"), and two letters after a comma (a state or
    province code: "SEATTLE, WA") stay as written; small words other than the first are lower
    case. Text with any lower-case letter is left as written."""
    if text != text.upper() or text == text.lower():
        return text
    if " " not in text and len(text) <= 5:  # "NSF", "EDA": a one-word name this short is an acronym
        return text
    words = text.split(" ")
    return " ".join(
        word if index and words[index - 1].endswith(",") and len(word) == 2 else _title_word(word, first=index == 0)
        for index, word in enumerate(words)
    )


_ORDINAL = re.compile(r"^[0-9]+(?:ST|ND|RD|TH)$")


def _title_word(word: str, *, first: bool) -> str:
    if any(ch.isdigit() for ch in word):
        return word.lower() if _ORDINAL.match(word) else word
    bare = word.strip(".,;:()'\"").lower()
    if bare in ACRONYMS or (
        bare.isalpha() and bare.isascii() and len(bare) <= 4 and not set(bare) & _VOWELS and bare not in ABBREVIATIONS
    ):
        return word
    if bare in SMALL_WORDS and not first:
        return word.lower()
    return "-".join(_title_part(part) for part in word.split("-"))


def _title_part(part: str) -> str:
    titled = part[:1].upper() + part[1:].lower()
    if titled.startswith("Mc") and len(titled) > 3:  # McDonald
        titled = "Mc" + titled[2].upper() + titled[3:]
    if len(titled) > 2 and titled[1] == "'" and titled[0].isalpha():  # O'Brien
        titled = titled[:2] + titled[2].upper() + titled[3:]
    return titled


def name_match_key(display: str) -> str:
    """What records of one organisation share whatever their source: ccn_jobs.org_names'
    folded name without "The" or legal forms ("bill and melinda gates foundation")."""
    return normalise(display).full


# ---- EIN --------------------------------------------------------------------------------------

# IRS campus prefixes never issued (IRS, "How EINs are assigned and valid EIN prefixes")
INVALID_EIN_PREFIXES = frozenset(
    {"00", "07", "08", "09", "17", "18", "19", "28", "29", "49", "69", "70", "78", "79", "89", "96", "97"}
)
_EIN_SEPARATORS = re.compile("[\\s.\\-\u2010-\u2015\u2212]")  # hyphens, dashes, minus


def normalise_ein(raw: str, issues: IssueLog) -> str | None:
    """ "56-2618866", "562618866", "56 2618866" -> "56-2618866"; anything else None, reported."""
    digits = _EIN_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if not digits:
        return None
    if not (len(digits) == 9 and digits.isascii() and digits.isdigit()):
        issues.add("ein", "invalid_ein", f"{clean_line(raw, 40)!r} is not 9 digits")
        return None
    if digits[:2] in INVALID_EIN_PREFIXES:
        issues.add("ein", "invalid_ein", f"prefix {digits[:2]} is never issued by the IRS")
        return None
    return f"{digits[:2]}-{digits[2:]}"


# ---- websites ---------------------------------------------------------------------------------

MAX_WEBSITE_CHARS = 2048
# query parameters that say how a visitor arrived, not what the page is
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid", "mc_cid",
        "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "ref", "ref_src", "si",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "hsa_")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_website(raw: str, issues: IssueLog, field: str = "website") -> str | None:
    """The website as one spelling: https:// added when no scheme is written, scheme and host
    lower case, the host in IDNA (punycode) without a trailing dot, the default port, the
    fragment and tracking parameters (utm_*, gclid, fbclid...) dropped, an empty path "/".
    Anything but an http(s) URL with a host, or one with credentials, is None, reported."""
    text = "".join(unicodedata.normalize("NFKC", _without_format_characters(raw)).split())
    if not text:
        return None
    if "://" not in text and not text.lower().startswith(("http:", "https:")):
        text = "https://" + text
    try:
        parts = urlsplit(text[:MAX_WEBSITE_CHARS])
        port = parts.port
        host = (parts.hostname or "").rstrip(".")
        host = host.encode("idna").decode("ascii").lower() if host else ""
    except (ValueError, UnicodeError):
        issues.add(field, "invalid_website", f"{clean_line(raw, 80)!r} is not a URL")
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc or not re.fullmatch(r"[a-z0-9.\-\[\]:]+", host):
        issues.add(field, "invalid_website", f"{clean_line(raw, 80)!r} is not an http(s) URL with a host")
        return None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    kept = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in TRACKING_PARAMETERS and not key.lower().startswith(TRACKING_PREFIXES)
    ]
    # non-ASCII and spaces percent-encoded (UTF-8), as a browser sends them; escapes kept as written
    path = quote(parts.path, safe="/%!$&'()*+,;=:@-._~") or "/"
    url = urlunsplit((scheme, netloc, path, urlencode(kept), ""))
    if len(url) > MAX_WEBSITE_CHARS:
        issues.add(field, "invalid_website", f"longer than {MAX_WEBSITE_CHARS} characters")
        return None
    return url


# ---- categories -------------------------------------------------------------------------------

CategoryScheme = Literal["text", "ntee", "grants_gov"]
CategoryId = Annotated[str, msgspec.Meta(pattern=rf"^[a-z_]{{1,40}}{END}")]
_NTEE_CODE = re.compile(r"^([A-Z])(?:[0-9]{2}[A-Z0-9]?)?$")


class Category(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: CategoryId
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    ntee: Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{END}")]
    aliases: tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=100)], ...] = ()


class CategoryVocabulary(msgspec.Struct, frozen=True, forbid_unknown_fields=True, dict=True):
    """ccn_jobs/data/categories.json: the canonical categories (the NTEE major groups) with the
    words that name them, and Grants.gov's funding activity category codes."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    categories: tuple[Category, ...]
    grants_gov: dict[Annotated[str, msgspec.Meta(pattern=rf"^[A-Z]{{1,4}}{END}")], CategoryId]

    def __post_init__(self) -> None:
        ids = {category.id for category in self.categories}
        if len(ids) != len(self.categories):
            raise ValueError("category ids must be unique")
        unknown = sorted(set(self.grants_gov.values()) - ids)
        if unknown:
            raise ValueError(f"grants_gov maps to unknown categories {unknown}")

    @functools.cached_property
    def by_ntee(self) -> dict[str, str]:
        return {category.ntee: category.id for category in self.categories}

    @functools.cached_property
    def by_name(self) -> dict[str, str]:
        """Folded id, label and aliases -> id; an id or label wins over another's alias."""
        names: dict[str, str] = {}
        for category in self.categories:
            for alias in category.aliases:
                names.setdefault(fold(alias), category.id)
        for category in self.categories:
            names[fold(category.label)] = category.id
            names[fold(category.id)] = category.id
        return names

    @functools.cached_property
    def order(self) -> dict[str, int]:
        return {category.id: index for index, category in enumerate(self.categories)}


@functools.cache
def load_vocabulary() -> CategoryVocabulary:
    raw = resources.files("ccn_jobs").joinpath("data/categories.json").read_bytes()
    return msgspec.json.decode(raw, type=CategoryVocabulary)


def canonical_categories(
    raw: tuple[str, ...], scheme: CategoryScheme, issues: IssueLog
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(canonical category ids in vocabulary order, NTEE codes as given), from raw categories:
    NTEE codes ("B82", "T20") under scheme "ntee", Grants.gov codes ("ED", "ENV") under
    "grants_gov", and under "text" (which any scheme falls back to) a category id, label or
    alias, or an NTEE code (a lone letter only in capitals). An unknown one is reported."""
    vocabulary = load_vocabulary()
    found: set[str] = set()
    ntee_codes: list[str] = []
    unknown: list[str] = []
    for value in raw:
        text = clean_line(value, 200)
        if not text:
            continue
        code = text.upper().replace(" ", "")
        ntee = _NTEE_CODE.match(code)
        if scheme == "grants_gov" and code in vocabulary.grants_gov:
            found.add(vocabulary.grants_gov[code])
        elif ntee and (scheme == "ntee" or len(code) > 1 or text == code) and ntee.group(1) in vocabulary.by_ntee:
            found.add(vocabulary.by_ntee[ntee.group(1)])
            if code not in ntee_codes:
                ntee_codes.append(code)
        elif (named := vocabulary.by_name.get(fold(text))) is not None:
            found.add(named)
        else:
            unknown.append(text)
    if unknown:
        named = ", ".join(repr(text[:40]) for text in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        issues.add("categories", "unknown_category", f"{named}{more} name no category")
    ordered = tuple(sorted(found, key=vocabulary.order.__getitem__))
    return ordered, tuple(ntee_codes)
