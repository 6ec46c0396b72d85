"""Pages as the node's crawl loop hands them to a crawl job, and that loop itself over a fixture
web held in memory: what the crawl job types' tests run on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ccn_jobs.crawl import CrawledPage
from ccn_jobs.crawl_domain_page import sample_page
from ccn_jobs.job_type import JobType
from ccn_proto.fetch import FetchFailed, FetchRefused

FETCHED_AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
Site = Mapping[str, str] | Callable[[str], str | None]


def refused(url: str, stage: Any = "rate_limit", reason: str = "rate_limited") -> CrawledPage:
    return CrawledPage(url=url, outcome=FetchRefused(fetch_id="f", url=url, stage=stage, reason=reason, detail="no"))


def failed(url: str, reason: Any = "timeout") -> CrawledPage:
    return CrawledPage(url=url, outcome=FetchFailed(fetch_id="f", url=url, reason=reason, elapsed_ms=5.0))


def fetch_from(site: Site, url: str) -> CrawledPage:
    """The page at `url` in the fixture web (HTML by URL, or a function of the URL), a 404
    page when it has none."""
    html = site(url) if callable(site) else site.get(url)
    return sample_page(url, html) if html is not None else sample_page(url, "<h1>Not found</h1>", status=404)


def run_crawl(job: JobType[Any, Any], payload: Any, site: Site) -> tuple[list[CrawledPage], list[list[str]]]:
    """The node's crawl loop: ask `next_urls`, fetch each URL, until it asks for nothing or the
    job's fetches are spent. Checks the spec's promises as it goes: every URL asked for is in
    scope, none is asked for twice, no call asks for more than the fetches left."""
    spec = job.crawl
    assert spec is not None
    limit = spec.max_fetches(payload)
    pages: list[CrawledPage] = []
    asked: set[str] = set()
    rounds: list[list[str]] = []
    while len(pages) < limit:
        urls = spec.next_urls(payload, pages)
        if not urls:
            break
        rounds.append(urls)
        assert len(urls) <= limit - len(pages), (urls, limit, len(pages))
        for url in urls:
            assert url not in asked, f"{url} asked for twice"
            assert spec.in_scope(payload, url), f"{url} asked for, but not in scope"
            asked.add(url)
            pages.append(fetch_from(site, url))
    assert len(pages) <= limit <= 200
    return pages, rounds
