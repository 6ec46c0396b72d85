"""Job type `extract_text` (CC-70): clean main text, title and language of an HTML page, a
PDF, a DOCX or a plain-text document, given inline or by reference (ccn_jobs.documents).

HTML: the main text is found by trafilatura in recall mode, with comments off and key-facts
tables kept (grant pages often put the amount and the deadline there), between two passes of
ccn_jobs.html_boilerplate: before it, layout tables become blocks and accordion questions held
in buttons become text; after it, the title (the page's first h1, else og:title or <title>,
returned as `title` and not repeated in the text), lines that are only menu links, and page
furniture (bylines, dates, share and print prompts, copyright lines) are dropped, and headings
that recall mode lost are put back. On a thin page the text stands only if precision mode
finds main text too. On the held-out pages of ccn_jobs.html_eval_corpus this scores above
trafilatura alone in any mode (the `html` bench group). PDF (PyMuPDF): text in reading order, page by page, without the
running headers, footers and page numbers that repeat in the margins (ccn_jobs.pdf_reading).
DOCX (python-docx): body paragraphs and table rows, not headers and footers, after the ZIP has
been proven small (ccn_jobs.docx_reading). Plain text as it is. Bytes are decoded by
ccn_jobs.text_decoding, and every text is normalised alike (ccn_jobs.text_normalisation).

Determinism: several nodes run the same job and their results are compared by checksum, so
the output depends on the payload alone. trafilatura's cross-document deduplication cache is
off, its metadata search (with dates, which htmldate judges against today's date) is not run, the
language probability, a float32 computation, is rounded before it enters `confidence`. Results
are comparable between nodes with the same pinned trafilatura, PyMuPDF, python-docx,
charset-normalizer and py3langid (uv.lock); a change of any that alters output must bump
`VERSION`, which every result carries as `extractor_version`.

Bounds: HTML given inline is at most `MAX_HTML_CHARS` characters, inline bytes at most
`MAX_INLINE_BYTES`, a referenced body at most `MAX_REFERENCED_BYTES` (all checked when the
payload is decoded); a PDF at most the payload's `max_pages` pages, read within its
`time_limit_s` (checked between pages); the text kept at most `MAX_TEXT_CHARS`, the title at
most `MAX_TITLE_CHARS`. A document that cannot be read fails the job with a typed reason
(DocumentRefused); an HTML page that yields nothing gives an empty result."""

from __future__ import annotations

from typing import Any

from ccn_jobs.documents import Body, Deadline, checked_body
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.html_boilerplate import corrected_lines
from ccn_jobs.job_type import JobType
from ccn_jobs.result_rules import Allowed, Bounds, Format, Mandatory, ResultRules, Size, When
from ccn_jobs.text_decoding import decode_text
from ccn_jobs.text_normalisation import CONFIDENCE_DIGITS, clean_line, clean_text, identify_language, valid_unicode
from ccn_proto.documents import (
    DOCX,
    HTML,
    MAX_HTML_CHARS,
    MAX_INLINE_BYTES,
    MAX_PAGES_CAP,
    MAX_REFERENCED_BYTES,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    MAX_URL_CHARS,
    PDF,
    PLAIN_TEXT,
    ExtractTextPayload,
    ExtractTextResult,
    MediaType,
)

__all__ = [
    "EMPTY_RESULT",
    "EXTRACT_TEXT",
    "MAX_HTML_CHARS",
    "MAX_INLINE_BYTES",
    "MAX_REFERENCED_BYTES",
    "MAX_TEXT_CHARS",
    "MAX_TITLE_CHARS",
    "MAX_URL_CHARS",
    "ExtractTextPayload",
    "ExtractTextResult",
    "extract_text",
]

NAME = "extract_text"
VERSION = "3"

MAX_PLAIN_TEXT_READ_CHARS = MAX_HTML_CHARS
FULL_CONFIDENCE_CHARS = 250  # trafilatura's own MIN_EXTRACTED_SIZE: below it, a page is thin
ACCEPTED_MEDIA_TYPES = frozenset({HTML, PLAIN_TEXT, PDF, DOCX})

EMPTY_RESULT = ExtractTextResult(
    text="", title=None, language=None, confidence=0.0, chars=0, media_type=HTML, extractor_version=VERSION
)


def extract_text(payload: ExtractTextPayload) -> ExtractTextResult:
    """Extract a document's main text, title and language. A readable document that yields no
    text (an empty or all-boilerplate page, a scanned PDF) gives empty text and confidence 0;
    one that cannot be read raises DocumentRefused.

    confidence = extraction x (0.5 + 0.5 x language), rounded to 4 digits, where
      extraction = min(1, chars / 250): how much main text was found (0 when none), and for a
                   PDF times the share of its pages that have text;
      language   = the identifier's normalised probability for the chosen language, or 0 when
                   no language was chosen (probability below 0.5, or not language at all).
    So a long page in a clearly identified language scores near 1, a long page whose language is
    unclear at most 0.5, and a thin page proportionally less."""
    if payload.document is None:
        return _from_html(payload.html or "", payload.url)
    deadline = Deadline(payload.time_limit_s, NAME)
    body = checked_body(payload.document, NAME, ACCEPTED_MEDIA_TYPES)
    if body.media_type == HTML:
        html = _text_of(body)
        if len(html) > MAX_HTML_CHARS:
            raise DocumentRefused(NAME, "too_large", f"the HTML has {len(html)} characters; at most {MAX_HTML_CHARS}")
        return _from_html(html, payload.url)
    if body.media_type == PLAIN_TEXT:
        # Cleaning only shortens text, and at most MAX_TEXT_CHARS are kept: the rest is not read.
        return _result(clean_text(_text_of(body)[:MAX_PLAIN_TEXT_READ_CHARS]), None, PLAIN_TEXT)
    assert body.data is not None  # checked_body gives bytes for the binary formats
    if body.media_type == PDF:
        return _from_pdf(body.data, payload.max_pages, deadline)
    return _from_docx(body.data, deadline)


def _text_of(body: Body) -> str:
    if body.text is not None:
        return body.text
    assert body.data is not None
    return decode_text(body.data, body.charset)[0]


def _result(
    text: str, title: str | None, media_type: MediaType, pages: int | None = None, share: float = 1.0
) -> ExtractTextResult:
    text = text[:MAX_TEXT_CHARS].rstrip()
    title = clean_line(title or "")[:MAX_TITLE_CHARS].rstrip() or None
    if not text:
        return ExtractTextResult(
            text="",
            title=title,
            language=None,
            confidence=0.0,
            chars=0,
            media_type=media_type,
            pages=pages,
            extractor_version=VERSION,
        )
    language, probability = identify_language(text)
    extraction = min(1.0, len(text) / FULL_CONFIDENCE_CHARS) * share
    confidence = round(extraction * (0.5 + 0.5 * probability), CONFIDENCE_DIGITS)
    return ExtractTextResult(
        text=text,
        title=title,
        language=language,
        confidence=confidence,
        chars=len(text),
        media_type=media_type,
        pages=pages,
        extractor_version=VERSION,
    )


def _from_html(html: str, url: str | None) -> ExtractTextResult:
    extracted = _extract_html(valid_unicode(html), url)
    if extracted is None:
        return EMPTY_RESULT
    text, title = extracted
    return _result(text, title, HTML)


def _from_pdf(data: bytes, max_pages: int, deadline: Deadline) -> ExtractTextResult:
    from ccn_jobs.pdf_reading import furniture, open_pdf, paragraphs, read_pages

    document = open_pdf(data, NAME, max_pages)
    try:
        pages = [lines for _page, lines in read_pages(document, NAME, deadline)]
        title = clean_line(document.metadata.get("title") or "") if document.metadata else ""
    finally:
        document.close()
    keys = furniture(pages)
    text = "\n".join(paragraph for page in pages for paragraph in paragraphs(page, keys))
    with_text = sum(1 for page in pages if not page.scanned and page.chars > 0)
    return _result(clean_text(text), title or None, PDF, pages=len(pages), share=with_text / len(pages))


def _from_docx(data: bytes, deadline: Deadline) -> ExtractTextResult:
    from ccn_jobs.docx_reading import read_docx

    docx = read_docx(data, NAME, deadline)
    return _result(clean_text(docx.text), docx.title, DOCX)


def _extract_html(html: str, url: str | None) -> tuple[str, str | None] | None:
    """(main text, title), or None when the page cannot be read. trafilatura in recall mode
    finds the main text, between html_boilerplate's preparation and corrections."""
    # Imported here, like the language model below, so that a scheduler validating payloads
    # never loads lxml and the extractors.
    import trafilatura

    from ccn_jobs.html_boilerplate import prepare

    if not html.strip():
        return None
    # Untrusted input meets a parser stack (lxml, trafilatura, justext) whose failure modes are
    # not all typed or documented; any failure means "nothing extracted".
    try:
        tree = trafilatura.load_html(html)
        if tree is None:
            return None
        prepared = prepare(tree)
        titles = [prepared.title] if prepared.title else []
        text = "\n".join(corrected_lines(_trafilatura_lines(tree, url, favor_recall=True), prepared, titles))
        if len(text) < FULL_CONFIDENCE_CHARS:
            # On a thin page recall mode keeps whatever it finds, a newsletter box included:
            # its text stands only where precision mode, on a fresh tree, finds main text too.
            fresh = trafilatura.load_html(html)
            if fresh is None:
                return None
            prepare(fresh)
            if not _trafilatura_lines(fresh, url, favor_recall=False):
                text = ""
    except Exception:
        return None
    return text, prepared.title


def _trafilatura_lines(tree: Any, url: str | None, *, favor_recall: bool) -> list[str]:
    # `tree` is an lxml HtmlElement: lxml ships no type information, hence Any
    import trafilatura
    from trafilatura.settings import Document

    document = trafilatura.bare_extraction(
        tree,
        url=url,
        favor_recall=favor_recall,
        favor_precision=not favor_recall,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        include_formatting=False,
        deduplicate=False,
        # The title is the page's own (html_boilerplate.prepare); trafilatura's metadata
        # search (dates, authors, site names) would cost a quarter of the time for nothing.
        with_metadata=False,
    )
    if not isinstance(document, Document):
        return []
    return clean_text(document.text or "").splitlines()


# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="extractor_version", values=(VERSION,), note="results of another extractor are not comparable"),
        Format(path="language", format="language_code"),
        Bounds(path="confidence", le=0.0, when=When(field="chars", is_in=(0,)), note="no text, no confidence"),
        Mandatory(path="pages", when=When(field="media_type", is_in=(PDF,)), note="a PDF's result counts its pages"),
        Bounds(path="pages", ge=1, le=MAX_PAGES_CAP),
        Size(path="title", max_length=MAX_TITLE_CHARS),
    ),
)

EXTRACT_TEXT: JobType[ExtractTextPayload, ExtractTextResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=ExtractTextPayload,
    result_type=ExtractTextResult,
    result_rules=RESULT_RULES,
    handler=extract_text,
    consent_scope="documents",
    description="Main text, title and language of an HTML page, a PDF, a DOCX or plain text (CC-70)",
    sample_payloads=(
        ExtractTextPayload(
            html="<html><head><title>Seed grants</title></head><body><nav>Home | About</nav><article>"
            "<h1>Community seed grants</h1><p>Grants of up to $5,000 for volunteer-led groups planting "
            "orchards and community gardens. Applications close on 31 March.</p></article></body></html>",
            url="https://funder.example/grants/seed",
        ),
        ExtractTextPayload(html=""),
    ),
)
