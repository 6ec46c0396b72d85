"""crawl_multi_hop (CC-61) on fixture webs: it stays on the domain, honours its patterns, hop and
page limits, goes breadth-first, never asks for a URL twice and ends, on cyclic link graphs and
link traps that make new URLs forever alike."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ccn_jobs.crawl import MAX_FETCHES_PER_JOB
from ccn_jobs.crawl_multi_hop import CRAWL_MULTI_HOP, CrawlMultiHopPayload, crawl_multi_hop, in_scope, next_urls
from ccn_jobs.registry import payload_refusal
from tests.support.crawl_pages import Site, failed, refused, run_crawl

SITE = "https://funder.example"


def links(*hrefs: str) -> str:
    return "<title>t</title>" + "".join(f"<a href='{href}'>{href}</a>" for href in hrefs)


def crawl(payload: CrawlMultiHopPayload, site: Site) -> tuple[Any, list[list[str]]]:
    pages, rounds = run_crawl(CRAWL_MULTI_HOP, payload, site)
    spec = CRAWL_MULTI_HOP.crawl
    assert spec is not None
    return crawl_multi_hop(spec.with_pages(payload, pages)), rounds


def test_a_cyclic_link_graph_is_crawled_once_per_page_breadth_first() -> None:
    site = {
        f"{SITE}/": links("/a", "/b", "/", "#top", "/a#again"),
        f"{SITE}/a": links("/b", "/c", "/"),
        f"{SITE}/b": links("/a", "/c", "/b"),
        f"{SITE}/c": links("/", "/a", "/d"),
        f"{SITE}/d": links("/c"),
    }
    result, rounds = crawl(CrawlMultiHopPayload(seeds=[f"{SITE}/"], max_hops=5, max_pages=50), site)
    assert rounds == [[f"{SITE}/"], [f"{SITE}/a", f"{SITE}/b"], [f"{SITE}/c"], [f"{SITE}/d"]]
    assert [(page.fetch.url, page.hop) for page in result.pages] == [
        (f"{SITE}/", 0),
        (f"{SITE}/a", 1),
        (f"{SITE}/b", 1),
        (f"{SITE}/c", 2),
        (f"{SITE}/d", 3),
    ]
    assert (result.stopped_by, result.discovered, result.deepest_hop) == ("done", [], 3)
    assert result.pages[0].links == 3 and result.pages[0].links_followed == 2


def test_a_link_trap_runs_into_the_hop_limit() -> None:
    def calendar(url: str) -> str:
        day = int(url.rsplit("=", 1)[1]) if "=" in url else 0
        # every page links to the next day and to a path one level deeper: infinitely many URLs
        return links(f"/calendar?day={day + 1}", f"{url.split('?')[0].rstrip('/')}/more/")

    payload = CrawlMultiHopPayload(seeds=[f"{SITE}/calendar"], max_hops=6, max_pages=MAX_FETCHES_PER_JOB)
    result, _ = crawl(payload, calendar)
    assert result.deepest_hop == 6 and all(page.hop <= 6 for page in result.pages)
    # it ended at the hop limit, not at the page limit: nothing left in scope to fetch
    assert result.stopped_by == "done" and len(result.pages) < MAX_FETCHES_PER_JOB
    assert [page.fetch.url for page in result.pages if page.hop == 6] == [
        f"{SITE}/calendar?day=6",
        f"{SITE}/calendar/more/more/more/more/more/more/",
    ]


def test_a_link_trap_runs_into_the_page_limit() -> None:
    def endless(url: str) -> str:
        return links(*(f"/item/{hash(url) % 10**9}-{n}" for n in range(20)))

    payload = CrawlMultiHopPayload(seeds=[f"{SITE}/"], max_hops=10, max_pages=37)
    result, rounds = crawl(payload, endless)
    assert len(result.pages) == 37
    assert result.stopped_by == "max_pages" and result.discovered
    assert sum(len(r) for r in rounds) == 37


def test_the_crawl_stays_on_the_seed_host_unless_subdomains_are_included() -> None:
    site = {
        f"{SITE}/": links(
            "https://www.funder.example/w",
            "https://evil.example/",
            "https://funder.example.evil.example/",
            "http://funder.example/plain",
            "https://funder.example:8443/port",
            "//cdn.funder.example/x",
            "mailto:x@funder.example",
        ),
    }
    result, _ = crawl(CrawlMultiHopPayload(seeds=[f"{SITE}/"], max_hops=1), site)
    fetched = [page.fetch.url for page in result.pages]
    assert fetched == [f"{SITE}/", "http://funder.example/plain", "https://funder.example:8443/port"]
    result, _ = crawl(CrawlMultiHopPayload(seeds=[f"{SITE}/"], max_hops=1, include_subdomains=True), site)
    fetched = [page.fetch.url for page in result.pages]
    assert "https://www.funder.example/w" in fetched and "https://cdn.funder.example/x" in fetched
    assert not any("evil" in url for url in fetched)


def test_links_of_a_page_that_redirected_off_the_domain_are_not_followed() -> None:
    payload = CrawlMultiHopPayload(seeds=[f"{SITE}/", f"{SITE}/moved"], max_hops=3)
    spec = CRAWL_MULTI_HOP.crawl
    assert spec is not None
    from tests.support.crawl_pages import fetch_from

    home = fetch_from({f"{SITE}/": links("/moved")}, f"{SITE}/")
    moved = fetch_from({f"{SITE}/moved": links("/secret")}, f"{SITE}/moved")
    outcome = msgspec.structs.replace(moved.outcome, final_url="https://elsewhere.example/landing")
    moved = msgspec.structs.replace(moved, outcome=outcome)
    assert next_urls(payload, [home, moved]) == []


def test_allow_and_deny_patterns() -> None:
    site = {
        f"{SITE}/": links("/grants/a", "/grants/b?print=1", "/news/1", "/grants/archive/old", "/GRANTS/c"),
    }
    payload = CrawlMultiHopPayload(seeds=[f"{SITE}/"], allow=[r"/grants/"], deny=[r"print=", r"/archive/"], max_hops=1)
    result, _ = crawl(payload, site)
    assert [page.fetch.url for page in result.pages] == [f"{SITE}/", f"{SITE}/grants/a"]
    assert in_scope(payload, f"{SITE}/") and not in_scope(payload, f"{SITE}/news/1")
    assert not in_scope(payload, f"{SITE}/grants/a#frag")  # not a URL the crawl makes


def test_hop_zero_fetches_only_the_seeds() -> None:
    seeds = [f"{SITE}/", f"{SITE}/b", f"{SITE}/"]
    result, rounds = crawl(CrawlMultiHopPayload(seeds=seeds, max_hops=0), {f"{SITE}/": links("/a")})
    assert rounds == [[f"{SITE}/", f"{SITE}/b"]]
    assert result.stopped_by == "done" and result.discovered == []
    assert [page.fetch.status for page in result.pages] == [200, 404]


def test_refused_and_failed_fetches_are_pages_and_are_not_asked_again() -> None:
    payload = CrawlMultiHopPayload(seeds=[f"{SITE}/"], max_hops=2)
    home = run_crawl(CRAWL_MULTI_HOP, msgspec.structs.replace(payload, max_hops=0), {f"{SITE}/": links("/a", "/b")})[0]
    first = next_urls(payload, home)
    assert first == [f"{SITE}/a", f"{SITE}/b"]
    pages = [*home, refused(f"{SITE}/a"), failed(f"{SITE}/b")]
    assert next_urls(payload, pages) == []
    result = crawl_multi_hop(msgspec.structs.replace(payload, pages=pages))
    assert (result.pages_fetched, result.pages_refused, result.pages_failed) == (1, 1, 1)
    assert [page.fetch.reason for page in result.pages] == [None, "rate_limited", "timeout"]


def test_pages_the_walk_did_not_ask_for_are_ignored() -> None:
    payload = CrawlMultiHopPayload(seeds=[f"{SITE}/"], max_hops=1)
    pages, _ = run_crawl(CRAWL_MULTI_HOP, payload, {f"{SITE}/": links("/a")})
    smuggled = run_crawl(CRAWL_MULTI_HOP, CrawlMultiHopPayload(seeds=["https://evil.example/"], max_hops=0), {})[0]
    result = crawl_multi_hop(msgspec.structs.replace(payload, pages=[*pages, *smuggled]))
    assert [page.fetch.url for page in result.pages] == [f"{SITE}/", f"{SITE}/a"]


def test_payloads_off_the_rules_are_refused() -> None:
    def refusal(**payload: Any) -> tuple[str | None, str] | None:
        found = payload_refusal("crawl_multi_hop", {"seeds": [f"{SITE}/"], **payload})
        return None if found is None else (found.field, found.message)

    assert refusal() is None
    assert refusal(seeds=[]) is not None
    assert refusal(seeds=[f"{SITE}/", "https://other.example/"]) == (
        "payload",
        "payload is not a valid crawl_multi_hop payload: "
        "the seed 'https://other.example/' is not a URL on funder.example",
    )
    assert refusal(seeds=[f"{SITE}/", "https://www.funder.example/"], include_subdomains=True) is None
    assert refusal(seeds=[f"{SITE}/#x"]) is not None
    assert refusal(max_pages=MAX_FETCHES_PER_JOB + 1) is not None
    assert refusal(max_hops=11) is not None
    bad_pattern = refusal(allow=["(a)\\1"])
    assert bad_pattern is not None and "RE2" in bad_pattern[1]


def test_a_big_site_gives_a_result_within_its_bounds() -> None:
    def wide(url: str) -> str:
        return "<title>" + "T" * 5000 + "</title>" + links(*(f"/p/{len(url)}/{n}/{'x' * 900}" for n in range(100)))

    payload = CrawlMultiHopPayload(seeds=[f"{SITE}/"], max_hops=3, max_pages=MAX_FETCHES_PER_JOB)
    result, _ = crawl(payload, wide)
    assert len(msgspec.json.encode(result)) < 768 * 1024
    assert result.pages_fetched == MAX_FETCHES_PER_JOB
    assert result.pages_truncated and len(result.pages) < MAX_FETCHES_PER_JOB
    assert result.discovered_truncated and result.stopped_by == "max_pages"


PATHS = [f"/{name}" for name in "abcdefghij"]


@st.composite
def link_graphs(draw: st.DrawFn) -> tuple[CrawlMultiHopPayload, dict[str, str]]:
    site: dict[str, str] = {}
    for path in PATHS:
        targets = draw(st.lists(st.sampled_from([*PATHS, "https://other.example/x", "/missing", "?q=1"]), max_size=6))
        site[f"{SITE}{path}"] = links(*targets)
    seeds = draw(st.lists(st.sampled_from([f"{SITE}{path}" for path in PATHS]), min_size=1, max_size=3))
    payload = CrawlMultiHopPayload(
        seeds=seeds,
        max_hops=draw(st.integers(0, 5)),
        max_pages=draw(st.integers(1, 12)),
        deny=draw(st.lists(st.sampled_from(["/c$", "q=", "/j"]), max_size=2)),
    )
    return payload, site


@settings(max_examples=60, deadline=None)
@given(link_graphs())
def test_any_link_graph_is_crawled_within_scope_once_per_url_and_ends(
    case: tuple[CrawlMultiHopPayload, dict[str, str]],
) -> None:
    payload, site = case
    result, rounds = crawl(payload, site)  # run_crawl checks scope, no repeats, the budget
    fetched = [url for round_ in rounds for url in round_]
    assert len(fetched) <= payload.max_pages
    assert [page.fetch.url for page in result.pages] == fetched
    assert all(page.hop <= payload.max_hops for page in result.pages)
    assert all(url.startswith(SITE) for url in fetched)
    denied = [url for url in fetched if url not in payload.seeds and any(re.search(p, url) for p in payload.deny)]
    assert denied == []
    assert (result.stopped_by == "done") == (not result.discovered)
