"""The single-page crawl job types on fixture pages: crawl_domain_page (CC-50),
extract_structured_fields (CC-60) and fetch_document (CC-62). Every fetch outcome gives a result
that says what happened; none raises."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ccn_jobs.crawl import CrawledPage
from ccn_jobs.crawl_domain_page import CRAWL_DOMAIN_PAGE, CrawlDomainPagePayload, crawl_domain_page, sample_page
from ccn_jobs.extract_structured_fields import (
    EXTRACT_STRUCTURED_FIELDS,
    ExtractStructuredFieldsPayload,
    extract_structured_fields,
)
from ccn_jobs.extraction_rules import Field, Rule, SubField
from ccn_jobs.fetch_document import FETCH_DOCUMENT, FetchDocumentPayload, fetch_document, sample_document
from ccn_jobs.registry import JOB_TYPES, decode_result, payload_refusal, result_to_builtins, run_job
from ccn_proto.documents import DOCX, HTML, PDF, PLAIN_TEXT, DocumentRef, InlineDocument
from ccn_proto.fetch import FetchedPage
from tests.support.crawl_pages import failed, refused, run_crawl

URL = "https://funder.example/grants/orchards"
PAGE = """<!doctype html><html><head><title>Orchard grants | Riverside Foundation</title>
<base href="https://funder.example/grants/"></head><body>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<main><h1>Orchard grants</h1>
<p>Grants of up to <span class="amount">£2,500</span> for community groups planting fruit trees
on shared land. Groups may apply once a year, and the panel meets every quarter to decide.</p>
<p>Applications close on <span class="deadline">15 March 2027</span>.</p>
<p><a href="apply">Apply</a>, read the <a href="../docs/guidance.pdf#page=2">guidance</a> or
<a href="apply">apply here</a>. <a href="mailto:grants@funder.example">Email us</a>.
<a href="https://partner.example/x">Partner</a> <a rel="nofollow" href="/login">Log in</a></p>
</main></body></html>"""
RULES = [
    Field(name="amount", rules=[Rule(css="span.amount", convert="decimal")]),
    Field(name="deadline", rules=[Rule(css="span.deadline", convert="date")]),
    Field(name="phone", rules=[Rule(css=".phone")]),
]


# ---- crawl_domain_page ---------------------------------------------------------------------


def test_a_page_gives_its_title_text_links_fields_and_validators() -> None:
    page = sample_page(URL, PAGE, etag='"abc"')
    result = crawl_domain_page(CrawlDomainPagePayload(url=URL, fields=RULES, pages=[page]))
    assert result.fetch.outcome == "fetched" and result.fetch.status == 200
    assert result.fetch.etag == '"abc"'
    assert result.title == "Orchard grants"
    assert "fruit trees" in result.text and "Home" not in result.text.splitlines()
    assert result.text_sha256 == hashlib.sha256(result.text.encode()).hexdigest()
    # resolved against <base href>, fragments dropped, each once, nofollow and mailto: left out
    assert result.links == [
        "https://funder.example/",
        "https://funder.example/about",
        "https://funder.example/grants/apply",
        "https://funder.example/docs/guidance.pdf",
        "https://partner.example/x",
    ]
    assert [(f.name, f.value) for f in result.fields] == [
        ("amount", "2500"),
        ("deadline", "2027-03-15"),
        ("phone", None),
    ]
    assert (result.fields_found, result.fields_asked) == (2, 3)


def test_the_text_hash_follows_the_text_not_the_markup() -> None:
    def result_of(html: str) -> Any:
        return crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[sample_page(URL, html)]))

    first = result_of(PAGE)
    moved = result_of(PAGE.replace("<main>", "<main class='v2' data-build='7'>"))
    changed = result_of(PAGE.replace("£2,500", "£3,000"))
    assert first.text_sha256 == moved.text_sha256
    assert first.text_sha256 != changed.text_sha256


def test_links_resolve_against_the_final_url_after_redirects() -> None:
    outcome = FetchedPage(
        fetch_id="f",
        url=URL,
        final_url="https://funder.example/new/place/",
        status=200,
        redirects=[URL],
        fetched_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    data = b"<a href='next'>n</a>"
    page = CrawledPage(url=URL, outcome=outcome, document=InlineDocument(media_type=HTML, data=data, size=len(data)))
    result = crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[page]))
    assert result.links == ["https://funder.example/new/place/next"]
    assert result.fetch.final_url == "https://funder.example/new/place/"


@pytest.mark.parametrize(
    ("page", "outcome", "status", "reason"),
    [
        (None, "not_fetched", None, None),
        (sample_page(URL, "<h1>Not here</h1><a href='/x'>x</a>", status=404), "fetched", 404, None),
        (sample_page(URL, "<h1>Down</h1>", status=503), "fetched", 503, None),
        (refused(URL), "refused", None, "rate_limited"),
        (refused(URL, "robots", "robots_disallowed"), "refused", None, "robots_disallowed"),
        (refused(URL, "egress", "non_global_address"), "refused", None, "non_global_address"),
        (failed(URL), "failed", None, "timeout"),
        (failed(URL, "decompression_bomb"), "failed", None, "decompression_bomb"),
    ],
    ids=["not-fetched", "404", "503", "rate-limited", "robots", "egress", "timeout", "bomb"],
)
def test_a_page_without_content_gives_a_result_that_says_why(
    page: CrawledPage | None, outcome: str, status: int | None, reason: str | None
) -> None:
    payload = CrawlDomainPagePayload(url=URL, fields=RULES, pages=[page] if page else [])
    result = crawl_domain_page(payload)
    assert (result.fetch.outcome, result.fetch.status, result.fetch.reason) == (outcome, status, reason)
    assert (result.text, result.links, result.text_sha256, result.fields_found) == ("", [], None, 0)
    assert result.fields_asked == 3
    decode_result("crawl_domain_page", result_to_builtins(result))


def test_a_not_modified_answer_has_no_body_and_keeps_the_validators() -> None:
    outcome = FetchedPage(
        fetch_id="f", url=URL, final_url=URL, status=304, etag='"v1"', fetched_at=datetime(2026, 1, 5, tzinfo=UTC)
    )
    result = crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[CrawledPage(url=URL, outcome=outcome)]))
    assert (result.fetch.status, result.fetch.etag, result.text_sha256) == (304, '"v1"', None)


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (InlineDocument(media_type=HTML, data=b"%PDF-1.7 binary", size=15), "media_type_mismatch"),
        (InlineDocument(media_type=HTML, data=b"\x89PNG\r\n\x1a\nxx", size=10), "media_type_mismatch"),
        (InlineDocument(media_type=PDF, data=b"%PDF-1.7 binary", size=15), "media_type_mismatch"),
        (InlineDocument(media_type=HTML, data=b"", size=0), "empty"),
        (DocumentRef(sha256="a" * 64, size=10, media_type=HTML), "not_resolved"),
    ],
    ids=["pdf-as-html", "png-as-html", "pdf-not-crawlable", "empty", "unresolved-reference"],
)
def test_a_body_that_cannot_be_read_is_reported_not_raised(document: Any, error: str) -> None:
    page = msgspec.structs.replace(sample_page(URL, "x"), document=document)
    result = crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[page]))
    assert (result.fetch.outcome, result.fetch.content_error, result.text) == ("fetched", error, "")


def test_a_plain_text_body_is_its_text_and_a_latin1_page_is_decoded() -> None:
    text = b"Deadline: 1 May 2027\n\n  Apply   online."
    page = msgspec.structs.replace(
        sample_page(URL, "x"), document=InlineDocument(media_type=PLAIN_TEXT, data=text, size=len(text))
    )
    assert (
        crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[page])).text == "Deadline: 1 May 2027\nApply online."
    )
    latin = "<h1>Förderung für Gärten</h1><p>Zuschüsse bis 5.000 €.</p>".encode("latin-1", "replace")
    page = msgspec.structs.replace(
        sample_page(URL, "x"), document=InlineDocument(media_type=HTML, data=latin, size=len(latin), charset="latin-1")
    )
    assert crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[page])).title == "Förderung für Gärten"


def test_a_huge_page_is_cut_but_hashed_whole() -> None:
    paragraph = "<p>" + "Community orchards need volunteers and funding every season. " * 40 + "</p>"
    html = "<main><h1>Long</h1>" + "".join(paragraph.replace("every", f"every {i}") for i in range(300)) + "</main>"
    result = crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[sample_page(URL, html)]))
    assert result.text_truncated and len(result.text) <= 50_000 < result.chars
    assert len(msgspec.json.encode(result)) < 768 * 1024


def test_many_links_are_bounded() -> None:
    html = "".join(f"<a href='/p/{i}'>{i}</a>" for i in range(2_000))
    result = crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[sample_page(URL, html)]))
    assert len(result.links) == 500 and result.links_truncated


def test_the_crawl_fetches_exactly_the_url_once() -> None:
    payload = CrawlDomainPagePayload(url=URL)
    pages, rounds = run_crawl(CRAWL_DOMAIN_PAGE, payload, {URL: PAGE})
    assert rounds == [[URL]] and [p.url for p in pages] == [URL]
    spec = CRAWL_DOMAIN_PAGE.crawl
    assert spec is not None
    assert not spec.in_scope(payload, URL + "?x=1")
    assert not spec.in_scope(payload, "https://funder.example/grants/")
    result = run_job("crawl_domain_page", result_to_builtins(spec.with_pages(payload, pages)))
    assert result == crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=pages))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "ftp://funder.example/x"}, "payload.url"),
        ({"url": "https://funder.example/a b"}, "payload.url"),
        ({"url": "https://funder.example/\u00e9"}, "payload.url"),
        ({}, "payload.url"),
        ({"url": URL, "fields": [{"name": "a", "rules": [{"xpath": "document('x')"}]}]}, "payload.fields[0].rules[0]"),
        ({"url": URL, "fields": [{"name": "a", "rules": [{"css": "p"}]}] * 2}, "payload"),
    ],
)
def test_bad_crawl_payloads_are_refused(payload: dict[str, Any], field: str) -> None:
    refusal = payload_refusal("crawl_domain_page", payload)
    assert refusal is not None and (refusal.code, refusal.field) == ("bad_input", field), refusal


# ---- extract_structured_fields -------------------------------------------------------------

LISTING = """<html><body><h1>Open programmes</h1>
<div class="programme"><h2>Orchards</h2><dl><dt>Amount</dt><dd>£2,500</dd><dt>Closes</dt><dd>1 May 2027</dd></dl></div>
<div class="programme"><h2>Youth arts</h2><dl><dt>Amount</dt><dd>up to $10,000</dd></dl></div>
<div class="programme"><h3>Broken markup</h3><dl><dt>Amount<dd>n/a</div>
<table class="rounds"><tr><th>Round</th><th>Budget</th></tr><tr><td>1</td><td>£50,000</td></tr></table>
</body></html>"""
DEEP_FIELDS = [
    Field(name="heading", rules=[Rule(css="h1")]),
    Field(
        name="programmes",
        many=True,
        rules=[Rule(css="div.programme")],
        fields=[
            SubField(name="title", rules=[Rule(css="h2"), Rule(css="h3")]),
            SubField(
                name="amount", rules=[Rule(xpath=".//dt[.='Amount']/following-sibling::dd[1]", convert="decimal")]
            ),
            SubField(name="closes", rules=[Rule(xpath=".//dt[.='Closes']/following-sibling::dd[1]", convert="date")]),
        ],
    ),
    Field(name="rounds", table=True, rules=[Rule(css="table.rounds")]),
    Field(name="contact", rules=[Rule(css=".contact"), Rule(css="footer a")]),
]


def test_nested_fields_tables_and_fallbacks_from_inline_html() -> None:
    result = extract_structured_fields(ExtractStructuredFieldsPayload(html=LISTING, fields=DEEP_FIELDS))
    by_name = {field.name: field for field in result.fields}
    programmes = [{f.name: f.value for f in record.fields} for record in by_name["programmes"].records]
    assert programmes == [
        {"title": "Orchards", "amount": "2500", "closes": "2027-05-01"},
        {"title": "Youth arts", "amount": "10000", "closes": None},
        {"title": "Broken markup", "amount": None, "closes": None},  # a malformed section, handled
    ]
    assert by_name["programmes"].records[2].fields[0].rule == 1  # the fallback h3
    assert (by_name["rounds"].header, by_name["rounds"].rows) == (["Round", "Budget"], [["1", "£50,000"]])
    assert (result.fields_found, result.fields_asked, result.extraction_yield) == (3, 4, 0.75)
    assert result.missing == ["contact"] and result.fetch is None


def test_structured_fields_of_a_crawled_page_and_of_a_failed_fetch() -> None:
    payload = ExtractStructuredFieldsPayload(url=URL, fields=DEEP_FIELDS)
    pages, rounds = run_crawl(EXTRACT_STRUCTURED_FIELDS, payload, {URL: LISTING})
    assert rounds == [[URL]]
    spec = EXTRACT_STRUCTURED_FIELDS.crawl
    assert spec is not None
    result = extract_structured_fields(spec.with_pages(payload, pages))
    assert result.fetch is not None and result.fetch.status == 200 and result.fields_found == 3
    failed_result = extract_structured_fields(spec.with_pages(payload, [failed(URL)]))
    assert failed_result.fetch is not None and failed_result.fetch.reason == "timeout"
    assert (failed_result.fields_found, failed_result.extraction_yield) == (0, 0.0)
    assert failed_result.missing == ["heading", "programmes", "rounds", "contact"]


def test_inline_html_fetches_nothing() -> None:
    payload = ExtractStructuredFieldsPayload(html=LISTING, url=URL, fields=DEEP_FIELDS)
    spec = EXTRACT_STRUCTURED_FIELDS.crawl
    assert spec is not None
    assert spec.max_fetches(payload) == 0 and spec.next_urls(payload, []) == []
    assert not spec.in_scope(payload, URL)


def test_structured_payload_needs_a_page_and_fields() -> None:
    refusal = payload_refusal("extract_structured_fields", {"fields": [{"name": "a", "rules": [{"css": "p"}]}]})
    assert refusal is not None and refusal.field == "payload.url"
    refusal = payload_refusal("extract_structured_fields", {"html": "<p>", "fields": []})
    assert refusal is not None and refusal.field == "payload.fields"


# ---- fetch_document ------------------------------------------------------------------------

DOC_URL = "https://funder.example/docs/guidance.pdf"
PDF_BYTES = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DOCX_BYTES = b"PK\x03\x04" + b"\x00" * 40


def test_an_allowed_document_is_accepted_with_its_reference() -> None:
    result = fetch_document(FetchDocumentPayload(url=DOC_URL, pages=[sample_document(DOC_URL, PDF_BYTES, PDF)]))
    digest = hashlib.sha256(PDF_BYTES).hexdigest()
    assert result.accepted and result.reason is None
    assert result.document == DocumentRef(sha256=digest, size=len(PDF_BYTES), media_type=PDF)
    assert (result.sha256, result.size, result.sniffed) == (digest, len(PDF_BYTES), PDF)
    # the reference is what a parse_pdf job takes
    assert payload_refusal("parse_pdf", {"document": msgspec.to_builtins(result.document)}) is None


def page_with(data: bytes, media_type: Any, **outcome: Any) -> CrawledPage:
    page = sample_document(DOC_URL, data, media_type)
    assert isinstance(page.outcome, FetchedPage)
    return msgspec.structs.replace(page, outcome=msgspec.structs.replace(page.outcome, **outcome))


def doc(*pages: CrawledPage, **change: Any) -> FetchDocumentPayload:
    return FetchDocumentPayload(url=DOC_URL, pages=list(pages), **change)


OTHER_BODY = DocumentRef(sha256="b" * 64, size=len(PDF_BYTES), media_type=PDF)
HUGE_BODY = DocumentRef(sha256="b" * 64, size=50_000_000, media_type=PDF)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (doc(), "not_fetched"),
        (doc(refused(DOC_URL, "allow_list", "domain_not_allowed")), "not_fetched"),
        (doc(failed(DOC_URL, "content_type_not_allowed")), "not_fetched"),
        (doc(page_with(PDF_BYTES, PDF, status=404)), "not_success"),
        (doc(sample_document(DOC_URL, PDF_BYTES, PDF), media_types=[DOCX]), "media_type_not_allowed"),
        (doc(sample_document(DOC_URL, DOCX_BYTES, PDF)), "media_type_mismatch"),
        (doc(sample_document(DOC_URL, PDF_BYTES, DOCX)), "media_type_mismatch"),
        (doc(sample_document(DOC_URL, b"\xff\xd8\xff\xe0JFIF", PLAIN_TEXT)), "media_type_mismatch"),
        (doc(sample_document(DOC_URL, b"\x1f\x8b\x08gzip", PLAIN_TEXT)), "media_type_mismatch"),
        (doc(sample_document(DOC_URL, PDF_BYTES, PDF), max_bytes=10), "too_large"),
        (doc(page_with(PDF_BYTES, PDF, body=HUGE_BODY), max_bytes=1000), "too_large"),
        (doc(page_with(PDF_BYTES, PDF, body=OTHER_BODY)), "body_mismatch"),
        (doc(sample_document(DOC_URL, PDF_BYTES, PDF), expected_sha256="c" * 64), "checksum_mismatch"),
        (doc(msgspec.structs.replace(sample_document(DOC_URL, PDF_BYTES, PDF), document=None)), "body_missing"),
        (doc(sample_document(DOC_URL, PDF_BYTES, PDF), expected_sha256=hashlib.sha256(PDF_BYTES).hexdigest()), None),
    ],
    ids=[
        "not-fetched",
        "refused",
        "failed",
        "404",
        "type-not-asked-for",
        "zip-as-pdf",
        "pdf-as-docx",
        "jpeg-as-text",
        "gzip-as-text",
        "over-max-bytes",
        "stored-size-over-max",
        "not-the-stored-body",
        "not-the-expected-checksum",
        "body-not-read",
        "the-expected-checksum",
    ],
)
def test_documents_are_refused_with_the_reason(payload: FetchDocumentPayload, reason: str | None) -> None:
    result = fetch_document(payload)
    assert result.reason == reason, result
    assert result.accepted == (reason is None)
    assert (result.document is None) == (reason is not None)
    decode_result("fetch_document", result_to_builtins(result))


def test_the_document_crawl_fetches_the_url_once() -> None:
    payload = FetchDocumentPayload(url=DOC_URL)
    spec = FETCH_DOCUMENT.crawl
    assert spec is not None
    assert spec.next_urls(payload, []) == [DOC_URL] and spec.max_fetches(payload) == 1
    assert spec.next_urls(payload, [sample_document(DOC_URL, PDF_BYTES, PDF)]) == []
    assert spec.in_scope(payload, DOC_URL) and not spec.in_scope(payload, DOC_URL + "x")


@pytest.mark.parametrize(
    "job_type", ["crawl_domain_page", "extract_structured_fields", "crawl_multi_hop", "fetch_document"]
)
def test_crawl_job_types_need_crawl_consent_and_have_a_crawl_spec(job_type: str) -> None:
    job = JOB_TYPES[job_type]
    assert job.consent_scope == "crawl"
    assert job.crawl is not None


def test_a_final_url_that_a_result_cannot_carry_is_left_out() -> None:
    page = sample_page(URL, "<a href='x'>x</a>")
    assert isinstance(page.outcome, FetchedPage)
    odd = msgspec.structs.replace(page, outcome=msgspec.structs.replace(page.outcome, final_url=URL + "/é ü"))
    result = crawl_domain_page(CrawlDomainPagePayload(url=URL, pages=[odd]))
    assert result.fetch.final_url is None and result.fetch.status == 200
    decode_result("crawl_domain_page", result_to_builtins(result))
