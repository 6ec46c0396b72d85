"""The extraction rules engine (ccn_jobs.extraction_rules): rules are checked when a job is
created (refused with the rule's path and the reason), and running them is bounded in time and
size whatever the page or the pattern."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ccn_jobs.documents import Deadline
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.extraction_rules import (
    MAX_MATCHES,
    MAX_OUTPUT_BYTES,
    MAX_REGEX_INPUT_CHARS,
    MAX_VALUE_CHARS,
    Field,
    Rule,
    SubField,
    absolute_url,
    compiled_regex,
    element_text,
    extract_fields,
    parse_html,
    xpath_problem,
)
from ccn_jobs.registry import payload_refusal


def refusal_of(fields: list[dict[str, Any]]) -> tuple[str, str] | None:
    refusal = payload_refusal("extract_structured_fields", {"html": "<p>x</p>", "fields": fields})
    return None if refusal is None else (refusal.field or "", refusal.message)


def one_rule(**rule: Any) -> list[dict[str, Any]]:
    return [{"name": "value", "rules": [rule]}]


@pytest.mark.parametrize(
    "fields",
    [
        one_rule(css="div.grant > h2"),
        one_rule(css="a[href^='https://'], a[href$='.pdf']"),
        one_rule(css="li:nth-child(2n+1)"),
        one_rule(css="table tr:not(:first-child) td"),
        one_rule(xpath="//h1"),
        one_rule(xpath="//a/@href"),
        one_rule(xpath="//p[contains(normalize-space(.), 'Deadline')]/following-sibling::p[1]"),
        one_rule(xpath="count(//li)", convert="int"),
        one_rule(xpath="//div[@id='a/b']//p"),
        one_rule(xpath="//p[.//a]"),
        one_rule(xpath="//p[text()]"),
        one_rule(css="dt + dd"),
        one_rule(css="a:not(.x) + b.y"),
        one_rule(xpath="//dt[.='Amount']/following-sibling::dd[1]"),
        one_rule(xpath="//h2/following::p[2]"),
        one_rule(xpath="//p[following-sibling::h2]"),
        one_rule(css="p", regex=r"(?i)closes?\s+(?:on\s+)?(\d{1,2} \w+ \d{4})", convert="date"),
        one_rule(css="span.amount", convert="decimal"),
        one_rule(css="a", attribute="href", convert="url"),
        [{"name": "rows", "table": True, "rules": [{"css": "table"}, {"xpath": "//table[1]"}]}],
        [{"name": "items", "many": True, "rules": [{"css": "li"}], "fields": [{"name": "t", "rules": [{"css": "a"}]}]}],
    ],
    ids=lambda fields: str(fields[0]["rules"][0]),
)
def test_valid_rules_are_accepted(fields: list[dict[str, Any]]) -> None:
    assert refusal_of(fields) is None


@pytest.mark.parametrize(
    ("fields", "where", "why"),
    [
        (one_rule(css="div["), "payload.fields[0].rules[0]", "CSS selector does not compile"),
        (one_rule(css="p::text"), "payload.fields[0].rules[0]", "CSS selector does not compile"),
        (one_rule(css=":hover-ish(x"), "payload.fields[0].rules[0]", "CSS selector does not compile"),
        (one_rule(xpath="//p["), "payload.fields[0].rules[0]", "XPath does not parse"),
        (one_rule(xpath="document('http://169.254.169.254/')//x"), "payload.fields[0].rules[0]", "document()"),
        (one_rule(xpath="doc('file:///etc/passwd')"), "payload.fields[0].rules[0]", "doc() is not allowed"),
        (one_rule(xpath="//p[re:test(., 'a+')]"), "payload.fields[0].rules[0]", "extension functions are off"),
        (one_rule(xpath="exsl:node-set(//p)"), "payload.fields[0].rules[0]", "extension functions are off"),
        (one_rule(xpath="//p[$secret]"), "payload.fields[0].rules[0]", "variables are not allowed"),
        (one_rule(xpath="//p[count(//a) > 1]"), "payload.fields[0].rules[0]", "absolute path inside a predicate"),
        (one_rule(css="h2 ~ p"), "payload.fields[0].rules[0]", "CSS selector's XPath is refused: a following-sibling"),
        (one_rule(xpath="//h2/following-sibling::p"), "payload.fields[0].rules[0]", "needs a position first"),
        (one_rule(xpath="//h2/following::p"), "payload.fields[0].rules[0]", "needs a position first"),
        (one_rule(xpath="//b/preceding::p[@x][1]"), "payload.fields[0].rules[0]", "needs a position first"),
        (one_rule(xpath="//p[a[b[c[d]]]]"), "payload.fields[0].rules[0]", "predicates nest 4 deep"),
        (one_rule(xpath="//p[@x='open"), "payload.fields[0].rules[0]", "not closed"),
        (one_rule(css="p", regex=r"(a)\1"), "payload.fields[0].rules[0]", "does not compile under RE2"),
        (one_rule(css="p", regex=r"(?=lookahead)"), "payload.fields[0].rules[0]", "does not compile under RE2"),
        (one_rule(css="p", regex=r"((a{100}){100}){100}"), "payload.fields[0].rules[0]", "under RE2"),
        (one_rule(css="p", regex="x" * 300), "payload.fields[0].rules[0].regex", "Expected `str` of length <= 256"),
        (one_rule(css="p" * 600), "payload.fields[0].rules[0].css", "length <= 512"),
        (one_rule(), "payload.fields[0].rules[0]", "exactly one of `css` and `xpath`"),
        (one_rule(css="p", xpath="//p"), "payload.fields[0].rules[0]", "exactly one of `css` and `xpath`"),
        (one_rule(css="p", convert="float"), "payload.fields[0].rules[0].convert", "Invalid enum value 'float'"),
        (one_rule(css="p", attribute="on click"), "payload.fields[0].rules[0].attribute", "matching regex"),
        (one_rule(css="p", javascript="alert(1)"), "payload.fields[0].rules[0].javascript", "unknown field"),
        ([{"name": "a", "rules": []}], "payload.fields[0].rules", "length >= 1"),
        ([{"name": "a", "rules": [{"css": "p"}] * 6}], "payload.fields[0].rules", "length <= 5"),
        ([{"name": "9lives", "rules": [{"css": "p"}]}], "payload.fields[0].name", "matching regex"),
        ([{"name": "a", "rules": [{"css": "p"}]}] * 2, "payload", "two fields are named 'a'"),
        ([{"name": f"f{i}", "rules": [{"css": "p"}]} for i in range(51)], "payload.fields", "length <= 50"),
        ([{"name": "t", "table": True, "rules": [{"css": "table", "regex": "x"}]}], "payload.fields[0]", "a table"),
        (
            [
                {
                    "name": "r",
                    "table": True,
                    "fields": [{"name": "x", "rules": [{"css": "a"}]}],
                    "rules": [{"css": "li"}],
                }
            ],
            "payload.fields[0]",
            "a table or has sub-fields",
        ),
        (
            [
                {
                    "name": "r",
                    "rules": [{"css": "li", "convert": "int"}],
                    "fields": [{"name": "x", "rules": [{"css": "a"}]}],
                }
            ],
            "payload.fields[0]",
            "a record's rules find elements",
        ),
        (
            [{"name": "r", "rules": [{"css": "li"}], "fields": [{"name": "x", "rules": [{"css": "a"}], "fields": []}]}],
            "payload.fields[0].fields[0].fields",
            "unknown field",
        ),
        ([{"name": "r", "rules": [{"css": "li"}], "fields": [{"name": "x", "rules": [{"css": "a["}]}]}], "", "CSS"),
    ],
    ids=lambda value: str(value)[:60] if isinstance(value, list) else None,
)
def test_invalid_rules_are_refused_naming_the_rule_and_the_reason(
    fields: list[dict[str, Any]], where: str, why: str
) -> None:
    refused = refusal_of(fields)
    assert refused is not None
    field, message = refused
    if where:
        assert field == where, message
    assert why in message, message
    assert message.startswith("payload is not a valid extract_structured_fields payload: ")


def test_the_xpath_check_reads_past_string_literals() -> None:
    assert xpath_problem("//a[contains(@href, 'document(')]") is None
    assert xpath_problem('//a[@title="$x"]') is None
    assert xpath_problem("//a[contains(@href, 'x')] | document('y')") is not None


def test_a_catastrophic_backtracking_regex_on_100_kb_finishes_at_once() -> None:
    # (a+)+$ against "aaa…ab" takes time exponential in the run of a's in a backtracking engine
    # (Python's re does not finish on 30 of them); RE2 matches in linear time
    hostile = "a" * 100_000 + "b"
    started = time.perf_counter()
    assert compiled_regex(r"(a+)+$").search(hostile) is None
    assert compiled_regex(r"^(a|aa)+$").search(hostile) is None
    assert compiled_regex(r"(.*a){20}b!").search(hostile) is None
    assert time.perf_counter() - started < 0.5
    # and through a rule, on a 100 KB page whose text never lets the pattern match
    page = parse_html(f"<p>{'a' * 100_000}</p>")
    field = Field(name="x", rules=[Rule(css="p", regex=r"(a+)+b"), Rule(css="p", regex=r"(a|aa)+c")])
    started = time.perf_counter()
    (result,) = extract_fields(page, [field], None).fields
    assert time.perf_counter() - started < 0.5
    assert result.found is False


def test_adjacent_siblings_cost_one_step_each_on_a_long_list() -> None:
    # cssselect's own `p + p` walks every following sibling of every p: minutes for this list
    page = parse_html("<div>" + "<p>a</p>" * 5_000 + "</div>")
    started = time.perf_counter()
    (result,) = extract_fields(page, [Field(name="p", many=True, rules=[Rule(css="p + p")])], None).fields
    assert time.perf_counter() - started < 1.0
    assert len(result.values) == MAX_MATCHES


def test_running_out_of_time_fails_the_job_and_never_changes_a_result() -> None:
    ticks = iter([0.0, 0.0, 100.0])
    deadline = Deadline(30.0, "extract_structured_fields", clock=lambda: next(ticks))
    fields = [Field(name="a", rules=[Rule(css="p")]), Field(name="b", rules=[Rule(css="p")])]
    with pytest.raises(DocumentRefused) as refused:
        extract_fields(parse_html("<p>x</p>"), fields, None, deadline)
    assert refused.value.code == "deadline_exceeded"


def test_the_regex_sees_a_bounded_prefix_of_a_huge_value() -> None:
    tail_marker = "NEEDLE"
    page = parse_html(f"<p data-x='{'y' * 1_000_000}{tail_marker}'>{'z' * 1_000_000}{tail_marker}</p>")
    fields = [
        Field(name="in_text", rules=[Rule(css="p", regex=tail_marker)]),
        Field(name="in_attribute", rules=[Rule(css="p", attribute="data-x", regex=tail_marker)]),
        Field(name="text", rules=[Rule(css="p")]),
        Field(name="attribute", rules=[Rule(css="p", attribute="data-x")]),
    ]
    started = time.perf_counter()
    result = {field.name: field for field in extract_fields(page, fields, None).fields}
    assert time.perf_counter() - started < 2.0
    assert not result["in_text"].found and not result["in_attribute"].found
    assert result["text"].value == "z" * MAX_VALUE_CHARS
    assert result["attribute"].value == "y" * MAX_VALUE_CHARS
    assert MAX_REGEX_INPUT_CHARS < 1_000_000


def test_values_are_converted_to_their_types() -> None:
    page = parse_html(
        "<div><span class='a'>Up to £12,500.50 per year</span><span class='n'>1,204 grants</span>"
        "<span class='d'>Closes on 15 March 2027, 5pm</span><span class='iso'>2027-01-31</span>"
        "<a href='../apply?round=2#form'>Apply</a><a href='javascript:alert(1)'>x</a>"
        "<span class='bad'>no number here</span></div>"
    )
    fields = [
        Field(name="amount", rules=[Rule(css=".a", convert="decimal")]),
        Field(name="count", rules=[Rule(css=".n", convert="int")]),
        Field(name="deadline", rules=[Rule(css=".d", convert="date")]),
        Field(name="iso", rules=[Rule(css=".iso", convert="date")]),
        Field(name="links", many=True, rules=[Rule(css="a", attribute="href", convert="url")]),
        Field(name="missing", rules=[Rule(css=".bad", convert="int"), Rule(css=".n", regex=r"(\d+) grants")]),
        Field(name="text", rules=[Rule(css=".d", regex=r"on (.+),")]),
    ]
    results = {r.name: r for r in extract_fields(page, fields, "https://funder.example/grants/seed").fields}
    assert results["amount"].value == "12500.50"
    assert results["count"].value == 1204
    assert results["deadline"].value == "2027-03-15"
    assert results["iso"].value == "2027-01-31"
    assert results["links"].values == ["https://funder.example/apply?round=2"]  # javascript: is no URL
    assert (results["missing"].rule, results["missing"].value) == (1, "204")  # the fallback, "1,204" → "204"
    assert results["text"].value == "15 March 2027"


def test_the_first_rule_that_yields_wins_and_says_which() -> None:
    page = parse_html("<h2 class='title'>Orchards</h2><title>Site</title>")
    field = Field(name="title", rules=[Rule(css="h1"), Rule(css="h2.title"), Rule(css="title")])
    (result,) = extract_fields(page, [field], None).fields
    assert (result.found, result.rule, result.value) == (True, 1, "Orchards")
    (nothing,) = extract_fields(parse_html("<p>x</p>"), [field], None).fields
    assert (nothing.found, nothing.rule, nothing.value) == (False, None, None)


def test_records_tables_and_lists() -> None:
    page = parse_html(
        "<ul><li class='g'><a href='/a'>A</a><b>£1,000</b></li><li class='g'><a href='/b'>B</a></li></ul>"
        "<table><thead><tr><th>Round</th><th>Opens</th></tr></thead>"
        "<tbody><tr><td>Spring</td><td>1 Feb</td></tr><tr><td></td><td></td></tr>"
        "<tr><td>Autumn</td></tr></tbody></table>"
        "<ol><li>one</li><li>two</li></ol>"
    )
    fields = [
        Field(
            name="grants",
            many=True,
            rules=[Rule(css="li.g")],
            fields=[
                SubField(name="name", rules=[Rule(css="a")]),
                SubField(name="link", rules=[Rule(css="a", attribute="href", convert="url")]),
                SubField(name="amount", rules=[Rule(css="b", convert="decimal")]),
            ],
        ),
        Field(name="first", rules=[Rule(css="li.g")], fields=[SubField(name="name", rules=[Rule(css="a")])]),
        Field(name="rounds", table=True, rules=[Rule(css="table")]),
        Field(name="steps", many=True, rules=[Rule(css="ol li")]),
    ]
    results = {r.name: r for r in extract_fields(page, fields, "https://f.example/x").fields}
    grants = [{f.name: f.value for f in record.fields} for record in results["grants"].records]
    assert grants == [
        {"name": "A", "link": "https://f.example/a", "amount": "1000"},
        {"name": "B", "link": "https://f.example/b", "amount": None},
    ]
    assert len(results["first"].records) == 1
    assert results["rounds"].header == ["Round", "Opens"]
    assert results["rounds"].rows == [["Spring", "1 Feb"], ["Autumn"]]
    assert results["steps"].values == ["one", "two"]


def test_text_leaves_out_scripts_and_styles_but_reads_one_asked_for() -> None:
    page = parse_html(
        "<div id='d'>Grant <script>var x = 1;</script><style>p{}</style>fund</div>"
        '<script type=\'application/ld+json\'>{"name": "Fund"}</script>'
    )
    assert page is not None
    fields = [
        Field(name="text", rules=[Rule(css="#d")]),
        Field(name="json", rules=[Rule(css="script[type='application/ld+json']", regex=r'"name": "([^"]+)"')]),
    ]
    results = extract_fields(page, fields, None).fields
    assert [r.value for r in results] == ["Grant fund", "Fund"]


def test_matches_per_rule_are_bounded() -> None:
    page = parse_html("<ul>" + "<li>v</li>" * 1000 + "</ul>")
    result = extract_fields(page, [Field(name="f", many=True, rules=[Rule(css="li")])], None)
    assert result.fields[0].values == ["v"] * MAX_MATCHES
    assert not result.truncated


def test_the_output_is_bounded_and_says_it_was_cut() -> None:
    page = parse_html("<ul>" + "".join(f"<li>{'v' * 1500}{i}</li>" for i in range(1000)) + "</ul>")
    fields = [Field(name=f"f{n}", many=True, rules=[Rule(css="li")]) for n in range(3)]
    result = extract_fields(page, fields, None)
    assert result.truncated
    assert 0 < len(result.fields[0].values) < MAX_MATCHES
    assert len(msgspec.json.encode(result.fields)) <= MAX_OUTPUT_BYTES + 2_000  # the values, and their framing


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 100_000 + "<p class='x'>deep</p>" + "</div>" * 100_000,
        "<p class='x' title='" + "t" * 5_000_000 + "'>huge attribute</p>",
        "<p class='x'>bell\x07 nul\x00 esc\x1b del\x7f c1\x85 text\u2028sep</p>",
        "<?xml version='1.0' encoding='latin-1'?><p class='x'>declared</p>",
        "\ud800<p class='x'>lone surrogate</p>",
        "",
        "   ",
        "<",
        "<p class='x'>" + "<b>" * 50_000,
        "<html><body><p class='x'>" + "&amp;" * 100_000 + "</p>",
        "<svg><script>alert(1)</script></svg><p class='x'>after svg</p>",
    ],
    ids=[
        "deep-nesting",
        "huge-attribute",
        "control-characters",
        "encoding-declaration",
        "lone-surrogate",
        "empty",
        "blank",
        "one-bracket",
        "unclosed-tags",
        "many-entities",
        "svg-script",
    ],
)
def test_hostile_html_never_crashes_and_stays_within_bounds(html: str) -> None:
    started = time.perf_counter()
    page = parse_html(html)
    fields = [
        Field(name="p", rules=[Rule(css="p.x")]),
        Field(name="title", rules=[Rule(css="p", attribute="title")]),
        Field(name="all", many=True, rules=[Rule(xpath="//*")]),
    ]
    result = extract_fields(page, fields, None)
    assert time.perf_counter() - started < 5.0
    for field in result.fields:
        for value in [field.value, *field.values]:
            if isinstance(value, str):
                assert len(value) <= MAX_VALUE_CHARS
                assert not any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in value), value[:50]
                assert "\u2028" not in value
                value.encode("utf-8")  # no lone surrogates


def test_control_characters_are_removed_from_text() -> None:
    (field,) = extract_fields(
        parse_html("<p>a\x00b\x1bc\u2028d</p>"), [Field(name="p", rules=[Rule(css="p")])], None
    ).fields
    assert field.value == "abc d"


def test_element_text_stops_reading_at_its_limit() -> None:
    page = parse_html("<div>" + "<span>word </span>" * 100_000 + "</div>")
    assert page is not None
    (div,) = page.iter("div")
    started = time.perf_counter()
    assert element_text(div, 100) == ("word " * 20).strip()
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("href", "base", "expected"),
    [
        ("/a/b", "https://x.example/c/d", "https://x.example/a/b"),
        ("../up", "https://x.example/c/d/e", "https://x.example/c/up"),
        ("  next\n.html#top ", "https://x.example/list/", "https://x.example/list/next.html"),
        ("?page=2", "https://x.example/list?page=1", "https://x.example/list?page=2"),
        ("//other.example/x", "https://x.example/", "https://other.example/x"),
        ("/grünt ä", "https://x.example/", "https://x.example/gr%C3%BCnt%20%C3%A4"),
        ("mailto:a@x.example", "https://x.example/", None),
        ("javascript:alert(1)", "https://x.example/", None),
        ("ftp://x.example/f", None, None),
        ("https://user:pw@x.example/", None, None),
        ("http://[::1", None, None),
        ("https://x.example:99999/", None, None),
        ("https:///nohost", None, None),
        ("/relative", None, None),
        ("https://x.example/" + "a" * 3000, None, None),
    ],
)
def test_links_are_made_absolute_as_a_browser_resolves_them(href: str, base: str | None, expected: str | None) -> None:
    assert absolute_url(href, base) == expected


def test_the_rules_example_in_the_docs_is_a_valid_field() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "job-types.md").read_text()
    example = docs.split("## Crawl job types and extraction rules", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    field = msgspec.json.decode(example, type=Field)
    page = parse_html(
        "<ul><li class='programme'><dl><dt>Amount</dt><dd>€4,000</dd></dl>"
        "<a href='mailto:grants@funder.example'>Email</a></li></ul>"
    )
    (result,) = extract_fields(page, [field], None).fields
    assert [(f.name, f.rule, f.value) for f in result.records[0].fields] == [
        ("amount", 1, "4000"),
        ("email", 0, "grants@funder.example"),
    ]
