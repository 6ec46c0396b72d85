"""A tiny crawl job type for the node's crawl loop tests: it starts at `start`, follows every
`link: <url>` line of the plain-text pages it fetched (within `start`'s origin), up to
`max_pages`, and its result lists each page's outcome and body digest."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from ccn_jobs.crawl import CrawledPage, CrawlSpec
from ccn_jobs.job_type import JobType
from ccn_proto.fetch import FetchedPage, FetchFailed, FetchRefused


class LinkCrawlPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: str
    max_pages: int = 5
    pages: list[CrawledPage] = msgspec.field(default_factory=list)


class PageSummary(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    outcome: str  # fetched:<status>, refused:<reason>, failed:<reason>
    sha256: str | None = None


class LinkCrawlResult(msgspec.Struct, frozen=True, kw_only=True):
    pages: list[PageSummary]


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def in_scope(payload: LinkCrawlPayload, url: str) -> bool:
    return _origin(url) == _origin(payload.start)


def links(page: CrawledPage) -> list[str]:
    if page.document is None:
        return []
    text = page.document.data.decode("utf-8", "replace")
    return [line.removeprefix("link: ").strip() for line in text.splitlines() if line.startswith("link: ")]


def next_urls(payload: LinkCrawlPayload, pages: Sequence[CrawledPage]) -> list[str]:
    if not pages:
        return [payload.start]
    fetched = {page.url for page in pages}
    found = [url for page in pages for url in links(page)]
    return list(dict.fromkeys(url for url in found if url not in fetched and in_scope(payload, url)))


def summary(page: CrawledPage) -> PageSummary:
    match page.outcome:
        case FetchedPage(status=status):
            digest = hashlib.sha256(page.document.data).hexdigest() if page.document is not None else None
            return PageSummary(url=page.url, outcome=f"fetched:{status}", sha256=digest)
        case FetchRefused(reason=reason):
            return PageSummary(url=page.url, outcome=f"refused:{reason}")
        case FetchFailed(reason=reason):
            return PageSummary(url=page.url, outcome=f"failed:{reason}")


def handle(payload: LinkCrawlPayload) -> LinkCrawlResult:
    return LinkCrawlResult(pages=[summary(page) for page in payload.pages])


LINK_CRAWL: JobType[LinkCrawlPayload, LinkCrawlResult] = JobType(
    name="link_crawl_test",
    version="1",
    payload_type=LinkCrawlPayload,
    result_type=LinkCrawlResult,
    handler=handle,
    consent_scope="crawl",
    crawl=CrawlSpec(
        in_scope=in_scope,
        next_urls=next_urls,
        with_pages=lambda payload, pages: msgspec.structs.replace(payload, pages=pages),
        max_fetches=lambda payload: payload.max_pages,
    ),
)
