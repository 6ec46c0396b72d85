"""What the crawl job types share: how a fetched page reads (its outcome in short, its HTML, its
links) and the crawl spec of a job that fetches exactly one URL.

A page's outcome is the proxy's answer (ccn_proto.fetch): `fetched` with the site's status, or
`refused` or `failed` with the proxy's reason code. Only a fetched 2xx page with a body has
content; its body is checked against its declared media type (ccn_jobs.documents.checked_body:
a PDF served as HTML is not parsed as HTML) and decoded (ccn_jobs.text_decoding). A body that
cannot be read is reported as the page's `content_error`, not raised: the crawl result says
what happened to each page, whatever happened."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec

from ccn_jobs.crawl import MAX_FETCHES_PER_JOB, CrawledPage, CrawlSpec
from ccn_jobs.documents import checked_body
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.extraction_rules import MAX_URL_CHARS, absolute_url, element_text
from ccn_jobs.text_decoding import decode_text
from ccn_jobs.text_normalisation import clean_line
from ccn_proto.constraints import END, SINGLE_LINE_PATTERN, Sha256Hex
from ccn_proto.documents import HTML, MAX_HTML_CHARS, PLAIN_TEXT, InlineDocument
from ccn_proto.fetch import FetchedPage, FetchFailed, FetchRefused

if TYPE_CHECKING:
    from lxml.html import HtmlElement  # type: ignore[import-untyped]

MAX_LINKS: Final = 500
CrawlUrl = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_URL_CHARS,
        pattern=rf"^https?://[\x21-\x7e]+{END}",
        description="an http(s) URL in printable ASCII",
    ),
]
Pages = Annotated[list[CrawledPage], msgspec.Meta(max_length=MAX_FETCHES_PER_JOB)]
Code = Annotated[str, msgspec.Meta(max_length=128, pattern=SINGLE_LINE_PATTERN)]
Detail = Annotated[str, msgspec.Meta(max_length=1000, pattern=SINGLE_LINE_PATTERN)]
HeaderValue = Annotated[str, msgspec.Meta(max_length=256, pattern=SINGLE_LINE_PATTERN)]
Outcome = Literal["fetched", "refused", "failed", "not_fetched"]
READABLE: Final = frozenset({HTML, PLAIN_TEXT})
_PRINTABLE_URL = re.compile(rf"^[\x21-\x7e]{{1,8192}}{END}")


class PageFetch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One fetch in short. `status`, `final_url`, `content_type`, the validators and
    `body_sha256` for a fetched page; `reason` (the proxy's code) and `detail` otherwise;
    `content_error` when a fetched body could not be read (its DocumentRefused code)."""

    url: CrawlUrl
    outcome: Outcome
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] | None = None
    final_url: Annotated[str, msgspec.Meta(max_length=8192, pattern=rf"^[\x21-\x7e]*{END}")] | None = None
    content_type: HeaderValue | None = None
    etag: HeaderValue | None = None
    last_modified: HeaderValue | None = None
    body_sha256: Sha256Hex | None = None
    reason: Code | None = None
    detail: Detail = ""
    content_error: Code | None = None


def page_fetch(url: str, page: CrawledPage | None, content_error: str | None = None) -> PageFetch:
    if page is None:
        return PageFetch(url=url, outcome="not_fetched")
    outcome = page.outcome
    if isinstance(outcome, FetchedPage):
        return PageFetch(
            url=url,
            outcome="fetched",
            status=outcome.status,
            final_url=outcome.final_url if _PRINTABLE_URL.match(outcome.final_url) else None,
            content_type=_line(outcome.content_type, 256),
            etag=_line(outcome.etag, 256),
            last_modified=_line(outcome.last_modified, 256),
            body_sha256=outcome.body.sha256 if outcome.body is not None else None,
            content_error=content_error,
        )
    kind: Outcome = "refused" if isinstance(outcome, FetchRefused) else "failed"
    reason = outcome.reason if isinstance(outcome, FetchRefused | FetchFailed) else None
    return PageFetch(url=url, outcome=kind, reason=_line(reason, 128), detail=_line(outcome.detail, 1000) or "")


def _line(value: str | None, limit: int) -> str | None:
    return clean_line(value)[:limit] or None if value is not None else None


class PageContent(msgspec.Struct, frozen=True, kw_only=True):
    """A page's readable body: `html` for an HTML page, `text` for a plain-text one."""

    media_type: str
    html: str | None = None
    text: str | None = None


def page_content(page: CrawledPage | None, job_type: str) -> tuple[PageContent | None, str | None]:
    """(the page's content, None) for a fetched 2xx page with a readable body; (None, the code
    of why its body cannot be read) when it has one that cannot; (None, None) otherwise."""
    if page is None or page.document is None or not is_success(page):
        return None, None
    return document_content(page.document, job_type)


def is_success(page: CrawledPage) -> bool:
    return isinstance(page.outcome, FetchedPage) and 200 <= page.outcome.status < 300


def document_content(document: InlineDocument, job_type: str) -> tuple[PageContent | None, str | None]:
    try:
        body = checked_body(document, job_type, READABLE)
    except DocumentRefused as refused:
        return None, refused.code
    if body.text is not None:
        text = body.text
    else:
        assert body.data is not None  # checked_body gives bytes when it gives no text
        text = decode_text(body.data, body.charset)[0]
    if len(text) > MAX_HTML_CHARS:
        return None, "too_large"
    if body.media_type == HTML:
        return PageContent(media_type=HTML, html=text), None
    return PageContent(media_type=PLAIN_TEXT, text=text), None


def final_url(url: str, page: CrawledPage | None) -> str:
    """Where the page was after redirects: the base its relative links resolve against."""
    if page is not None and isinstance(page.outcome, FetchedPage):
        return page.outcome.final_url
    return url


def page_links(tree: HtmlElement | None, page_url: str) -> tuple[list[str], bool]:
    """The page's outgoing links in document order, each once, made absolute against the page
    (or its <base href>), at most MAX_LINKS (the flag says more were cut). Links a page marks
    `rel=nofollow` are left out, as a polite crawler leaves them."""
    if tree is None:
        return [], False
    base = page_url
    for element in tree.iter("base"):
        href = element.get("href")
        if href:
            base = absolute_url(href, page_url) or page_url
        break
    links: list[str] = []
    seen: set[str] = set()
    for element in tree.iter("a", "area"):
        href = element.get("href")
        if not href or "nofollow" in (element.get("rel") or "").lower().split():
            continue
        link = absolute_url(href[: MAX_URL_CHARS * 2], base)
        if link is None or link in seen:
            continue
        if len(links) >= MAX_LINKS:
            return links, True
        seen.add(link)
        links.append(link)
    return links, False


def page_title(tree: HtmlElement | None) -> str | None:
    """The <title>, else the first <h1>; None when neither says anything."""
    if tree is None:
        return None
    for tag in ("title", "h1"):
        for element in tree.iter(tag):
            title = element_text(element, 1000)
            if title:
                return title
    return None


def single_url_crawl() -> CrawlSpec[Any]:
    """The crawl of a job that fetches its `url` once (unless it carries its page as `html`):
    in scope is exactly that URL. Any: it serves every payload with `url` and `pages`."""

    def in_scope(payload: Any, url: str) -> bool:
        return bool(fetches_url(payload)) and url == payload.url

    def next_urls(payload: Any, pages: Sequence[CrawledPage]) -> list[str]:
        return [payload.url] if fetches_url(payload) and not pages else []

    def with_pages(payload: Any, pages: list[CrawledPage]) -> Any:
        return msgspec.structs.replace(payload, pages=pages[:1])

    def max_fetches(payload: Any) -> int:
        return 1 if fetches_url(payload) else 0

    def fetches_url(payload: Any) -> bool:
        return getattr(payload, "url", None) is not None and getattr(payload, "html", None) is None

    def validators(payload: Any, url: str) -> tuple[str | None, str | None]:
        """A payload's `if_none_match` and `if_modified_since`, for its own URL (a recrawl)."""
        if not in_scope(payload, url):
            return None, None
        return getattr(payload, "if_none_match", None), getattr(payload, "if_modified_since", None)

    return CrawlSpec(
        in_scope=in_scope, next_urls=next_urls, with_pages=with_pages, max_fetches=max_fetches, validators=validators
    )


def the_page(pages: Sequence[CrawledPage], url: str) -> CrawledPage | None:
    """The fetch of `url` among the pages (the node's loop fetched it once, or not at all)."""
    return next((page for page in pages if page.url == url), None)
