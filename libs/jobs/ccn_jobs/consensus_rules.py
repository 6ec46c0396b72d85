"""How replicas of a job type are compared, and how many it takes to agree (CC-33).

A job type that asks for consensus declares a `ConsensusSpec`: how many replicas to issue at
first (`replicas`), how many agreeing results finalise it (`quorum`, and `untrusted_extra` more
when none of the agreeing nodes is trusted), how many jobs at most before it goes to a reviewer
(`max_replicas`), whether a node with a long run of agreed results may have its result
finalised alone (`adaptive`, with `spot_check_rate` of such results replicated anyway), and a
`Comparator`.

A comparator is data: rules for named field paths, every other field compared exactly (as
canonical bytes: ccn_proto.canonical, what a result's checksum hashes).
A path is dot-separated keys into the decoded result (a dict of builtins; a tuple counts as a
list, as msgspec.to_builtins leaves one where the JSON encoding writes a list); a key ending in
`[]` names a list whose elements the rest of the path walks, element by element
(`contributions[].points`). The rules:
- `NumericTolerance`: numbers within `abs_tol` or `rel_tol` (math.isclose); NaN agrees only with
  NaN (both encode as null), a number never with a non-number;
- `FuzzyText`: strings whose rapidfuzz ratio (0..1) after NFC normalisation and whitespace
  collapsing reaches `threshold`; texts over MAX_FUZZY_CHARS agree only when equal after
  normalisation, so a long text cannot make a comparison cost seconds;
- `SetOverlap`: a list taken as a set of items keyed by `key_fields` (each item's whole canonical
  bytes for scalars or when no key is named), agreeing when their Jaccard index reaches
  `threshold`; two empty sets agree; a list over MAX_SET_ITEMS agrees only when equal;
- `Ignored`: not compared (though a field present in one result must be present in the other).
A path absent from both results agrees; absent from one, it does not. Each rule is a pure,
symmetric function of two values; `results_agree` applies them all and compares what is left
exactly. Only exact equality is transitive: the consensus decider clusters results by a rule
that depends on their arrival order alone (ccn_validation.consensus).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, Final

import msgspec

from ccn_proto.canonical import canonical_result_bytes

MAX_REPLICAS_CAP: Final = 16  # no spec may ask for more results of one job than this
MAX_FUZZY_CHARS: Final = 20_000  # rapidfuzz's ratio costs about len(a) x len(b) / 64 steps
MAX_SET_ITEMS: Final = 10_000
MAX_PATH_VALUES: Final = 100_000  # values one path may reach in one result
MAX_RULES: Final = 32

# a key name, optionally `[]`: the path walks each element of the list under it
FieldPath = Annotated[
    str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_]+(\[\])?(\.[A-Za-z0-9_]+(\[\])?)*$")
]
Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Tolerance = Annotated[float, msgspec.Meta(ge=0.0)]


class NumericTolerance(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="numeric"):
    path: FieldPath
    abs_tol: Tolerance = 0.0
    rel_tol: Tolerance = 0.0


class FuzzyText(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="fuzzy_text"):
    path: FieldPath
    threshold: Fraction = 0.9


class Ignored(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="ignored"):
    """A field replicas may legitimately differ on (a server's validators between two fetches)."""

    path: FieldPath


class SetOverlap(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="set_overlap"):
    path: FieldPath
    key_fields: tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], ...] = ()
    threshold: Fraction = 0.8


FieldRule = NumericTolerance | FuzzyText | SetOverlap | Ignored


class Comparator(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """No rules: the results agree only when their canonical bytes are equal."""

    rules: Annotated[tuple[FieldRule, ...], msgspec.Meta(max_length=MAX_RULES)] = ()

    def __post_init__(self) -> None:
        # `a[].b` and `a.b` walk the same keys: rules overlap when one's keys begin the other's
        keys = [tuple(part.removesuffix("[]") for part in rule.path.split(".")) for rule in self.rules]
        for index, path in enumerate(keys):
            for other in keys[index + 1 :]:
                shorter = min(len(path), len(other))
                if path[:shorter] == other[:shorter]:
                    raise ValueError(f"rules on {'.'.join(path)} and {'.'.join(other)} overlap")


EXACT: Final = Comparator()


class ConsensusSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`replicas` results are sought at first (the first job's included), `quorum` of them must
    agree, and at `max_replicas` jobs (results, replicas out and replicas lost) without a quorum
    the job goes to review. A class of
    agreeing results from nodes none of which adaptive replication trusts needs
    `untrusted_extra` more (ccn_validation.consensus says why)."""

    replicas: Annotated[int, msgspec.Meta(ge=1, le=MAX_REPLICAS_CAP)] = 2
    quorum: Annotated[int, msgspec.Meta(ge=1, le=MAX_REPLICAS_CAP)] = 2
    max_replicas: Annotated[int, msgspec.Meta(ge=1, le=MAX_REPLICAS_CAP)] = 5
    untrusted_extra: Annotated[int, msgspec.Meta(ge=0, le=MAX_REPLICAS_CAP)] = 1
    comparator: Comparator = EXACT
    adaptive: bool = True
    spot_check_rate: Fraction = 0.1

    def __post_init__(self) -> None:
        if not self.quorum <= self.replicas <= self.max_replicas:
            raise ValueError(
                f"need quorum <= replicas <= max_replicas; got {self.quorum}, {self.replicas}, {self.max_replicas}"
            )
        if self.quorum + self.untrusted_extra > self.max_replicas:
            raise ValueError("untrusted nodes could never reach quorum + untrusted_extra within max_replicas")


# -- comparing ----------------------------------------------------------------------------------


class _Missing:
    """A path that does not reach a value in one result (a key absent)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def results_agree(comparator: Comparator, a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two decoded results agree: each rule's fields by the rule, the rest exactly."""
    if not comparator.rules:
        return canonical_result_bytes(a) == canonical_result_bytes(b)
    rest_a: Any = a
    rest_b: Any = b
    for rule in comparator.rules:
        segments = _segments(rule.path)
        values_a = _values_at(a, segments)
        values_b = _values_at(b, segments)
        if values_a is None or values_b is None or len(values_a) != len(values_b):
            return False
        compare = _RULE_FUNCTIONS[type(rule)]
        for x, y in zip(values_a, values_b, strict=True):
            if x is MISSING or y is MISSING:
                if x is not y:
                    return False
            elif not compare(rule, x, y):
                return False
        rest_a = _without(rest_a, segments)
        rest_b = _without(rest_b, segments)
    return canonical_result_bytes(rest_a) == canonical_result_bytes(rest_b)


def _segments(path: str) -> tuple[tuple[str, bool], ...]:
    return tuple((part.removesuffix("[]"), part.endswith("[]")) for part in path.split("."))


def _values_at(document: Any, segments: tuple[tuple[str, bool], ...]) -> list[Any] | None:
    """Every value the path reaches, in document order (MISSING where a key is absent); None
    when the document's shape is not the path's (a list where a dict should be) or too many."""
    found: list[Any] = [document]
    for key, each in segments:
        reached: list[Any] = []
        for value in found:
            if value is MISSING:
                reached.append(MISSING)
                continue
            if not isinstance(value, dict):
                return None
            inner = value.get(key, MISSING)
            if each and inner is not MISSING:
                if not isinstance(inner, list | tuple):
                    return None
                reached.extend(inner)
            else:
                reached.append(inner)
            if len(reached) > MAX_PATH_VALUES:
                return None
        found = reached
    return found


def _without(document: Any, segments: tuple[tuple[str, bool], ...]) -> Any:
    """The document with the path's leaves taken out (lists keep their length, so a list of a
    different length still tells two results apart)."""
    if not isinstance(document, dict):
        return document
    (key, each), rest = segments[0], segments[1:]
    if key not in document:
        return document
    if not rest:
        return {k: v for k, v in document.items() if k != key}
    inner = document[key]
    if each and isinstance(inner, list | tuple):
        replaced: Any = [_without(item, rest) for item in inner]
    else:
        replaced = _without(inner, rest)
    return {**document, key: replaced}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numbers_agree(rule: NumericTolerance, a: Any, b: Any) -> bool:
    if not (_is_number(a) and _is_number(b)):
        return canonical_result_bytes(a) == canonical_result_bytes(b)
    if (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    try:
        return math.isclose(a, b, rel_tol=rule.rel_tol, abs_tol=rule.abs_tol)
    except OverflowError:  # an int past float's range
        return bool(a == b)


_SPACES = re.compile(r"\s+")


def normalised_text(text: str) -> str:
    """One spelling of a text: NFC (a composed and a decomposed é are one), runs of white space
    as one space, none at the ends."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def texts_agree(rule: FuzzyText, a: Any, b: Any) -> bool:
    if not (isinstance(a, str) and isinstance(b, str)):
        return canonical_result_bytes(a) == canonical_result_bytes(b)
    a, b = normalised_text(a), normalised_text(b)
    if a == b:
        return True
    if max(len(a), len(b)) > MAX_FUZZY_CHARS:
        return False
    from rapidfuzz import fuzz

    return bool(fuzz.ratio(a, b, score_cutoff=rule.threshold * 100) >= rule.threshold * 100)


def sets_agree(rule: SetOverlap, a: Any, b: Any) -> bool:
    if not (isinstance(a, list | tuple) and isinstance(b, list | tuple)):
        return canonical_result_bytes(a) == canonical_result_bytes(b)
    if max(len(a), len(b)) > MAX_SET_ITEMS:
        return canonical_result_bytes(a) == canonical_result_bytes(b)
    keys_a = {_item_key(rule, item) for item in a}
    keys_b = {_item_key(rule, item) for item in b}
    union = keys_a | keys_b
    if not union:
        return True
    return len(keys_a & keys_b) / len(union) >= rule.threshold


def _item_key(rule: SetOverlap, item: Any) -> bytes:
    if rule.key_fields and isinstance(item, dict):
        return canonical_result_bytes([item.get(name) for name in rule.key_fields])
    return canonical_result_bytes(item)


# Any: each function takes its own rule type; results_agree looks it up by the rule's type
_RULE_FUNCTIONS: Final[dict[type, Callable[[Any, Any, Any], bool]]] = {
    NumericTolerance: numbers_agree,
    FuzzyText: texts_agree,
    SetOverlap: sets_agree,
    Ignored: lambda _rule, _a, _b: True,
}
