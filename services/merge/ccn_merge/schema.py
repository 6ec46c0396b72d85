"""The canonical record types, Funder and Opportunity, as data: each field with the merge
metadata that decides how candidates from many results become one value.

A field's metadata:
  kind        what it may hold, how a raw value is checked and cleaned (`clean_value`), and how
              two values are compared (`comparison_key`): formatting alone (whitespace, case
              where case means nothing, a URL's spelling, thousands separators; for an
              organisation's name also "&" for "and", a leading "The" and the legal form, as
              ccn_jobs.org_names reads names) is no difference;
  rule        how the winning value is chosen from the candidates (ccn_merge.merge_rules):
              overwrite (the newest), append (the set union, bounded to `max_items`),
              prefer_source (the first source in `source_priority`), min, max, or
              confidence_weighted (the value with the most confidence behind it);
  critical    a change of the field's value (not its first value) waits for a reviewer.

`DatasetSchema.version` names the metadata; a published version records it, and replaying the
same events under other metadata decides other winners, deterministically. Changing any
metadata must change the version (`fingerprint` is a hash of the whole metadata, for a test).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import re
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ccn_core.canonical_url import canonical_url
from ccn_core.errors import BadInput
from ccn_jobs.org_names import OrgName, normalise
from ccn_proto.constraints import line_problem, text_problem
from ccn_proto.datasets import FieldValue, MergeRuleName, RecordKind

FieldKind = Literal[
    "org_name", "name", "text", "long_text", "text_list", "ein", "url", "country", "currency", "amount", "date",
    "record_ref",
]  # fmt: skip

MAX_TEXT_CHARS = 1000
MAX_LONG_TEXT_CHARS = 20_000
MAX_LIST_ITEM_CHARS = 300
MAX_AMOUNT = 10**15
_EIN = re.compile(r"^([0-9]{2})-?([0-9]{7})$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RECORD_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_AMOUNT_TEXT = re.compile(r"^[0-9]{1,3}(?:[, ][0-9]{3})*$|^[0-9]{1,16}$")
_SPACES = re.compile(r"\s+")


class FieldSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: FieldKind
    rule: MergeRuleName
    critical: bool = False
    source_priority: tuple[str, ...] = ()  # for prefer_source: the best source first
    max_items: int = 50  # for lists: the bound of the set union
    description: str = ""


class RecordSchema(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    kind: RecordKind
    fields: tuple[FieldSpec, ...]

    @functools.cached_property
    def by_name(self) -> dict[str, FieldSpec]:
        return {spec.name: spec for spec in self.fields}

    def field(self, name: str) -> FieldSpec | None:
        return self.by_name.get(name)


class DatasetSchema(msgspec.Struct, frozen=True, kw_only=True):
    """`review_below`: a candidate less confident than this that would change a value waits for review."""

    version: str
    records: tuple[RecordSchema, ...]
    review_below: float = 0.5

    def record(self, kind: str) -> RecordSchema:
        for schema in self.records:
            if schema.kind == kind:
                return schema
        raise BadInput(f"no record kind {kind!r} in schema {self.version}", field="kind")

    def field_of(self, kind: str, name: str) -> FieldSpec | None:
        """The field's metadata, or None when the schema knows no such kind or field."""
        return next((schema.field(name) for schema in self.records if schema.kind == kind), None)

    def fingerprint(self) -> str:
        return hashlib.sha256(msgspec.json.encode(self, order="sorted")).hexdigest()


# Sources in the order their facts are trusted, for fields whose truth has an authority:
# registries (the IRS, charity regulators) before grant portals before a funder's own site
# before what a crawl of a third party found.
REGISTRY_FIRST = ("irs-bmf", "charity-commission", "grants-gov", "foundation-site", "crawl")

FUNDER = RecordSchema(
    kind="funder",
    fields=(
        FieldSpec(
            name="name", kind="org_name", rule="confidence_weighted", critical=True, description="legal or common name"
        ),
        FieldSpec(name="aliases", kind="text_list", rule="append", max_items=20, description="other names seen"),
        FieldSpec(name="ein", kind="ein", rule="prefer_source", critical=True, source_priority=REGISTRY_FIRST),
        FieldSpec(name="website", kind="url", rule="overwrite"),
        FieldSpec(name="country", kind="country", rule="confidence_weighted", description="ISO 3166-1 alpha-2"),
        FieldSpec(name="region", kind="name", rule="confidence_weighted", description="state or nation"),
        FieldSpec(name="city", kind="name", rule="overwrite"),
        FieldSpec(name="categories", kind="text_list", rule="append", max_items=30),
        FieldSpec(name="description", kind="long_text", rule="overwrite"),
    ),
)
OPPORTUNITY = RecordSchema(
    kind="opportunity",
    fields=(
        FieldSpec(name="title", kind="text", rule="confidence_weighted"),
        FieldSpec(
            name="funder_id", kind="record_ref", rule="prefer_source", critical=True, source_priority=REGISTRY_FIRST
        ),
        FieldSpec(name="funder_name", kind="org_name", rule="confidence_weighted"),
        FieldSpec(name="url", kind="url", rule="overwrite"),
        FieldSpec(name="description", kind="long_text", rule="overwrite"),
        FieldSpec(name="amount_min", kind="amount", rule="min", description="whole units of `currency`"),
        FieldSpec(name="amount_max", kind="amount", rule="max", critical=True, description="whole units of `currency`"),
        FieldSpec(name="currency", kind="currency", rule="confidence_weighted"),
        FieldSpec(name="deadline", kind="date", rule="overwrite", critical=True),
        FieldSpec(name="eligibility", kind="text_list", rule="append", max_items=20),
        FieldSpec(name="categories", kind="text_list", rule="append", max_items=30),
        FieldSpec(name="country", kind="country", rule="confidence_weighted"),
        FieldSpec(name="region", kind="name", rule="confidence_weighted"),
        FieldSpec(name="city", kind="name", rule="overwrite"),
    ),
)  # fmt: skip
DEFAULT_SCHEMA = DatasetSchema(version="1", records=(FUNDER, OPPORTUNITY))


def _bad(spec: FieldSpec, why: str) -> BadInput:
    return BadInput(f"field {spec.name!r} ({spec.kind}) {why}", field=spec.name)


def _line(spec: FieldSpec, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise _bad(spec, f"must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise _bad(spec, f"is longer than {limit} characters")
    problem = line_problem(value)
    if problem is not None:
        raise _bad(spec, problem)
    cleaned = _SPACES.sub(" ", value).strip()
    if not cleaned:
        raise _bad(spec, "is empty")
    return cleaned


def _long_text(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(spec, f"must be text, not {type(value).__name__}")
    if len(value) > MAX_LONG_TEXT_CHARS:
        raise _bad(spec, f"is longer than {MAX_LONG_TEXT_CHARS} characters")
    problem = text_problem(value)
    if problem is not None:
        raise _bad(spec, problem)
    cleaned = value.replace("\r\n", "\n").strip()
    if not cleaned:
        raise _bad(spec, "is empty")
    return cleaned


def _text_list(spec: FieldSpec, value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        value = [value]
    if len(value) > spec.max_items:
        raise _bad(spec, f"holds more than {spec.max_items} items")
    items: dict[str, str] = {}
    for item in value:
        cleaned = _line(spec, item, MAX_LIST_ITEM_CHARS)
        items.setdefault(_folded(cleaned), cleaned)
    return [items[key] for key in sorted(items)]


def _amount(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool):
        raise _bad(spec, "must be a whole number, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 32 or not _AMOUNT_TEXT.match(text):
            raise _bad(spec, "must be a whole number (digits, optionally grouped by commas)")
        value = int(text.replace(",", "").replace(" ", ""))
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _bad(spec, "must be a finite whole number")
        value = int(value)
    if not isinstance(value, int):
        raise _bad(spec, f"must be a whole number, not {type(value).__name__}")
    if not 0 <= value <= MAX_AMOUNT:
        raise _bad(spec, f"must be between 0 and {MAX_AMOUNT}")
    return value


def _matching(spec: FieldSpec, value: Any, pattern: re.Pattern[str], what: str) -> str:
    text = _line(spec, value, 64)
    if not pattern.match(text):
        raise _bad(spec, f"must be {what}")
    return text


def _ein(spec: FieldSpec, value: Any) -> str:
    found = _EIN.match(_line(spec, value, 16))
    if found is None:
        raise _bad(spec, "must be a US EIN, 12-3456789")
    return f"{found.group(1)}-{found.group(2)}"


def _url(spec: FieldSpec, value: Any) -> str:
    text = _line(spec, value, 2048)
    try:
        canonical_url(text)
    except BadInput as exc:
        raise _bad(spec, exc.message) from None
    return text


def _date(spec: FieldSpec, value: Any) -> str:
    text = _matching(spec, value, _DATE, "an ISO date, YYYY-MM-DD")
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise _bad(spec, "is not a calendar date") from None
    return text


_CLEANERS: dict[FieldKind, Callable[[FieldSpec, Any], FieldValue]] = {
    "org_name": lambda spec, value: _line(spec, value, MAX_TEXT_CHARS),
    "name": lambda spec, value: _line(spec, value, MAX_TEXT_CHARS),
    "text": lambda spec, value: _line(spec, value, MAX_TEXT_CHARS),
    "long_text": _long_text,
    "text_list": _text_list,
    "ein": _ein,
    "url": _url,
    "country": lambda spec, value: _matching(spec, value, _COUNTRY, "an ISO 3166-1 alpha-2 code").upper(),
    "currency": lambda spec, value: _matching(spec, value, _CURRENCY, "an ISO 4217 code").upper(),
    "amount": _amount,
    "date": _date,
    "record_ref": lambda spec, value: _matching(spec, value, _RECORD_REF, "a record id"),
}


def clean_value(spec: FieldSpec, value: Any) -> FieldValue:
    """The value checked against the field's kind and cleaned (surrounding and repeated spaces,
    EIN and code spellings, amounts as whole numbers); BadInput naming the field when it is not."""
    return _CLEANERS[spec.kind](spec, value)


def _folded(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def url_key(text: str) -> str:
    canonical = canonical_url(text)
    # http and https, and a trailing slash, name one page for the comparison of two records
    return canonical.split("://", 1)[1].removesuffix("/")


def comparison_key(spec: FieldSpec, value: FieldValue) -> str:
    """What two values of the field are compared by: equal keys differ in formatting alone."""
    if isinstance(value, list):
        return "\x1f".join(sorted(_folded(item) for item in value))
    if isinstance(value, int):
        return str(value)
    return _text_key(spec.kind, value)


@functools.lru_cache(maxsize=1 << 16)
def _text_key(kind: FieldKind, value: str) -> str:
    # cached: a value is compared when it is proposed and again when it is folded, and names
    # and URLs recur across results; the key is a pure function of (kind, value)
    match kind:
        case "org_name":
            # "The Bill & Melinda Gates Foundation, Inc." is "BILL AND MELINDA GATES FOUNDATION":
            # the legal form, a leading "The", "&", accents and case say nothing of which body it is
            return org_name(value).full or _folded(value)
        case "name" | "text" | "text_list" | "country" | "currency" | "ein":
            return _folded(value)
        case "long_text":
            return _SPACES.sub(" ", value).strip()
        case "url":
            try:
                return url_key(value)
            except BadInput:
                return value
        case _:
            return value


@functools.lru_cache(maxsize=1 << 16)
def org_name(name: str) -> OrgName:
    """ccn_jobs.org_names.normalise, cached: names are compared on merge and again on stitching."""
    return normalise(name)


def same_value(spec: FieldSpec, a: FieldValue | None, b: FieldValue | None) -> bool:
    if a is None or b is None:
        return a is b
    return comparison_key(spec, a) == comparison_key(spec, b)
