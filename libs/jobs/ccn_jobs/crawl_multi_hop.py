"""Job type `crawl_multi_hop` (CC-61): from seed URLs, follow a site's own links breadth-first,
within its domain, its URL patterns and the job's hop and page limits, and report every page
fetched and every in-scope URL found but not fetched.

Scope (`in_scope`, which the fetch proxy also checks): a seed, or an http(s) URL on the seeds'
host (or, with `include_subdomains`, a host under it) that an `allow` pattern matches (any URL
when there are none) and no `deny` pattern does. Patterns are RE2 (linear time), searched in at
most MAX_REGEX_INPUT_CHARS of the URL. Every seed must be on the first seed's host.

The walk (`walk`) is a pure function of the payload and the pages fetched so far, replayed in
full on each call: seeds at hop 0, then each fetched page's links in document order, each URL
once (the `seen` set also holds where a page redirected to), links followed only from pages on
the domain and below `max_hops`. `next_urls` returns the walk's URLs not fetched yet, in
breadth-first order, at most the pages left of `max_pages` (never above MAX_FETCHES_PER_JOB).
Since the node fetches every URL it is given (a refusal or failure is a page too), a URL once
returned is a page from then on and is never returned again; a cycle of links is a URL seen
twice, and a link trap that makes new URLs forever runs into the hop and page limits. Links are
made absolute as a browser resolves them (crawled_pages.page_links), not canonicalised: the
crawl frontier canonicalises with ccn_core.canonical_url, which this library (below ccn_core)
cannot import.

The handler replays the walk once more over the pages the node fetched, so a node cannot add
pages the walk would not have asked for: such pages are ignored."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

import msgspec

from ccn_jobs.crawl import MAX_FETCHES_PER_JOB, CrawledPage, CrawlSpec
from ccn_jobs.crawl_domain_page import sample_page
from ccn_jobs.crawled_pages import (
    CrawlUrl,
    PageFetch,
    Pages,
    document_content,
    final_url,
    is_success,
    page_content,
    page_fetch,
    page_links,
    page_title,
)
from ccn_jobs.extraction_rules import MAX_REGEX_INPUT_CHARS, Pattern, absolute_url, compiled_regex, parse_html
from ccn_jobs.job_type import JobType
from ccn_jobs.result_rules import Allowed, Bounds, Format, LessThan, Mandatory, ResultRules
from ccn_proto.constraints import MULTI_LINE_PATTERN, Version
from ccn_proto.documents import InlineDocument
from ccn_proto.fetch import FetchedPage, FetchFailed, FetchRefused

NAME = "crawl_multi_hop"
VERSION = "1"

MAX_SEEDS: Final = 20
MAX_PATTERNS: Final = 20
MAX_HOPS: Final = 10
MAX_DISCOVERED: Final = 500
# the pages' and the discovered URLs' JSON: past these the lists are cut (and say so)
MAX_PAGES_BYTES: Final = 400_000
MAX_DISCOVERED_BYTES: Final = 150_000

Hop = Annotated[int, msgspec.Meta(ge=0, le=MAX_HOPS)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300, pattern=MULTI_LINE_PATTERN)]
Host = Annotated[str, msgspec.Meta(min_length=1, max_length=253, pattern=r"^[a-z0-9._\-\[\]:]+$")]


class CrawlMultiHopPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`max_hops`: how many links away from a seed the crawl goes (0: the seeds alone);
    `max_pages`: fetches in all; `pages`: the fetches, put in by the node's crawl loop."""

    seeds: Annotated[list[CrawlUrl], msgspec.Meta(min_length=1, max_length=MAX_SEEDS)]
    include_subdomains: bool = False
    allow: Annotated[list[Pattern], msgspec.Meta(max_length=MAX_PATTERNS)] = msgspec.field(default_factory=list)
    deny: Annotated[list[Pattern], msgspec.Meta(max_length=MAX_PATTERNS)] = msgspec.field(default_factory=list)
    max_hops: Hop = 2
    max_pages: Annotated[int, msgspec.Meta(ge=1, le=MAX_FETCHES_PER_JOB)] = 20
    pages: Pages = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        for pattern in (*self.allow, *self.deny):
            compiled_regex(pattern)
        domain = host_of(self.seeds[0])
        if domain is None or absolute_url(self.seeds[0], None) != self.seeds[0]:
            raise ValueError(f"the seed {self.seeds[0][:100]!r} is not an http(s) URL with a host")
        for seed in self.seeds:
            if absolute_url(seed, None) != seed or not _on_domain(host_of(seed), domain, self.include_subdomains):
                raise ValueError(f"the seed {seed[:100]!r} is not a URL on {domain}")

    @property
    def domain(self) -> str:
        return host_of(self.seeds[0]) or ""


class HopPage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A page the crawl fetched: how far from a seed, what the fetch gave, its title, and how
    many links it had (`links`) of which how many were new and in scope (`links_followed`)."""

    hop: Hop
    fetch: PageFetch
    title: Title | None = None
    links: Count = 0
    links_followed: Count = 0


class CrawlMultiHopResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`pages` in the order fetched (breadth-first); `discovered`: in-scope URLs found and not
    fetched; `stopped_by`: `done` when nothing in scope was left, `max_pages` when the page
    limit left some. `*_truncated`: the list was cut to keep the result within its bound."""

    domain: Host
    pages: Annotated[list[HopPage], msgspec.Meta(max_length=MAX_FETCHES_PER_JOB)]
    pages_truncated: bool
    pages_fetched: Count
    pages_refused: Count
    pages_failed: Count
    deepest_hop: Hop
    discovered: Annotated[list[CrawlUrl], msgspec.Meta(max_length=MAX_DISCOVERED)]
    discovered_truncated: bool
    stopped_by: Literal["done", "max_pages"]
    crawler_version: Version


def host_of(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


def _on_domain(host: str | None, domain: str, include_subdomains: bool) -> bool:
    return host is not None and (host == domain or (include_subdomains and host.endswith("." + domain)))


def in_scope(payload: CrawlMultiHopPayload, url: str) -> bool:
    if url in payload.seeds:
        return True
    return absolute_url(url, None) == url and _scope_of(payload)(url)


def _scope_of(payload: CrawlMultiHopPayload) -> Callable[[str], bool]:
    """Whether a URL in the crawl's own form (crawled_pages.page_links makes them) is in scope:
    the domain and the patterns, read once for the many links of a walk."""
    domain = payload.domain
    allow = [compiled_regex(pattern) for pattern in payload.allow]
    deny = [compiled_regex(pattern) for pattern in payload.deny]

    def check(url: str) -> bool:
        if not _on_domain(host_of(url), domain, payload.include_subdomains):
            return False
        probe = url[:MAX_REGEX_INPUT_CHARS]
        if allow and not any(pattern.search(probe) for pattern in allow):
            return False
        return not any(pattern.search(probe) for pattern in deny)

    return check


@dataclass(frozen=True, slots=True)
class Visit:
    url: str
    hop: int
    page: CrawledPage | None
    links: int = 0
    followed: int = 0


def walk(payload: CrawlMultiHopPayload, pages: Sequence[CrawledPage]) -> list[Visit]:
    """Every URL the crawl has reached, breadth-first: fetched ones with their page, the rest
    (the next to fetch) without."""
    fetched: dict[str, CrawledPage] = {}
    for crawled in pages:
        fetched.setdefault(crawled.url, crawled)
    seen: set[str] = set()
    queue: deque[tuple[str, int]] = deque()
    for seed in payload.seeds:
        if seed not in seen:
            seen.add(seed)
            queue.append((seed, 0))
    visits: list[Visit] = []
    domain = payload.domain
    link_in_scope = _scope_of(payload)
    while queue:
        url, hop = queue.popleft()
        page = fetched.get(url)
        if page is None or hop >= payload.max_hops:
            visits.append(Visit(url, hop, page))
            continue
        landed = final_url(url, page)
        seen.add(landed)
        links = _links(page, landed) if _on_domain(host_of(landed), domain, payload.include_subdomains) else ()
        followed = 0
        for link in links:
            if link not in seen and link_in_scope(link):
                seen.add(link)
                queue.append((link, hop + 1))
                followed += 1
        visits.append(Visit(url, hop, page, len(links), followed))
    return visits


def _links(page: CrawledPage, base: str) -> tuple[str, ...]:
    if page.document is None or not is_success(page):
        return ()
    return _links_of(base, page.document)


# The walk is replayed on every call of next_urls: each body is parsed once per process.
@functools.lru_cache(maxsize=MAX_FETCHES_PER_JOB)
def _links_of(base: str, document: InlineDocument) -> tuple[str, ...]:
    content, _error = document_content(document, NAME)
    if content is None or content.html is None:
        return ()
    return tuple(page_links(parse_html(content.html), base)[0])


def next_urls(payload: CrawlMultiHopPayload, pages: Sequence[CrawledPage]) -> list[str]:
    left = payload.max_pages - len(pages)
    if left <= 0:
        return []
    return [visit.url for visit in walk(payload, pages) if visit.page is None][:left]


def with_pages(payload: CrawlMultiHopPayload, pages: list[CrawledPage]) -> CrawlMultiHopPayload:
    return msgspec.structs.replace(payload, pages=pages[: payload.max_pages])


def max_fetches(payload: CrawlMultiHopPayload) -> int:
    return min(payload.max_pages, MAX_FETCHES_PER_JOB)


def crawl_multi_hop(payload: CrawlMultiHopPayload) -> CrawlMultiHopResult:
    visits = walk(payload, payload.pages)
    reached = [visit for visit in visits if visit.page is not None]
    waiting = [visit.url for visit in visits if visit.page is None]
    hop_pages: list[HopPage] = []
    budget = MAX_PAGES_BYTES
    for visit in reached:
        hop_page = _hop_page(visit)
        budget -= len(msgspec.json.encode(hop_page))
        if budget < 0:
            break
        hop_pages.append(hop_page)
    discovered: list[str] = []
    budget = MAX_DISCOVERED_BYTES
    for url in waiting[:MAX_DISCOVERED]:
        budget -= len(url) + 3
        if budget < 0:
            break
        discovered.append(url)
    outcomes = [visit.page.outcome for visit in reached if visit.page is not None]
    return CrawlMultiHopResult(
        domain=payload.domain,
        pages=hop_pages,
        pages_truncated=len(hop_pages) < len(reached),
        pages_fetched=sum(1 for outcome in outcomes if isinstance(outcome, FetchedPage)),
        pages_refused=sum(1 for outcome in outcomes if isinstance(outcome, FetchRefused)),
        pages_failed=sum(1 for outcome in outcomes if isinstance(outcome, FetchFailed)),
        deepest_hop=max((visit.hop for visit in reached), default=0),
        discovered=discovered,
        discovered_truncated=len(discovered) < len(waiting),
        stopped_by="max_pages" if waiting else "done",
        crawler_version=VERSION,
    )


def _hop_page(visit: Visit) -> HopPage:
    content, content_error = page_content(visit.page, NAME)
    title = page_title(parse_html(content.html)) if content is not None and content.html is not None else None
    return HopPage(
        hop=visit.hop,
        fetch=page_fetch(visit.url, visit.page, content_error),
        title=title[:300] if title else None,
        links=visit.links,
        links_followed=visit.followed,
    )


_SITE = "https://funder.example"
_SAMPLE_PAGES = {
    f"{_SITE}/": "<title>Home</title><a href='/grants'>Grants</a> <a href='/about'>About</a> "
    "<a href='https://elsewhere.example/'>Partner</a> <a href='/login'>Log in</a>",
    f"{_SITE}/grants": "<title>Grants</title><a href='/grants/seed'>Seed</a> <a href='/'>Home</a> "
    "<a href='/grants/seed#apply'>Apply</a> <a href='/grants?page=2'>Next</a>",
    f"{_SITE}/about": "<title>About us</title><a href='/'>Home</a>",
}

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="crawler_version", values=(VERSION,), note="results of another crawler are not comparable"),
        Mandatory(path="domain"),
        Format(path="pages[].fetch.url", format="url"),
        Format(path="pages[].fetch.final_url", format="url"),
        Bounds(path="pages[].hop", ge=0, le=MAX_HOPS),
        LessThan(path="pages[].links_followed", sibling="links", or_equal=True),
        Bounds(path="deepest_hop", ge=0, le=MAX_HOPS),
        Format(path="discovered[]", format="url"),
        Allowed(path="stopped_by", values=("done", "max_pages")),
    ),
)

CRAWL_MULTI_HOP: JobType[CrawlMultiHopPayload, CrawlMultiHopResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=CrawlMultiHopPayload,
    result_type=CrawlMultiHopResult,
    result_rules=RESULT_RULES,
    handler=crawl_multi_hop,
    consent_scope="crawl",
    description="Follow a site's own links breadth-first within its domain, patterns and limits (CC-61)",
    sample_payloads=(
        CrawlMultiHopPayload(
            seeds=[f"{_SITE}/"],
            deny=[r"/login"],
            max_hops=2,
            max_pages=3,
            pages=[sample_page(url, html) for url, html in _SAMPLE_PAGES.items()],
        ),
    ),
    crawl=CrawlSpec(in_scope=in_scope, next_urls=next_urls, with_pages=with_pages, max_fetches=max_fetches),
)
