"""Job type `crawl_domain_page` (CC-50): one page of an allowed domain, fetched through the fetch
proxy, read into its title, clean text, outgoing links and, when the payload asks, fields found
by extraction rules (ccn_jobs.extraction_rules).

The crawl is one fetch: the job's `url`, nothing else (`in_scope` is that URL alone). The
handler is pure and reads the page the node fetched (`pages`, filled by `with_pages`):
- fetched with a 2xx status and an HTML body: title and clean text as extract_text finds them
  (trafilatura between html_boilerplate's passes), links in document order, made absolute
  against the page's final URL (or its <base href>), each once, `rel=nofollow` left out; the
  fields the rules ask for;
- a plain-text body: its text;
- anything else (another status, a 304 to a conditional GET, a refusal, a failure, a body that
  is not what it was declared to be): a result that says so in `fetch`, with no content.
  A robots.txt refusal never gets here in practice: the proxy cancels the job.
`text_sha256` is the sha256 of the whole clean text (UTF-8), so a recrawl can tell a changed
page from an unchanged one however the markup around the text moved; `fetch` carries the
response's validators (ETag, Last-Modified) for the next conditional GET.

Bounds: the text is cut at MAX_PAGE_TEXT_CHARS (the hash is of all of it), links at
crawled_pages.MAX_LINKS, the fields' values at extraction_rules.MAX_OUTPUT_BYTES, so the result
fits in one command."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Final

import msgspec

from ccn_jobs.crawl import CrawledPage
from ccn_jobs.crawled_pages import (
    MAX_LINKS,
    CrawlUrl,
    PageFetch,
    Pages,
    final_url,
    page_content,
    page_fetch,
    page_links,
    single_url_crawl,
    the_page,
)
from ccn_jobs.documents import Deadline
from ccn_jobs.extraction_rules import (
    EXTRACTION_TIME_LIMIT_S,
    Field,
    FieldResult,
    Fields,
    Rule,
    duplicate_name,
    extract_fields,
    parse_html,
)
from ccn_jobs.job_type import JobType
from ccn_jobs.result_rules import Allowed, Bounds, Format, LessThan, Mandatory, ResultRules, When
from ccn_jobs.text_normalisation import clean_text
from ccn_proto.constraints import MULTI_LINE_PATTERN, Sha256Hex, Version
from ccn_proto.documents import HTML, InlineDocument
from ccn_proto.fetch import FetchedPage, Validator

NAME = "crawl_domain_page"
VERSION = "1"

MAX_PAGE_TEXT_CHARS: Final = 50_000
PageText = Annotated[str, msgspec.Meta(max_length=MAX_PAGE_TEXT_CHARS, pattern=MULTI_LINE_PATTERN)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=MULTI_LINE_PATTERN)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class CrawlDomainPagePayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`url`: the page; `fields`: what to extract from it (none: only text and links);
    `pages`: the fetch, put in by the node's crawl loop (empty when the job is created).
    `if_none_match` and `if_modified_since`: the last crawl's validators, which make the fetch a
    conditional GET (the fetch proxy sends them; a 304 means the page did not change)."""

    url: CrawlUrl
    fields: Fields = msgspec.field(default_factory=list)
    pages: Pages = msgspec.field(default_factory=list)
    if_none_match: Validator | None = None
    if_modified_since: Validator | None = None

    def __post_init__(self) -> None:
        duplicate_name(self.fields)


class CrawlDomainPageResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`fields_found` of `fields_asked` fields yielded a value (the extraction yield)."""

    fetch: PageFetch
    title: Title | None
    text: PageText
    chars: Count
    text_truncated: bool
    text_sha256: Sha256Hex | None
    links: Annotated[list[CrawlUrl], msgspec.Meta(max_length=MAX_LINKS)]
    links_truncated: bool
    fields: Annotated[list[FieldResult], msgspec.Meta(max_length=50)]
    fields_found: Count
    fields_asked: Count
    fields_truncated: bool
    crawler_version: Version

    def __post_init__(self) -> None:
        if self.chars < len(self.text):
            raise ValueError(f"chars is {self.chars} but the text kept has {len(self.text)} characters")


def crawl_domain_page(payload: CrawlDomainPagePayload) -> CrawlDomainPageResult:
    page = the_page(payload.pages, payload.url)
    content, content_error = page_content(page, NAME)
    fetch = page_fetch(payload.url, page, content_error)
    base = final_url(payload.url, page)
    title: str | None = None
    text = ""
    links: list[str] = []
    links_truncated = False
    tree = None
    if content is not None and content.html is not None:
        from ccn_jobs.extract_text import extract_text
        from ccn_proto.documents import ExtractTextPayload

        extracted = extract_text(ExtractTextPayload(html=content.html, url=base))
        title, text = extracted.title, extracted.text
        tree = parse_html(content.html)
        links, links_truncated = page_links(tree, base)
    elif content is not None and content.text is not None:
        text = clean_text(content.text)
    extraction = extract_fields(tree, payload.fields, base, Deadline(EXTRACTION_TIME_LIMIT_S, NAME))
    return CrawlDomainPageResult(
        fetch=fetch,
        title=title,
        text=text[:MAX_PAGE_TEXT_CHARS].rstrip(),
        chars=len(text),
        text_truncated=len(text) > MAX_PAGE_TEXT_CHARS,
        text_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None,
        links=links,
        links_truncated=links_truncated,
        fields=extraction.fields,
        fields_found=extraction.found,
        fields_asked=len(payload.fields),
        fields_truncated=extraction.truncated,
        crawler_version=VERSION,
    )


def sample_page(url: str, html: str, *, status: int = 200, etag: str | None = None) -> CrawledPage:
    """A fetched HTML page as the node's loop hands it over, for samples and tests."""
    data = html.encode("utf-8")
    return CrawledPage(
        url=url,
        outcome=FetchedPage(
            fetch_id=f"sample-{hashlib.sha256(url.encode()).hexdigest()[:12]}",
            url=url,
            final_url=url,
            status=status,
            content_type="text/html; charset=utf-8",
            etag=etag,
            fetched_at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        ),
        document=InlineDocument(media_type=HTML, data=data, size=len(data), charset="utf-8"),
    )


_SAMPLE_URL = "https://funder.example/grants/seed"
_SAMPLE_HTML = (
    "<html><head><title>Seed grants</title></head><body><nav><a href='/'>Home</a> "
    "<a href='/about'>About</a></nav><article><h1>Community seed grants</h1>"
    "<p>Grants of up to <span class='amount'>$5,000</span> for volunteer-led groups planting orchards "
    "and community gardens. Applications close on <time datetime='2027-03-31'>31 March 2027</time>.</p>"
    "<p><a href='apply#form'>How to apply</a> or read the <a href='../guidance.pdf'>guidance</a>.</p>"
    "<a rel='nofollow' href='/login'>Log in</a></article></body></html>"
)

# No consensus (ADR 0025): a replica of a crawl is a second fetch of a funder's page, which
# politeness forbids, and the fetch itself is the proxy's (a trusted service that records the
# body's digest), not the node's; the node's part, parsing, is checked by RESULT_RULES.


# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="crawler_version", values=(VERSION,), note="results of another crawler are not comparable"),
        Format(path="fetch.url", format="url"),
        Format(path="fetch.final_url", format="url"),
        Mandatory(path="fetch.status", when=When(field="outcome", is_in=("fetched",)), note="a fetch has a status"),
        Bounds(path="fetch.status", ge=100, le=599),
        Format(path="fetch.body_sha256", format="sha256"),
        Format(path="text_sha256", format="sha256"),
        Format(path="links[]", format="url"),
        LessThan(path="fields_found", sibling="fields_asked", or_equal=True),
        Mandatory(path="fields[].name"),
    ),
)

CRAWL_DOMAIN_PAGE: JobType[CrawlDomainPagePayload, CrawlDomainPageResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=CrawlDomainPagePayload,
    result_type=CrawlDomainPageResult,
    result_rules=RESULT_RULES,
    handler=crawl_domain_page,
    consent_scope="crawl",
    description="One page of an allowed domain through the fetch proxy: title, text, links, fields (CC-50)",
    sample_payloads=(
        CrawlDomainPagePayload(
            url=_SAMPLE_URL,
            fields=[
                Field(name="amount", rules=[Rule(css="span.amount", convert="decimal")]),
                Field(name="deadline", rules=[Rule(css="time", attribute="datetime", convert="date")]),
            ],
            pages=[sample_page(_SAMPLE_URL, _SAMPLE_HTML, etag='"v1"')],
        ),
        CrawlDomainPagePayload(url=_SAMPLE_URL, pages=[sample_page(_SAMPLE_URL, "<h1>Gone</h1>", status=404)]),
    ),
    crawl=single_url_crawl(),
)
