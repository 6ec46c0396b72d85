"""The pure validator (CC-35): is a node's result for a job type acceptable, and if not, why.

`judge_result` runs every check it can and reports every failure, each as a typed reason (code,
field path, message; ccn_proto.results.Reason):
1. the job type is known (`unknown_job_type`);
2. the result is at most MAX_RESULT_BYTES of JSON (`too_large`: nothing more is read), decodes,
   and is storable: a JSON object, nested at most 32 deep, no control characters, no number
   outside int64, no NaN (`schema`, by ccn_proto.constraints.document_problem);
3. the asserted checksum is the sha256 of the result's canonical JSON (`checksum`): sorted keys,
   no whitespace (ccn_proto.canonical, which the job decider and the node use too);
4. it decodes into the job type's result Struct (`schema`, with msgspec's field path);
5. the job type's business rules (ccn_jobs.result_rules): on the decoded result, defaults filled
   in; on the raw object when it did not decode, so a result broken both ways hears of both.

Nothing raises, whatever the input: bytes that are not JSON, hostile nesting, huge numbers,
wrong types, a checksum that is not a string. Work is bounded: the size cap before any decoding,
at most MAX_VALUES_VISITED values visited by the rules (`too_large` past it) and at most
MAX_REASONS reasons kept (`reasons_truncated` when more were found: checking stops there)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from ccn_jobs.errors import InvalidResult
from ccn_jobs.job_type import JobType
from ccn_jobs.registry import JOB_TYPES
from ccn_jobs.result_rules import (
    Allowed,
    Bounds,
    Forbidden,
    Format,
    LessThan,
    Mandatory,
    ResultRules,
    Rule,
    Size,
    compiled_rule_regex,
    format_problem,
)
from ccn_proto.canonical import canonical_result_bytes
from ccn_proto.constraints import MAX_DOCUMENT_DEPTH, document_problem
from ccn_proto.results import (
    MAX_FIELD_PATH_CHARS,
    MAX_REASON_MESSAGE_CHARS,
    MAX_REASONS,
    Reason,
    ReasonCode,
)

# A result travels in one node frame (1 MiB, ccn_core.settings.max_frame_bytes): never more.
MAX_RESULT_BYTES: Final = 1024 * 1024
# the rules' walk over one result: a valid result of any type needs far fewer (tens of thousands)
MAX_VALUES_VISITED: Final = 200_000
_SHOWN_CHARS = 60
CHECKSUM_MISMATCH: Final = (
    "the asserted checksum is not the sha256 of the result's canonical JSON (sorted keys, no spaces)"
)


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """`checksum`: the result's own (None when it could not be computed); `reasons` empty if and
    only if `accepted`. The versions are "" for an unknown job type."""

    job_type: str
    accepted: bool
    checksum: str | None
    reasons: tuple[Reason, ...] = ()
    reasons_truncated: bool = False
    job_type_version: str = ""
    rules_version: str = ""


# the validator as the validation service calls it (a test may pass its own)
Validator = Callable[[str, bytes | Mapping[str, Any], str], Verdict]


def judge_result(
    job_type_name: str,
    result: bytes | Mapping[str, Any],
    asserted_checksum: str,
    *,
    job_types: Mapping[str, JobType[Any, Any]] = JOB_TYPES,
) -> Verdict:
    """The verdict on `result` (JSON bytes, or the object a JSON event carries) as a result of
    `job_type_name`, whose node asserted `asserted_checksum`. Never raises."""
    reasons = _Reasons()
    # exactly str: a subclass's own __hash__ or __eq__ is code the caller did not mean to run
    is_name = type(job_type_name) is str
    job = job_types.get(job_type_name) if is_name else None
    name = _line(job_type_name, 128) if is_name else f"<{type(job_type_name).__name__}>"
    if job is None:
        reasons.add("unknown_job_type", None, f"no job type is named {name!r}")
    read = _read(result, reasons)
    checksum = None
    if read is not None:
        canonical, document = read
        checksum = hashlib.sha256(canonical).hexdigest()
        if type(asserted_checksum) is not str or asserted_checksum != checksum:
            reasons.add("checksum", None, CHECKSUM_MISMATCH)
        if job is not None and isinstance(document, dict):
            _judge_against(job, canonical, document, reasons)
    return Verdict(
        job_type=name,
        accepted=not reasons.items,
        checksum=checksum,
        reasons=tuple(reasons.items),
        reasons_truncated=reasons.truncated,
        job_type_version=job.version if job is not None else "",
        rules_version=job.result_rules.version if job is not None else "",
    )


def _read(result: object, reasons: _Reasons) -> tuple[bytes, Any] | None:
    """(canonical bytes, the plain document) of a result, or None when it cannot be read (the
    reason added). Everything read is also checked for storability (document_problem)."""
    if isinstance(result, bytes | bytearray | memoryview):
        if len(result) > MAX_RESULT_BYTES:
            reasons.add("too_large", None, f"the result is {len(result)} bytes; at most {MAX_RESULT_BYTES} are read")
            return None
        try:
            document = msgspec.json.decode(result)
            canonical = canonical_result_bytes(document)
        except RecursionError:
            reasons.add("schema", None, "the result nests too deep to decode")
            return None
        except (msgspec.DecodeError, msgspec.EncodeError, ValueError, TypeError, OverflowError) as error:
            reasons.add("schema", None, f"the result is not JSON: {error}")
            return None
    elif isinstance(result, Mapping):
        try:
            # a Mapping from a decoded event is plain JSON; anything else is refused, not trusted
            canonical = canonical_result_bytes(result)
            # a dict as a JSON event decodes to is read as it is (NaN and all, to be reported);
            # any other Mapping as the JSON it encodes to
            document = result if type(result) is dict else msgspec.json.decode(canonical)
        except RecursionError:
            reasons.add("schema", None, "the result nests too deep to encode")
            return None
        except Exception as error:  # a hostile Mapping's own methods may raise anything
            reasons.add("schema", None, f"the result cannot be encoded as JSON: {type(error).__name__}")
            return None
        if len(canonical) > MAX_RESULT_BYTES:
            reasons.add(
                "too_large", None, f"the result is {len(canonical)} bytes as JSON; at most {MAX_RESULT_BYTES} are read"
            )
            return None
    else:
        reasons.add("schema", None, f"the result is a {type(result).__name__}, not a JSON object")
        return None
    try:
        problem = None if _plainly_storable(document, canonical) else document_problem(document)
    except Exception as error:  # as above: a hostile Mapping's own methods
        reasons.add("schema", None, f"the result cannot be read: {type(error).__name__}")
        return None
    if problem is not None:
        reasons.add("schema", problem.path or None, f"the value {problem.reason}")
    if type(document) is not dict:
        reasons.add("schema", None, "the result is not a JSON object")
    return canonical, document


# In canonical JSON (msgspec's), every character ccn_proto.constraints forbids in text shows: C0
# controls as escapes (\u00XX, \b, \f; tab, LF and CR are allowed), DEL, C1 (U+0080-U+009F)
# and U+2028/U+2029 as their UTF-8 bytes; lone surrogates cannot be encoded at all. So can any
# integer outside int64 (19 digits or more). A match may be innocent (a backslash before a
# "b" in text, a long digit string): it only sends the document to the full walk.
_MAYBE_UNSTORABLE: Final = re.compile(rb"\\u00|\\[bf]|\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|[0-9]{19}")
_PLAIN: Final = (str, int, bool, type(None))


def _plainly_storable(document: Any, canonical: bytes) -> bool:
    """True when `document` surely passes document_problem, proven cheaply: no suspicious byte
    in its canonical JSON, and a walk (no paths built) finds only plain JSON types, finite
    floats and no nesting past MAX_DOCUMENT_DEPTH. False sends it to document_problem, which
    finds the problem and its path (or finds none)."""
    if type(document) is not dict or _MAYBE_UNSTORABLE.search(canonical) is not None:
        return False
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        item, depth = pending.pop()
        if depth >= MAX_DOCUMENT_DEPTH:
            return False
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is dict or kind is list or kind is tuple:
                pending.append((child, depth + 1))
            elif kind is float:
                if not math.isfinite(child):
                    return False
            elif kind not in _PLAIN:
                return False
    return True


def _judge_against(job: JobType[Any, Any], canonical: bytes, document: dict[str, Any], reasons: _Reasons) -> None:
    try:
        decoded = msgspec.json.decode(canonical, type=job.result_type)
    except msgspec.DecodeError as error:
        problem = InvalidResult.from_msgspec(job.name, error)
        reasons.add("schema", problem.field, f"not a valid {job.name} result: {problem.reason}")
        checked: Any = document
    except Exception as error:  # a result type's __post_init__ is code: whatever it raises is a refusal
        reasons.add("schema", None, f"not a valid {job.name} result: {type(error).__name__}")
        checked = document
    else:
        checked = msgspec.to_builtins(decoded)  # a Struct's tuples stay tuples: the rules read both
    try:
        _check_rules(job.result_rules, checked, reasons)
    except _OutOfBudget:
        reasons.add("too_large", None, f"the result is too big to check: over {MAX_VALUES_VISITED} values")


# ---- the rules ------------------------------------------------------------------------------


class _Reasons:
    """The reasons found so far: at most MAX_REASONS, then `truncated` and checking stops."""

    def __init__(self) -> None:
        self.items: list[Reason] = []
        self.truncated = False

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_REASONS

    def add(self, code: ReasonCode, field: str | None, message: str) -> None:
        if self.full:
            self.truncated = True
            return
        where = _line(field, MAX_FIELD_PATH_CHARS) if field else None
        self.items.append(Reason(code=code, field=where or None, message=_line(message, MAX_REASON_MESSAGE_CHARS)))


class _OutOfBudget(Exception):
    pass


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def spend(self, count: int = 1) -> None:
        self.left -= count
        if self.left < 0:
            raise _OutOfBudget


_MISSING: Final[Any] = object()


class _Compiled(msgspec.Struct, frozen=True):
    """A job type's rules grouped by the objects they read: each group's objects are found once
    per result, and every rule of the group is checked on each (a rule's own walk per result
    cost twice as much)."""

    groups: tuple[tuple[tuple[tuple[str, bool], ...], tuple[tuple[Rule, str, bool], ...]], ...]


# compiled rules by id of their ResultRules, which the entry keeps alive (a frozen Struct's hash
# walks all its rules on every call, too dear to key a cache by)
_COMPILED: dict[int, tuple[ResultRules, _Compiled]] = {}


def _compiled(rules: ResultRules) -> _Compiled:
    entry = _COMPILED.get(id(rules))
    if entry is not None and entry[0] is rules:
        return entry[1]
    groups: dict[tuple[tuple[str, bool], ...], list[tuple[Rule, str, bool]]] = {}
    for rule in rules.rules:
        *parent, (leaf, each) = _segments(rule.path)
        groups.setdefault(tuple(parent), []).append((rule, leaf, each))
    compiled = _Compiled(groups=tuple((parent, tuple(members)) for parent, members in groups.items()))
    _COMPILED[id(rules)] = (rules, compiled)
    return compiled


def _check_rules(rules: ResultRules, document: dict[str, Any], reasons: _Reasons) -> None:
    """Every rule on every value its path reaches, in rule-group order, then document order."""
    budget = _Budget(MAX_VALUES_VISITED)
    for parent, members in _compiled(rules).groups:
        for prefix, holder in _holders(document, parent, budget):
            for rule, leaf, each in members:
                if rule.when is not None and not _one_of(holder.get(rule.when.field, _MISSING), rule.when.is_in):
                    continue
                value = holder.get(leaf, _MISSING)
                if not each:
                    budget.spend()
                    _check(rule, holder, value, prefix, leaf, reasons)
                elif isinstance(value, list | tuple):
                    budget.spend(len(value))
                    for position, item in enumerate(value):
                        _check(rule, holder, item, prefix, f"{leaf}[{position}]", reasons)
                if reasons.truncated:
                    return  # one reason more than are kept was found: checking further changes nothing


def _check(rule: Rule, holder: dict[str, Any], value: Any, prefix: str, leaf: str, reasons: _Reasons) -> None:
    problem = _problem(rule, holder, value)
    if problem is not None:
        code, message = problem
        reasons.add(code, f"{prefix}.{leaf}" if prefix else leaf, f"{message}; {rule.note}" if rule.note else message)


def _segments(path: str) -> tuple[tuple[str, bool], ...]:
    return tuple((part[:-2], True) if part.endswith("[]") else (part, False) for part in path.split("."))


def _holders(
    document: dict[str, Any], parent: tuple[tuple[str, bool], ...], budget: _Budget
) -> list[tuple[str, dict[str, Any]]]:
    """(path, object) of every object the parent path reaches, in document order. A path through
    a missing or null object, or a value of another type, reaches nothing: a rule checks only
    what is there (require an object with a rule of its own; the schema reports a wrong type)."""
    current: list[tuple[str, dict[str, Any]]] = [("", document)]
    for name, each in parent:
        reached: list[tuple[str, dict[str, Any]]] = []
        for prefix, obj in current:
            value = obj.get(name)
            path = f"{prefix}.{name}" if prefix else name
            budget.spend()
            if not each:
                if isinstance(value, dict):
                    reached.append((path, value))
            elif isinstance(value, list | tuple):
                budget.spend(len(value))
                reached += [(f"{path}[{i}]", item) for i, item in enumerate(value) if isinstance(item, dict)]
        current = reached
    return current


def _problem(rule: Rule, holder: dict[str, Any], value: Any) -> tuple[ReasonCode, str] | None:
    if isinstance(rule, Mandatory):
        if value is _MISSING or value is None:
            return "mandatory", "is missing"
        if (isinstance(value, str) and not value.strip()) or (isinstance(value, list | tuple | dict) and not value):
            return "mandatory", "is empty"
        return None
    if value is _MISSING or value is None:
        return None  # absent: Mandatory's concern, not the other rules'
    match rule:
        case Format(format=name, regex=regex) if isinstance(value, str):
            if name is not None:
                problem = format_problem(name, value)
                return ("format", f"{_shown(value)} {problem}") if problem else None
            assert regex is not None  # Format has one of the two
            if compiled_rule_regex(regex).fullmatch(value) is None:
                return "format", f"{_shown(value)} does not match {regex!r}"
        case Forbidden(values=values) if _one_of(value, values):
            return "forbidden", f"{_shown(value)} is a forbidden value"
        case Allowed(values=values) if not _one_of(value, values):
            return "forbidden", f"{_shown(value)} is not one of {', '.join(_shown(v) for v in values)}"
        case Bounds(ge=ge, le=le) if _is_number(value):
            if ge is not None and not value >= ge:
                return "bounds", f"{_shown(value)} is below the minimum {ge:g}"
            if le is not None and not value <= le:
                return "bounds", f"{_shown(value)} is above the maximum {le:g}"
        case Size(min_length=low, max_length=high) if isinstance(value, str | list | tuple):
            unit = "characters" if isinstance(value, str) else "items"
            if low is not None and len(value) < low:
                return "bounds", f"has {len(value)} {unit}; at least {low}"
            if high is not None and len(value) > high:
                return "bounds", f"has {len(value)} {unit}; at most {high}"
        case LessThan(sibling=sibling, or_equal=or_equal) if _is_number(value):
            other = holder.get(sibling, _MISSING)
            if _is_number(other) and not (value <= other if or_equal else value < other):
                relation = "at most" if or_equal else "below"
                return "bounds", f"{_shown(value)} is not {relation} {sibling} ({_shown(other)})"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _one_of(value: Any, values: tuple[Any, ...]) -> bool:
    """`value` equals one of `values`, a bool only a bool (True is no 1 here)."""
    if value is _MISSING or isinstance(value, list | tuple | dict) or value is None:
        return False
    is_bool = isinstance(value, bool)
    return any(isinstance(candidate, bool) == is_bool and candidate == value for candidate in values)


def _shown(value: Any) -> str:
    """A value as a message may quote it: short, one line, whatever it holds."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**18 else f"a {value.bit_length()}-bit integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        quoted = repr(value[:_SHOWN_CHARS])  # escapes what is not printable, so it may grow
        return f"{quoted[:_SHOWN_CHARS]}…" if len(quoted) > _SHOWN_CHARS else quoted
    return f"a {type(value).__name__}"


def _line(text: str, limit: int) -> str:
    """`text` cut to `limit` characters on one line: what is not printable is escaped."""
    text = text[: limit * 2]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text[:limit]
