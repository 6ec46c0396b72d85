"""Business rules for a job type's results, as data (CC-35): what a result must hold beyond what
its Struct's schema already says, checked by the validation service before a result is used.

A job type declares its `ResultRules` beside its result type (`JobType.result_rules`). Each rule
names a field by its path in the result as JSON: `language`, `fetch.status`, `entities[].value`
(`[]` is every item of a list; an item may itself be the value: `links[]`). The kinds:
- `Mandatory`: present, not null, and not empty (a string of only whitespace, an empty list);
- `Format`: a named format (FORMATS) or an RE2 regular expression the whole value must match;
- `Forbidden`: none of these values; `Allowed`: one of these values;
- `Bounds`: a number within [ge, le]; `Size`: a string's characters or a list's items within
  [min_length, max_length]; `LessThan`: a number below (or not above) a sibling field's;
each optionally only `When` a sibling field (a field of the same object) holds one of some
values: `entities[].value` is an ISO date when that entity's `type` is `deadline_date`.
A rule checks the values its path reaches: `funding_type.confidence` nothing when
`funding_type` is null (a `Mandatory("funding_type")` would require it), `entities[].value`
nothing in an empty list. A value of the wrong type for its rule is left to the schema check.

Versioning: `ResultRules.version` names the rules. Verdicts record it beside the job type's
version (`JobType.schema_version` joins the two), so a verdict can be read against the rules
that made it; any change to a job type's rules must bump it (tests/unit/test_result_rules.py pins
a fingerprint of each job type's rules per version and fails when they change under one).

Rules are checked against their result type when the job type is built (`rules_problems`): a
path that names no field, a `When` on a field its object lacks, a regex RE2 refuses, all fail at
import rather than on the first result."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from typing import Annotated, Any, Final, Literal

import msgspec

from ccn_proto.constraints import END, SINGLE_LINE_PATTERN

FormatName = Literal["url", "email", "iso_date", "iso_country", "iso_region", "ein", "sha256", "language_code"]
FORMATS: tuple[FormatName, ...] = (
    "url",
    "email",
    "iso_date",
    "iso_country",
    "iso_region",
    "ein",
    "sha256",
    "language_code",
)
MAX_RULES: Final = 100
MAX_REGEX_CHARS: Final = 256
MAX_VALUES: Final = 100

FieldName = Annotated[str, msgspec.Meta(pattern=rf"^[a-z_][a-z0-9_]{{0,63}}{END}")]
RulePath = Annotated[
    str,
    msgspec.Meta(
        max_length=200,
        pattern=rf"^[a-z_][a-z0-9_]*(\[\])?(\.[a-z_][a-z0-9_]*(\[\])?)*{END}",
        description='a field of the result: "language", "fetch.status", "entities[].value", "links[]"',
    ),
]
Scalar = str | int | float | bool
Values = Annotated[tuple[Scalar, ...], msgspec.Meta(min_length=1, max_length=MAX_VALUES)]
Note = Annotated[str, msgspec.Meta(max_length=200, pattern=SINGLE_LINE_PATTERN)]


class When(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The rule applies only where `field`, of the same object as the checked value, is one of `is_in`."""

    field: FieldName
    is_in: Values


class Mandatory(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="mandatory", tag_field="rule"
):
    path: RulePath
    when: When | None = None
    note: Note = ""


class Format(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="format", tag_field="rule"):
    """Exactly one of `format` (a named format) and `regex` (RE2, matched against the whole value)."""

    path: RulePath
    format: FormatName | None = None
    regex: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REGEX_CHARS)] | None = None
    when: When | None = None
    note: Note = ""

    def __post_init__(self) -> None:
        if (self.format is None) == (self.regex is None):
            raise ValueError("a format rule names one of `format` and `regex`")


class Forbidden(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="forbidden", tag_field="rule"
):
    path: RulePath
    values: Values
    when: When | None = None
    note: Note = ""


class Allowed(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="allowed", tag_field="rule"):
    path: RulePath
    values: Values
    when: When | None = None
    note: Note = ""


class Bounds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="bounds", tag_field="rule"):
    path: RulePath
    ge: float | None = None
    le: float | None = None
    when: When | None = None
    note: Note = ""

    def __post_init__(self) -> None:
        if self.ge is None and self.le is None:
            raise ValueError("a bounds rule names `ge`, `le` or both")
        if self.ge is not None and self.le is not None and self.ge > self.le:
            raise ValueError("`ge` is above `le`")


class Size(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="size", tag_field="rule"):
    """A string's length in characters (code points) or a list's in items."""

    path: RulePath
    min_length: Annotated[int, msgspec.Meta(ge=0)] | None = None
    max_length: Annotated[int, msgspec.Meta(ge=0)] | None = None
    when: When | None = None
    note: Note = ""

    def __post_init__(self) -> None:
        if self.min_length is None and self.max_length is None:
            raise ValueError("a size rule names `min_length`, `max_length` or both")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError("`min_length` is above `max_length`")


class LessThan(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="less_than", tag_field="rule"
):
    """The number at `path` is below `sibling`, a field of the same object (or equal to it, with
    `or_equal`); nothing is checked where either is missing."""

    path: RulePath
    sibling: FieldName
    or_equal: bool = False
    when: When | None = None
    note: Note = ""


Rule = Mandatory | Format | Forbidden | Allowed | Bounds | Size | LessThan


class ResultRules(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A job type's rules and their version (bumped with every change to `rules`)."""

    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16, pattern=rf"^[A-Za-z0-9._-]+{END}")]
    rules: Annotated[tuple[Rule, ...], msgspec.Meta(max_length=MAX_RULES)] = ()


# what a job type that declares nothing gets: its schema alone
NO_RULES: Final = ResultRules(version="0")


def rules_fingerprint(rules: ResultRules) -> str:
    """sha256 of the rules' canonical JSON: changes whenever any rule does."""
    return hashlib.sha256(msgspec.json.encode(rules, order="sorted")).hexdigest()


def _words(text: str) -> list[str]:
    return text.split()


# ---- named formats --------------------------------------------------------------------------

# ISO 3166-1 alpha-2, the officially assigned codes
ISO_COUNTRIES: Final = frozenset(
    _words(
        """
        AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
        BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
        EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
        GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
        KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
        MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
        QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
        TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
        ZW
        """
    )
)
# ISO 639-1, the two-letter language codes
ISO_639_1: Final = frozenset(
    _words(
        """
        aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da
        de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy
        hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg
        li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or
        os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta
        te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
        """
    )
)
# ISO 639 codes that name no language: undetermined, no linguistic content, multiple, uncoded
_NOT_LANGUAGES: Final = frozenset({"und", "zxx", "mul", "mis"})
# US EIN prefixes the IRS assigns (its campuses and online issuance); others are no EIN
EIN_PREFIXES: Final = frozenset(
    _words(
        """
        01 02 03 04 05 06 10 11 12 13 14 15 16 20 21 22 23 24 25 26 27 30 31 32 33 34 35 36 37 38 39
        40 41 42 43 44 45 46 47 48 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 71 72 73
        74 75 76 77 80 81 82 83 84 85 86 87 88 90 91 92 93 94 95 98 99
        """
    )
)
MAX_URL_CHARS: Final = 2048
MAX_EMAIL_CHARS: Final = 254  # RFC 5321's limit on a path

_URL = re.compile(
    rf"^https?://(?P<host>[A-Za-z0-9.\-]{{1,253}}|\[[0-9A-Fa-f:.]{{2,45}}\])(?::[0-9]{{1,5}})?(?:[/?#][\x21-\x7e]*)?{END}"
)
_EMAIL = re.compile(
    rf"^[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]{{1,64}}@[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
    rf"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)+{END}"
)
_ISO_DATE = re.compile(rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}{END}")
_REGION = re.compile(rf"^(?P<country>[A-Z]{{2}})(?:-[A-Z0-9]{{1,3}})?{END}")
_EIN = re.compile(rf"^(?P<prefix>[0-9]{{2}})-?[0-9]{{7}}{END}")
_SHA256 = re.compile(rf"^[0-9a-f]{{64}}{END}")
_LANGUAGE = re.compile(rf"^[a-z]{{2,3}}{END}")


def _url_problem(value: str) -> str | None:
    if len(value) > MAX_URL_CHARS:
        return f"is a URL of {len(value)} characters; at most {MAX_URL_CHARS}"
    match = _URL.match(value)
    if match is None:
        return "is not an http(s) URL with a host, in printable ASCII"
    host = match.group("host")
    if not host.startswith("[") and (host.startswith(("-", ".")) or ".." in host):
        return "is not an http(s) URL with a valid host name"
    return None


def _email_problem(value: str) -> str | None:
    if len(value) > MAX_EMAIL_CHARS or _EMAIL.match(value) is None:
        return "is not an e-mail address (local@domain.example)"
    return None


def _iso_date_problem(value: str) -> str | None:
    if _ISO_DATE.match(value) is None:
        return "is not an ISO 8601 date (YYYY-MM-DD)"
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return "is not a calendar date"
    return None


def _country_problem(value: str) -> str | None:
    return None if value in ISO_COUNTRIES else "is not an ISO 3166-1 alpha-2 country code"


def _region_problem(value: str) -> str | None:
    if value == "EU":
        return None
    match = _REGION.match(value)
    if match is None or match.group("country") not in ISO_COUNTRIES:
        return "is not an ISO 3166 country or subdivision code (GB, US-WA) or EU"
    return None


def _ein_problem(value: str) -> str | None:
    match = _EIN.match(value)
    if match is None:
        return "is not a US EIN (12-3456789)"
    if match.group("prefix") not in EIN_PREFIXES:
        return f"is not a US EIN: no EIN begins {match.group('prefix')}"
    return None


def _sha256_problem(value: str) -> str | None:
    return None if _SHA256.match(value) else "is not a sha256 digest (64 lower-case hex digits)"


def _language_problem(value: str) -> str | None:
    if _LANGUAGE.match(value) is None:
        return "is not an ISO 639 language code"
    if len(value) == 2 and value not in ISO_639_1:
        return "is not an ISO 639-1 language code"
    # three letters: ISO 639-2/3 (too many to list here), but none of the codes for no language
    # and none of the range reserved for local use (qaa-qtz)
    if value in _NOT_LANGUAGES or "qaa" <= value <= "qtz":
        return "is an ISO 639 code that names no language"
    return None


FORMAT_CHECKS: Final = {
    "url": _url_problem,
    "email": _email_problem,
    "iso_date": _iso_date_problem,
    "iso_country": _country_problem,
    "iso_region": _region_problem,
    "ein": _ein_problem,
    "sha256": _sha256_problem,
    "language_code": _language_problem,
}


def format_problem(name: FormatName, value: str) -> str | None:
    """Why `value` is not in the named format, or None when it is."""
    return FORMAT_CHECKS[name](value)


@functools.lru_cache(maxsize=256)
def compiled_rule_regex(pattern: str) -> Any:
    """The rule's pattern under RE2 (linear in its input, whatever the input), as the extraction
    rules compile theirs; ValueError when RE2 refuses it."""
    from ccn_jobs.extraction_rules import compiled_regex

    return compiled_regex(pattern)


# ---- checking the rules against the result type ------------------------------------------------


def rules_problems(result_type: type[msgspec.Struct], rules: ResultRules) -> list[str]:
    """What is wrong with `rules` for results of `result_type`: paths that name no field (or go
    through something that is neither an object nor a list), `When` and `LessThan` siblings its
    object lacks, regexes RE2 refuses. Empty when the rules fit the type."""
    problems: list[str] = []
    if not rules.rules:
        return problems
    info = msgspec.inspect.type_info(result_type)  # once: it walks every type the result holds
    for index, rule in enumerate(rules.rules):
        where = f"rule {index} ({rule.path})"
        holder = _holder_type(info, rule.path)
        if holder is None:
            problems.append(f"{where}: the path names no field of {result_type.__name__}")
            continue
        siblings = [rule.when.field] if rule.when is not None else []
        if isinstance(rule, LessThan):
            siblings.append(rule.sibling)
        problems += [
            f"{where}: {name!r} is not a field beside it" for name in siblings if name not in _field_names(holder)
        ]
        if isinstance(rule, Format) and rule.regex is not None:
            try:
                compiled_rule_regex(rule.regex)
            except ValueError as error:
                problems.append(f"{where}: {error}")
    return problems


def _field_names(info: msgspec.inspect.StructType) -> set[str]:
    return {field.encode_name for field in info.fields}


def _holder_type(info: msgspec.inspect.Type, path: str) -> msgspec.inspect.StructType | None:
    """The Struct holding the last field of `path`, or None when the path does not resolve."""
    current = info
    holder: msgspec.inspect.StructType | None = None
    for segment in path.split("."):
        name, each = (segment[:-2], True) if segment.endswith("[]") else (segment, False)
        struct = _struct_of(current)
        if struct is None:
            return None
        field = next((f for f in struct.fields if f.encode_name == name), None)
        if field is None:
            return None
        holder, current = struct, field.type
        if each:
            items = _items_of(current)
            if items is None:
                return None
            current = items
    return holder


def _without_none(info: msgspec.inspect.Type) -> list[msgspec.inspect.Type]:
    if isinstance(info, msgspec.inspect.UnionType):
        return [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
    return [info]


def _struct_of(info: msgspec.inspect.Type) -> msgspec.inspect.StructType | None:
    kinds = _without_none(info)
    return kinds[0] if len(kinds) == 1 and isinstance(kinds[0], msgspec.inspect.StructType) else None


def _items_of(info: msgspec.inspect.Type) -> msgspec.inspect.Type | None:
    kinds = _without_none(info)
    if len(kinds) == 1 and isinstance(kinds[0], msgspec.inspect.ListType | msgspec.inspect.VarTupleType):
        return kinds[0].item_type
    return None
