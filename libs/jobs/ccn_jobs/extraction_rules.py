"""The extraction rules engine (CC-55): named fields found in an HTML page by CSS selectors or
XPath, read as an attribute or as text, refined by a regular expression and converted to a type.

A field lists its rules in order; the first rule that yields a value wins (the later ones are
fallbacks for pages laid out another way). A field may be `many` (every match, not only the
first), a `table` (the rows of the matched <table>), or records (`fields`: each match is one
record, its sub-fields found within it; one record unless `many`). Nesting stops there, at two
levels, so no schema or walk recurses.

Rules are checked when the payload is decoded, so the scheduler, the edge and the CLI refuse a
job whose rules cannot run, naming the rule (`payload.fields[2].rules[0]`) and why:
- a CSS selector must compile (cssselect, to XPath 1.0);
- an XPath must parse (lxml) and stay inside the page: only XPath 1.0's core functions, no
  prefixed (extension) functions such as EXSLT's, no `document()`, no variables; and its cost
  stays near one walk of the page: predicates nested at most MAX_PREDICATE_DEPTH deep, no
  absolute path inside a predicate (`//p[count(//a) > 1]` walks the page once per paragraph),
  and no step on a sibling, following or preceding axis outside a predicate unless it picks a
  node by position first (`following-sibling::dd[1]`: libxml2 merges the unpositioned step's
  node sets at quadratic cost or worse, seconds for a list of 2,000 items);
- a regex must compile under RE2 (google-re2), whose matching is linear in its input: no
  backreferences or lookaround, so no catastrophic backtracking; it sees at most
  MAX_REGEX_INPUT_CHARS characters of a value, in at most REGEX_MAX_MEM bytes of automaton;
- every list and string is bounded.
Checking compiles, so the process that decodes a crawl payload (the scheduler, the edge, the
CLI) loads lxml, cssselect and RE2 the first time it meets one: the price of refusing bad rules
before a job exists rather than on every node that takes it.

An XPath's cost is not fully bounded by these checks: a count() over a sibling axis (CSS
`:nth-child`, `:last-child`) is quadratic in the number of children of one element, so a rules
run also has a time limit (the handler's Deadline, checked before each rule; running out fails
the job), as every job has on a node. CSS `a + b` is translated so that it costs one step per
`a` (cssselect's own translation walks every following sibling), and `a ~ b` is refused.

Running is bounded too: at most MAX_MATCHES matches per rule, MAX_VALUE_CHARS per value, and
MAX_OUTPUT_BYTES of values' JSON in all (past it, values are dropped and `truncated` is set), so a
result fits in one command whatever the page. The HTML is parsed by lxml without the network,
comments or processing instructions, after control characters are removed.

Conversions: `text` (whitespace collapsed), `int` and `decimal` (the number in the text, read by
price-parser as extract_entities reads amounts; a decimal is a string, "2500" or "12.50"), `date`
(the first calendar date, ISO 8601, read as extract_entities reads dates) and `url` (made
absolute against the page's URL; http and https only). A value that the regex does not match
or that does not convert is skipped: the rule's next match is tried, then the next rule.

Deterministic: document order throughout, no sets iterated into output."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal
from urllib.parse import quote, urljoin, urlsplit

import msgspec

from ccn_jobs.documents import Deadline
from ccn_jobs.text_normalisation import clean_line, valid_unicode
from ccn_proto.constraints import END, MULTI_LINE_PATTERN

if TYPE_CHECKING:
    from lxml.html import HtmlElement  # type: ignore[import-untyped]

MAX_FIELDS: Final = 50
MAX_SUB_FIELDS: Final = 20
MAX_RULES_PER_FIELD: Final = 5
MAX_SELECTOR_CHARS: Final = 512
MAX_PATTERN_CHARS: Final = 256
MAX_PREDICATE_DEPTH: Final = 3
MAX_MATCHES: Final = 200
MAX_RECORDS: Final = 200
MAX_VALUE_CHARS: Final = 2_000
MAX_REGEX_INPUT_CHARS: Final = 10_000
# the values' JSON in all: with the rest of a result, well within one 768 KiB command
MAX_OUTPUT_BYTES: Final = 200_000
MAX_TABLE_ROWS: Final = 200
MAX_TABLE_COLUMNS: Final = 30
MAX_CELL_CHARS: Final = 500
# RE2's automaton budget: a pattern that needs more is refused when it compiles
REGEX_MAX_MEM: Final = 4 << 20
# seconds a handler's rules may run, checked before each rule (ccn_jobs.documents.Deadline)
EXTRACTION_TIME_LIMIT_S: Final = 30.0
INT64: Final = 2**63 - 1

# XPath 1.0's core function library (node-type tests such as text() are not calls to check)
XPATH_FUNCTIONS: Final = frozenset(
    {
        "last", "position", "count", "id", "local-name", "namespace-uri", "name",
        "string", "concat", "starts-with", "contains", "substring-before", "substring-after",
        "substring", "string-length", "normalize-space", "translate",
        "boolean", "not", "true", "false", "lang",
        "number", "sum", "floor", "ceiling", "round",
    }
)  # fmt: skip
_NODE_TESTS: Final = frozenset({"node", "text", "comment", "processing-instruction"})
# a name followed by "(": a function call or a node-type test; string literals are cut out first
_CALL = re.compile(r"([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)\s*\(")
_LITERAL = re.compile(r"\"[^\"]*\"|'[^']*'")
_OPERATOR_NAMES: Final = frozenset({"and", "or", "div", "mod"})
# axes whose step from every node of a set reaches a share of the whole page: libxml2 merges
# those sets at quadratic (and worse) cost, so outside predicates such a step must pick one
# node by position first
_SIBLING_AXIS = re.compile(r"\b(following-sibling|preceding-sibling|following|preceding)::$")
_POSITIONED_STEP = re.compile(r"\s*(?:\*|[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?(?:\(\))?)\s*\[\s*\d+\s*\]")
# what comes before a "/" that starts a location path (not one that continues a step)
_STARTS_A_PATH = re.compile(r"(?:[\[(,=<>|]|\b(?:and|or|div|mod))\s*$")
_CONTROL_CHARS: Final = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)])
_SKIPPED_TEXT_TAGS: Final = frozenset({"script", "style", "template", "noscript"})

FieldName = Annotated[str, msgspec.Meta(pattern=rf"^[A-Za-z_][A-Za-z0-9_]{{0,63}}{END}", description="a field's name")]
Selector = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_SELECTOR_CHARS, pattern=rf"^[^\x00-\x1f\x7f-\x9f]+{END}")
]
Pattern = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=MAX_PATTERN_CHARS, pattern=rf"^[^\x00-\x1f\x7f-\x9f]+{END}", description="RE2 syntax"
    ),
]
AttributeName = Annotated[str, msgspec.Meta(pattern=rf"^[A-Za-z_:][A-Za-z0-9_:.\-]{{0,63}}{END}")]
Conversion = Literal["text", "int", "decimal", "date", "url"]
Value = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_VALUE_CHARS, pattern=MULTI_LINE_PATTERN)]
Scalar = Value | Annotated[int, msgspec.Meta(ge=-INT64 - 1, le=INT64)]
Cell = Annotated[str, msgspec.Meta(max_length=MAX_CELL_CHARS, pattern=MULTI_LINE_PATTERN)]
Row = Annotated[list[Cell], msgspec.Meta(max_length=MAX_TABLE_COLUMNS)]
RuleIndex = Annotated[int, msgspec.Meta(ge=0, lt=MAX_RULES_PER_FIELD)]


class Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One way to find a field: exactly one of `css` and `xpath`; `attribute` reads that
    attribute of each matched element (None: its text); `regex` keeps its first group (or the
    whole match when it has none) of each value, and drops a value it does not match."""

    css: Selector | None = None
    xpath: Selector | None = None
    attribute: AttributeName | None = None
    regex: Pattern | None = None
    convert: Conversion = "text"

    def __post_init__(self) -> None:
        if (self.css is None) == (self.xpath is None):
            raise ValueError("a rule has exactly one of `css` and `xpath`")
        if self.xpath is not None:
            compiled_xpath(self.xpath)
        else:
            try:
                compiled_xpath(css_to_xpath(self.css or ""))
            except ValueError as refused:
                raise ValueError(str(refused).replace("the XPath", "the CSS selector's XPath", 1)) from None
        if self.regex is not None:
            compiled_regex(self.regex)

    @property
    def expression(self) -> str:
        return self.xpath if self.xpath is not None else css_to_xpath(self.css or "")


def _only_finds_elements(rules: Sequence[Rule]) -> bool:
    return not any(rule.attribute or rule.regex or rule.convert != "text" for rule in rules)


class SubField(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A field of a record, found within the record's element."""

    name: FieldName
    rules: Annotated[list[Rule], msgspec.Meta(min_length=1, max_length=MAX_RULES_PER_FIELD)]
    many: bool = False
    table: bool = False

    def __post_init__(self) -> None:
        if self.table and not _only_finds_elements(self.rules):
            raise ValueError(f"field {self.name!r}: a table's cells are text: no attribute, regex or convert")


class Field(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A field of the page. With `fields`, each element a rule matches is a record of them."""

    name: FieldName
    rules: Annotated[list[Rule], msgspec.Meta(min_length=1, max_length=MAX_RULES_PER_FIELD)]
    many: bool = False
    table: bool = False
    fields: Annotated[list[SubField], msgspec.Meta(max_length=MAX_SUB_FIELDS)] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.table and not _only_finds_elements(self.rules):
            raise ValueError(f"field {self.name!r}: a table's cells are text: no attribute, regex or convert")
        if self.fields and self.table:
            raise ValueError(f"field {self.name!r}: a field is a table or has sub-fields, not both")
        if self.fields and not _only_finds_elements(self.rules):
            raise ValueError(f"field {self.name!r}: a record's rules find elements: no attribute, regex or convert")
        duplicate_name(self.fields)


Fields = Annotated[list[Field], msgspec.Meta(max_length=MAX_FIELDS)]


def duplicate_name(fields: Sequence[Field | SubField]) -> None:
    """Refuse two fields of one name in one list (a result names each field once)."""
    seen: set[str] = set()
    for item in fields:
        if item.name in seen:
            raise ValueError(f"two fields are named {item.name!r}")
        seen.add(item.name)


class SubFieldResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a field yielded: `rule` is the index of the rule that yielded (None: none did);
    `value` for a single field, `values` for a `many` one, `header` and `rows` for a table."""

    name: FieldName
    found: bool
    rule: RuleIndex | None = None
    value: Scalar | None = None
    values: Annotated[list[Scalar], msgspec.Meta(max_length=MAX_MATCHES)] = msgspec.field(default_factory=list)
    header: Row | None = None
    rows: Annotated[list[Row], msgspec.Meta(max_length=MAX_TABLE_ROWS)] = msgspec.field(default_factory=list)


class Record(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    fields: Annotated[list[SubFieldResult], msgspec.Meta(max_length=MAX_SUB_FIELDS)]


class FieldResult(SubFieldResult, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """As SubFieldResult, and `records` for a field with sub-fields."""

    records: Annotated[list[Record], msgspec.Meta(max_length=MAX_RECORDS)] = msgspec.field(default_factory=list)


class Extraction(msgspec.Struct, frozen=True, kw_only=True):
    fields: list[FieldResult]
    truncated: bool

    @property
    def found(self) -> int:
        return sum(1 for result in self.fields if result.found)

    @property
    def missing(self) -> list[str]:
        return [result.name for result in self.fields if not result.found]


# ---- validation ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def css_to_xpath(css: str) -> str:
    """The CSS selector as XPath 1.0, relative to the element it is applied to."""
    from cssselect import SelectorError

    try:
        return str(_css_translator().css_to_xpath(css, prefix="descendant-or-self::"))
    except SelectorError as error:
        raise ValueError(f"the CSS selector does not compile: {error}") from None
    except (RecursionError, ValueError, TypeError, LookupError) as error:
        raise ValueError(f"the CSS selector does not compile: {type(error).__name__}") from None


@functools.cache
def _css_translator() -> Any:
    from cssselect import GenericTranslator
    from cssselect.xpath import XPathExpr

    class LinearTranslator(GenericTranslator):
        """cssselect's, but `a + b` is the first following sibling, then tested as `b`
        (`following-sibling::*[1]/self::b`), a step libxml2 takes in constant time, where
        cssselect's `following-sibling::*[name() = 'b' and position() = 1]` walks every
        following sibling of every `a`: quadratic (and worse) in a long list."""

        def xpath_direct_adjacent_combinator(self, left: XPathExpr, right: XPathExpr) -> XPathExpr:
            return left.join("/following-sibling::*[1]/self::", right)

    return LinearTranslator()


def xpath_problem(expression: str) -> str | None:
    """Why this XPath may not run on a node (it could reach outside the page, or cost more than
    a walk of the page), or None. It is checked again by compiling."""
    if len(expression) > 4 * MAX_SELECTOR_CHARS:
        return f"the expression is longer than {4 * MAX_SELECTOR_CHARS} characters"
    code = _LITERAL.sub(" 0 ", expression)
    if "'" in code or '"' in code:
        return "a string literal is not closed"
    if "$" in code:
        return "variables are not allowed"
    for match in _CALL.finditer(code):
        name = match.group(1)
        if name in _OPERATOR_NAMES:
            continue
        if ":" in name:
            return f"the function {name}() is not allowed: extension functions are off"
        if name not in XPATH_FUNCTIONS and name not in _NODE_TESTS:
            return f"the function {name}() is not allowed: only XPath 1.0's core functions are"
    depth = deepest = 0
    for index, char in enumerate(code):
        if char == "[":
            depth += 1
            deepest = max(deepest, depth)
        elif char == "]":
            depth -= 1
        elif char == "/" and depth > 0 and _STARTS_A_PATH.search(code[max(0, index - 8) : index]):
            return "an absolute path inside a predicate would walk the whole page once per candidate"
        elif char == ":" and depth == 0 and (problem := _unpositioned_step(code, index)):
            return problem
    if deepest > MAX_PREDICATE_DEPTH:
        return f"predicates nest {deepest} deep; at most {MAX_PREDICATE_DEPTH}"
    return None


def _unpositioned_step(code: str, index: int) -> str | None:
    """Why the axis step whose `::` starts at `index` is refused, or None."""
    axis = _SIBLING_AXIS.search(code[max(0, index - 20) : index + 2])
    if axis is None or _POSITIONED_STEP.match(code, index + 2):
        return None
    name = axis.group(1)
    return f"a {name}:: step needs a position first (`{name}::p[1]`): taking all of them from every node is quadratic"


@functools.lru_cache(maxsize=1024)
def compiled_xpath(expression: str) -> Any:
    """The compiled XPath (an lxml.etree.XPath; lxml ships no types), once it is allowed."""
    from lxml import etree  # type: ignore[import-untyped]

    problem = xpath_problem(expression)
    if problem is not None:
        raise ValueError(f"the XPath is refused: {problem}")
    try:
        # no extension functions, no regular expressions (EXSLT) and no smart strings
        return etree.XPath(expression, regexp=False, smart_strings=False, extensions=None)
    except etree.XPathSyntaxError as error:
        raise ValueError(f"the XPath does not parse: {error}") from None
    except (etree.XPathError, ValueError, TypeError) as error:
        raise ValueError(f"the XPath does not compile: {error}") from None


@functools.lru_cache(maxsize=1024)
def compiled_regex(pattern: str) -> Any:
    """The pattern compiled by RE2 (google-re2 ships no types)."""
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.max_mem = REGEX_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else error
        raise ValueError(f"the regex does not compile under RE2: {reason}") from None
    except (ValueError, TypeError) as error:
        raise ValueError(f"the regex does not compile under RE2: {error}") from None


# ---- parsing -------------------------------------------------------------------------------


def parse_html(html: str) -> HtmlElement | None:
    """The page as an lxml tree, or None when there is nothing to parse. Control characters
    are removed first (libxml2 refuses some); the text goes in as UTF-8 bytes, so an encoding
    declaration in the page cannot make lxml read it another way."""
    from lxml import etree
    from lxml import html as lxml_html

    cleaned = valid_unicode(html).translate(_CONTROL_CHARS)
    if not cleaned.strip():
        return None
    parser = lxml_html.HTMLParser(
        encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, huge_tree=False
    )
    try:
        return lxml_html.document_fromstring(cleaned.encode("utf-8"), parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None


def element_text(element: HtmlElement, limit: int = MAX_VALUE_CHARS) -> str:
    """The element's text in document order, without scripts and styles inside it (unless it is
    one), whitespace collapsed; reading stops once `limit` characters are in hand."""
    from lxml import etree

    if not isinstance(element.tag, str):
        return ""
    if element.tag in _SKIPPED_TEXT_TAGS:
        return clean_line((element.text or "")[: limit * 2])[:limit].rstrip()
    parts: list[str] = []
    size = 0
    walker = etree.iterwalk(element, events=("start", "end"))
    for event, node in walker:
        if size > limit * 2:
            break
        if event == "start":
            if isinstance(node.tag, str) and node.tag in _SKIPPED_TEXT_TAGS and node is not element:
                walker.skip_subtree()
                continue
            piece = node.text if isinstance(node.tag, str) else None
        else:
            piece = node.tail if node is not element else None
        if piece:
            parts.append(piece)
            size += len(piece)
    return clean_line("".join(parts)[: limit * 2])[:limit].rstrip()


# ---- running -------------------------------------------------------------------------------


@dataclass
class _Budget:
    left: int = MAX_OUTPUT_BYTES
    truncated: bool = False

    def take(self, value: object) -> bool:
        """Room for the value's JSON, taken; False (and truncated) when there is none."""
        size = len(msgspec.json.encode(value))
        if size > self.left:
            self.truncated = True
            return False
        self.left -= size
        return True


@dataclass(frozen=True)
class _Context:
    base_url: str | None
    deadline: Deadline | None = None
    budget: _Budget = field(default_factory=_Budget)


def extract_fields(
    tree: HtmlElement | None, fields: Sequence[Field], base_url: str | None, deadline: Deadline | None = None
) -> Extraction:
    """Every field's result, in the order asked. An empty page finds nothing. `deadline` is
    checked before each rule runs: running out fails the job (DocumentRefused), it never
    changes a result, so results stay the same on every node."""
    context = _Context(base_url, deadline)
    results = [_field(tree, item, context) for item in fields]
    return Extraction(fields=results, truncated=context.budget.truncated)


def _field(tree: HtmlElement | None, item: Field, context: _Context) -> FieldResult:
    if tree is None:
        return FieldResult(name=item.name, found=False)
    if item.fields:
        for index, rule in enumerate(item.rules):
            elements = [m for m in _matches(tree, rule, context) if _is_element(m)][: MAX_RECORDS if item.many else 1]
            if elements:
                records = [
                    Record(fields=[_sub_field(element, sub, context) for sub in item.fields]) for element in elements
                ]
                return FieldResult(name=item.name, found=True, rule=index, records=records)
        return FieldResult(name=item.name, found=False)
    found = _sub_field(tree, item, context)
    return FieldResult(
        name=found.name,
        found=found.found,
        rule=found.rule,
        value=found.value,
        values=found.values,
        header=found.header,
        rows=found.rows,
    )


def _sub_field(scope: HtmlElement, item: Field | SubField, context: _Context) -> SubFieldResult:
    for index, rule in enumerate(item.rules):
        if item.table:
            table = _table(scope, rule, context)
            if table is not None:
                header, rows = table
                return SubFieldResult(name=item.name, found=True, rule=index, header=header, rows=rows)
            continue
        values = _values(scope, rule, context, first_only=not item.many)
        if values:
            if item.many:
                return SubFieldResult(name=item.name, found=True, rule=index, values=values)
            return SubFieldResult(name=item.name, found=True, rule=index, value=values[0])
    return SubFieldResult(name=item.name, found=False)


def _matches(scope: HtmlElement, rule: Rule, context: _Context) -> list[Any]:
    from lxml import etree

    if context.deadline is not None:
        context.deadline.check(f"a rule of {rule.expression[:60]!r}")
    try:
        found = compiled_xpath(rule.expression)(scope)
    except (etree.XPathError, ValueError, TypeError):
        # a well-formed expression can still fail on a page (a type error in a predicate):
        # the rule finds nothing there
        return []
    if isinstance(found, list):
        return found[:MAX_MATCHES]
    return [found]


def _is_element(match: Any) -> bool:
    return hasattr(match, "tag") and isinstance(match.tag, str)


def _raw_text(match: Any, attribute: str | None) -> str | None:
    if _is_element(match):
        if attribute is not None:
            value = match.get(attribute)
            return clean_line(value[: MAX_REGEX_INPUT_CHARS * 2]) if isinstance(value, str) else None
        return element_text(match, MAX_REGEX_INPUT_CHARS)
    if hasattr(match, "tag"):
        return None  # a comment or processing instruction
    if isinstance(match, bool):
        return "true" if match else "false"
    if isinstance(match, float):
        if match != match or match in (float("inf"), float("-inf")):
            return None
        return str(int(match)) if match.is_integer() and abs(match) <= INT64 else repr(match)
    if isinstance(match, str):
        return clean_line(match[: MAX_REGEX_INPUT_CHARS * 2])
    return None


def _values(scope: HtmlElement, rule: Rule, context: _Context, *, first_only: bool) -> list[str | int]:
    values: list[str | int] = []
    for match in _matches(scope, rule, context):
        raw = _raw_text(match, rule.attribute)
        if not raw:
            continue
        refined = _refined(raw, rule.regex)
        if refined is None:
            continue
        converted = CONVERSIONS[rule.convert](refined, context.base_url)
        if converted is None:
            continue
        if isinstance(converted, str):
            converted = converted[:MAX_VALUE_CHARS]
        if not context.budget.take(converted):
            break
        values.append(converted)
        if first_only:
            break
    return values


def _refined(text: str, pattern: str | None) -> str | None:
    if pattern is None:
        return text
    match = compiled_regex(pattern).search(text[:MAX_REGEX_INPUT_CHARS])
    if match is None:
        return None
    refined = match.group(1) if match.re.groups >= 1 else match.group(0)
    return clean_line(refined) if refined else None


def _table(scope: HtmlElement, rule: Rule, context: _Context) -> tuple[list[str] | None, list[list[str]]] | None:
    for match in _matches(scope, rule, context):
        if not _is_element(match):
            continue
        table = match if match.tag == "table" else next(match.iter("table"), None)
        if table is None:
            continue
        header: list[str] | None = None
        rows: list[list[str]] = []
        for index, row in enumerate(table.xpath("./tr | ./thead/tr | ./tbody/tr | ./tfoot/tr")):
            if len(rows) >= MAX_TABLE_ROWS:
                context.budget.truncated = True
                break
            cells = [c for c in row if isinstance(c.tag, str) and c.tag in ("td", "th")][:MAX_TABLE_COLUMNS]
            texts = [element_text(cell, MAX_CELL_CHARS) for cell in cells]
            if not any(texts):
                continue
            if not context.budget.take(texts):
                break
            is_header = all(cell.tag == "th" for cell in cells) or row.getparent().tag == "thead"
            if index == 0 and is_header and header is None:
                header = texts
            else:
                rows.append(texts)
        if header is not None or rows:
            return header, rows
    return None


# ---- conversions ---------------------------------------------------------------------------


def _as_text(text: str, _base: str | None) -> str | None:
    return text or None


def _as_decimal_value(text: str) -> Any:
    from price_parser import Price

    return Price.fromstring(text[:MAX_VALUE_CHARS]).amount


def _as_int(text: str, _base: str | None) -> int | None:
    amount = _as_decimal_value(text)
    if amount is None or not amount.is_finite() or amount != amount.to_integral_value():
        return None
    number = int(amount)
    return number if -INT64 - 1 <= number <= INT64 else None


def _as_decimal(text: str, _base: str | None) -> str | None:
    from ccn_jobs.entity_rules import decimal_string

    amount = _as_decimal_value(text)
    if amount is None or not amount.is_finite() or abs(amount) > INT64:
        return None
    return decimal_string(amount)


def _as_date(text: str, _base: str | None) -> str | None:
    from ccn_jobs.entity_rules import first_calendar_date

    date = first_calendar_date(text)
    return date.isoformat() if date is not None else None


def _as_url(text: str, base: str | None) -> str | None:
    return absolute_url(text, base)


CONVERSIONS: Final[dict[Conversion, Callable[[str, str | None], str | int | None]]] = {
    "text": _as_text,
    "int": _as_int,
    "decimal": _as_decimal,
    "date": _as_date,
    "url": _as_url,
}

MAX_URL_CHARS: Final = 2048
_URL_WHITESPACE = re.compile(r"[\t\n\r]")
_PRINTABLE_URL = re.compile(rf"^[\x21-\x7e]+{END}")


def absolute_url(href: str, base: str | None) -> str | None:
    """The link made absolute against `base` (without its fragment), if it is an http(s) URL
    with a host, no credentials, in printable ASCII and at most MAX_URL_CHARS long; else None.
    Not a canonical form (the crawl frontier canonicalises with ccn_core.canonical_url): what a
    page wrote, resolved as a browser resolves it."""
    # non-ASCII and spaces percent-encoded (UTF-8), as a browser sends them
    written = quote(_URL_WHITESPACE.sub("", href.strip()), safe="!#$%&'()*+,/:;=?@[]~")
    if not written or len(written) > MAX_URL_CHARS:
        return None
    try:
        joined = urljoin(base, written) if base else written
        parts = urlsplit(joined)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc or "%" in host:
        return None
    del port  # read only so that a malformed port is refused above
    absolute = parts._replace(fragment="").geturl()
    if len(absolute) > MAX_URL_CHARS or not _PRINTABLE_URL.match(absolute):
        return None
    return absolute
