"""Job type `extract_structured_fields` (CC-60): many named fields of one HTML page, by the rules
of ccn_jobs.extraction_rules: single values, lists (`many`), tables (`table`: header and rows)
and records (`fields`: each element a rule matches is one record of sub-fields found within
it), each field with fallback rules (the first that yields wins; `rule` in the result says
which did).

The page is given inline (`html`, with its `url` as the base of relative links when known) or
fetched through the proxy (`url` alone: the crawl fetches exactly that URL). A page that is
missing, empty, not HTML, or laid out so that no rule matches gives a result all the same:
every field asked is in it, found or not, `missing` names those not found, and
`fields_found / fields_asked` is the extraction yield analytics reports. Deterministic: the
page and the rules alone decide the result."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ccn_jobs.crawl_domain_page import sample_page
from ccn_jobs.crawled_pages import (
    CrawlUrl,
    PageFetch,
    Pages,
    final_url,
    page_content,
    page_fetch,
    single_url_crawl,
    the_page,
)
from ccn_jobs.documents import Deadline
from ccn_jobs.extraction_rules import (
    EXTRACTION_TIME_LIMIT_S,
    MAX_FIELDS,
    Field,
    FieldName,
    FieldResult,
    Rule,
    SubField,
    duplicate_name,
    extract_fields,
    parse_html,
)
from ccn_jobs.job_type import JobType
from ccn_jobs.result_rules import Allowed, Bounds, Format, LessThan, Mandatory, ResultRules
from ccn_proto.constraints import Version
from ccn_proto.documents import Html

NAME = "extract_structured_fields"
VERSION = "1"

Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_FIELDS)]
Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class ExtractStructuredFieldsPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`fields`: what to extract (at least one). The page: `html` inline, or fetched from `url`
    when `html` is not given (`pages` holds the fetch, put in by the node's crawl loop)."""

    fields: Annotated[list[Field], msgspec.Meta(min_length=1, max_length=MAX_FIELDS)]
    url: CrawlUrl | None = None
    html: Html | None = None
    pages: Pages = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.url is None and self.html is None:
            raise ValueError("Object missing required field `url` (or give `html`)")
        duplicate_name(self.fields)


class ExtractStructuredFieldsResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`fetch`: what the fetch gave (None for inline HTML); `fields`: one per field asked, in
    the order asked; `missing`: the names of those that found nothing; `truncated`: values were
    dropped to keep the result within its bound."""

    fetch: PageFetch | None
    fields: Annotated[list[FieldResult], msgspec.Meta(max_length=MAX_FIELDS)]
    fields_found: Count
    fields_asked: Count
    extraction_yield: Share
    missing: Annotated[list[FieldName], msgspec.Meta(max_length=MAX_FIELDS)]
    truncated: bool
    extractor_version: Version

    def __post_init__(self) -> None:
        if self.fields_found > self.fields_asked:
            raise ValueError("more fields found than asked")


def extract_structured_fields(payload: ExtractStructuredFieldsPayload) -> ExtractStructuredFieldsResult:
    fetch: PageFetch | None = None
    html: str | None = payload.html
    base = payload.url
    if html is None and payload.url is not None:
        page = the_page(payload.pages, payload.url)
        content, content_error = page_content(page, NAME)
        fetch = page_fetch(payload.url, page, content_error)
        base = final_url(payload.url, page)
        html = content.html if content is not None else None
    extraction = extract_fields(
        parse_html(html) if html else None, payload.fields, base, Deadline(EXTRACTION_TIME_LIMIT_S, NAME)
    )
    asked = len(payload.fields)
    return ExtractStructuredFieldsResult(
        fetch=fetch,
        fields=extraction.fields,
        fields_found=extraction.found,
        fields_asked=asked,
        extraction_yield=round(extraction.found / asked, 4),
        missing=extraction.missing,
        truncated=extraction.truncated,
        extractor_version=VERSION,
    )


_SAMPLE_URL = "https://funder.example/programmes"
_SAMPLE_HTML = (
    "<html><body><h1 class='org'>Riverside Community Foundation</h1>"
    "<ul class='programmes'>"
    "<li class='programme'><h2><a href='/p/orchards'>Orchard grants</a></h2>"
    "<span class='amount'>Up to £2,500</span><span class='deadline'>Closes 15 March 2027</span></li>"
    "<li class='programme'><h2><a href='/p/youth'>Youth arts fund</a></h2>"
    "<span class='amount'>£10,000 max</span></li>"
    "</ul>"
    "<table id='dates'><tr><th>Round</th><th>Opens</th></tr><tr><td>Spring</td><td>1 Feb 2027</td></tr>"
    "<tr><td>Autumn</td><td>1 Sep 2027</td></tr></table>"
    "<p class='contact'>Email: grants@riverside.example</p>"
    "</body></html>"
)

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="extractor_version", values=(VERSION,), note="results of another extractor are not comparable"),
        Format(path="fetch.url", format="url"),
        Format(path="fetch.final_url", format="url"),
        Mandatory(path="fields", note="a payload asks for at least one field, and each is in the result"),
        Mandatory(path="fields[].name"),
        LessThan(path="fields_found", sibling="fields_asked", or_equal=True),
        Bounds(path="extraction_yield", ge=0.0, le=1.0),
    ),
)

EXTRACT_STRUCTURED_FIELDS: JobType[ExtractStructuredFieldsPayload, ExtractStructuredFieldsResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=ExtractStructuredFieldsPayload,
    result_type=ExtractStructuredFieldsResult,
    result_rules=RESULT_RULES,
    handler=extract_structured_fields,
    consent_scope="crawl",
    description="Many structured fields of one HTML page: nested records, tables, lists, fallbacks (CC-60)",
    sample_payloads=(
        ExtractStructuredFieldsPayload(
            url=_SAMPLE_URL,
            fields=[
                Field(name="funder", rules=[Rule(css="h1.org")]),
                Field(
                    name="programmes",
                    many=True,
                    rules=[Rule(css="li.programme")],
                    fields=[
                        SubField(name="title", rules=[Rule(css="h2")]),
                        SubField(name="link", rules=[Rule(css="h2 a", attribute="href", convert="url")]),
                        SubField(name="amount", rules=[Rule(css=".amount", convert="decimal")]),
                        SubField(name="deadline", rules=[Rule(css=".deadline", convert="date")]),
                    ],
                ),
                Field(name="rounds", table=True, rules=[Rule(css="table#dates")]),
                Field(
                    name="email",
                    rules=[
                        Rule(css="a[href^='mailto:']", attribute="href", regex=r"^mailto:(.+)$"),
                        Rule(css="p.contact", regex=r"([\w.+-]+@[\w-]+(?:\.[\w-]+)+)"),
                    ],
                ),
                Field(name="phone", rules=[Rule(css="p.phone")]),
            ],
            pages=[sample_page(_SAMPLE_URL, _SAMPLE_HTML)],
        ),
        ExtractStructuredFieldsPayload(
            html="<div><b>no rules match here</b></div>",
            fields=[Field(name="title", rules=[Rule(xpath="//h1"), Rule(css="title")])],
        ),
    ),
    crawl=single_url_crawl(),
)
