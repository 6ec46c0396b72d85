"""The crawl-campaign aggregate: its frontier, what is due, and what each crawl of a page found.

The rules are pure (`CampaignDecider.decide` and the functions below); the crawler service asks
them what to schedule and how to record a finished job. Its state is a mutable fold: a campaign
holds up to 100,000 pages and every crawl of one is an event, so copying the page table on each
event would make a replay quadratic. `evolve` therefore updates the state in place and returns
it; `decide` never changes it.

- The frontier holds canonical URLs (ccn_core.canonical_url), each once, in scope (`in_scope`:
  a seed's host, or a subdomain of one with `include_subdomains`; the path allowed by the
  patterns), within `max_depth` links of a seed, and at most `max_pages` of them.
- A page is due when the campaign runs, no job holds it, and it was never crawled or its next
  crawl time has come (`due_pages`); at most `max_in_flight` are held at once, and at most
  `max_in_flight_per_host` of one host.
- After a crawl (`RecordOutcome`), the interval to the next crawl halves when the page changed
  and doubles when it did not (`next_interval`), within the campaign's bounds, so a page that
  changes daily is seen daily and one that never changes fades to the longest interval. A failed
  crawl is tried again after the shortest interval; a page refused for good (robots.txt, the
  allow-list) is not tried again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from ccn_core.canonical_url import canonical_url
from ccn_core.domain.domain_policy import pattern_matches
from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_proto.crawl import (
    MAX_PAGES_PER_EVENT,
    CampaignEvent,
    CampaignPaused,
    CampaignResumed,
    CampaignSettings,
    CampaignStarted,
    CampaignView,
    FrontierEntry,
    PageChanged,
    PageFailed,
    PagesDiscovered,
    PagesScheduled,
    PageUnchanged,
    PauseCampaign,
    ResumeCampaign,
    ScheduledPage,
    StartCampaign,
)

# links a single page may add to the frontier: a page with a million links adds its first ones
MAX_LINKS_PER_PAGE = 2000
# failures that mean "never again", not "later": robots.txt said no (the fetch proxy cancels such a
# page's job). The page stays in the frontier, uncrawled. Anything else (the allow-list, which an
# admin may change; the site down) is tried again after the shortest recrawl interval.
PERMANENT_FAILURES = frozenset({"robots_disallowed", "cancelled"})


@dataclass(slots=True)
class PageState:
    url: str
    depth: int
    job_id: str | None = None  # the job crawling it now
    crawls: int = 0
    content_hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    interval_s: float = 0.0
    next_crawl_at: datetime | None = None  # None and never crawled: due at once
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    near_duplicate_of: str | None = None
    signature: str | None = None  # the text's MinHash, for the near-duplicate index
    given_up: str | None = None  # why it is not crawled again


@dataclass(slots=True)
class CampaignState:
    campaign_id: str
    settings: CampaignSettings | None = None
    status: Literal["new", "running", "paused"] = "new"
    started_at: datetime | None = None
    pages: dict[str, PageState] = field(default_factory=dict)
    in_flight: dict[str, str] = field(default_factory=dict)  # job id -> url
    seed_hosts: frozenset[str] = frozenset()

    def view(self, now: datetime) -> CampaignView:
        pages = self.pages.values()
        return CampaignView(
            campaign_id=self.campaign_id,
            name=self.settings.name if self.settings else "",
            status="paused" if self.status == "paused" else "running",
            pages=len(self.pages),
            crawled=sum(1 for page in pages if page.crawls),
            in_flight=len(self.in_flight),
            changed=sum(page.changed for page in pages),
            unchanged=sum(page.unchanged for page in pages),
            failed=sum(page.failed for page in pages),
            near_duplicates=sum(1 for page in pages if page.near_duplicate_of),
            due=sum(1 for page in pages if _due(self, page, now)),
            started_at=self.started_at,
        )


class PageReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a finished crawl job says about its page (the crawler reads it from the result)."""

    status: int | None = None
    not_modified: bool = False
    content_hash: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    links: tuple[str, ...] = ()
    final_url: str | None = None
    fields_found: int = 0
    fields_asked: int = 0
    failure: str | None = None  # the refusal or failure code, when the page was not fetched


class NearDuplicate(msgspec.Struct, frozen=True):
    url: str
    similarity: float


class RecordScheduled(msgspec.Struct, frozen=True, kw_only=True):
    pages: tuple[ScheduledPage, ...]


class RecordOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A crawl job finished (`report`), or ended without a result (`report` None, `reason`)."""

    job_id: str
    report: PageReport | None = None
    reason: str = ""
    near_duplicate: NearDuplicate | None = None
    signature: str | None = None


CampaignCommand = StartCampaign | PauseCampaign | ResumeCampaign | RecordScheduled | RecordOutcome


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def in_scope(settings: CampaignSettings, seed_hosts: frozenset[str], url: str) -> bool:
    """Is this canonical URL one the campaign may crawl?"""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host not in seed_hosts and not (
        settings.include_subdomains and any(host.endswith("." + seed) for seed in seed_hosts)
    ):
        return False
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if any(pattern_matches(pattern, path) for pattern in settings.denied_patterns):
        return False
    return not settings.allowed_patterns or any(pattern_matches(p, path) for p in settings.allowed_patterns)


def next_interval(settings: CampaignSettings, previous_s: float, *, changed: bool, first: bool) -> float:
    interval = settings.first_interval_s if first else (previous_s / 2 if changed else previous_s * 2)
    return min(max(interval, settings.recrawl_min_s), settings.recrawl_max_s)


def _due(state: CampaignState, page: PageState, now: datetime) -> bool:
    if state.status != "running" or page.job_id is not None or page.given_up is not None:
        return False
    if page.crawls == 0 and page.failed == 0:
        return True
    if page.next_crawl_at is None:
        return False
    if page.crawls and state.settings is not None and not state.settings.recrawl:
        return False
    return page.next_crawl_at <= now


def due_pages(state: CampaignState, now: datetime, limit: int) -> list[PageState]:
    """Pages to crawl now, oldest-discovered first, within the campaign's in-flight bounds (all
    hosts, and each host)."""
    if state.settings is None or state.status != "running":
        return []
    room = min(limit, state.settings.max_in_flight - len(state.in_flight))
    per_host = state.settings.max_in_flight_per_host
    held = Counter(host_of(url) for url in state.in_flight.values())
    due: list[PageState] = []
    for page in state.pages.values():
        if len(due) >= room:
            break
        if _due(state, page, now):
            host = host_of(page.url)
            if held[host] < per_host:
                held[host] += 1
                due.append(page)
    return due


def _frontier_additions(
    state: CampaignState, settings: CampaignSettings, urls: Iterable[str], depth: int, found_on: str | None
) -> list[FrontierEntry]:
    if depth > settings.max_depth:
        return []
    room = settings.max_pages - len(state.pages)
    added: list[FrontierEntry] = []
    seen: set[str] = set()
    for count, written in enumerate(urls):
        if len(added) >= room or count >= MAX_LINKS_PER_PAGE:
            break
        try:
            url = canonical_url(written, found_on)
        except BadInput:
            continue
        if url in seen or url in state.pages or not in_scope(settings, state.seed_hosts, url):
            continue
        seen.add(url)
        added.append(FrontierEntry(url=url, depth=depth, found_on=found_on))
    return added


def _chunked(entries: Sequence[FrontierEntry]) -> list[CampaignEvent]:
    return [
        PagesDiscovered(pages=list(entries[start : start + MAX_PAGES_PER_EVENT]))
        for start in range(0, len(entries), MAX_PAGES_PER_EVENT)
    ]


def seed_hosts(settings: CampaignSettings) -> frozenset[str]:
    hosts = set()
    for seed in settings.seeds:
        try:
            hosts.add(host_of(canonical_url(seed)))
        except BadInput:
            continue
    return frozenset(hosts)


class CampaignDecider:
    aggregate = "campaign"

    def initial_state(self, aggregate_id: str) -> CampaignState:
        return CampaignState(campaign_id=aggregate_id)

    def decide(self, command: CampaignCommand, state: CampaignState, now: datetime) -> list[CampaignEvent]:
        match command:
            case StartCampaign(settings=settings, by=by):
                if state.status != "new":
                    if state.settings == settings:
                        return []
                    raise Conflict(f"campaign {state.campaign_id} exists with other settings")
                if settings.recrawl_min_s > settings.recrawl_max_s:
                    raise BadInput("recrawl_min_s is above recrawl_max_s", field="settings.recrawl_min_s")
                seeds: list[str] = []
                for index, seed in enumerate(settings.seeds):
                    try:
                        seeds.append(canonical_url(seed))
                    except BadInput as exc:
                        raise BadInput(f"seed {index}: {exc}", field=f"settings.seeds[{index}]") from None
                fresh = CampaignState(campaign_id=state.campaign_id, seed_hosts=seed_hosts(settings))
                entries = _frontier_additions(fresh, settings, seeds, 0, None)
                return [CampaignStarted(settings=settings, by=by), *_chunked(entries)]
            case PauseCampaign(by=by, reason=reason):
                self._require(state)
                return [] if state.status == "paused" else [CampaignPaused(by=by, reason=reason)]
            case ResumeCampaign(by=by):
                self._require(state)
                return [] if state.status == "running" else [CampaignResumed(by=by)]
            case RecordScheduled(pages=pages):
                self._require(state)
                fresh_pages = [
                    page
                    for page in pages
                    if (known := state.pages.get(page.url)) is not None
                    and known.job_id is None
                    and page.job_id not in state.in_flight
                ]
                return [
                    PagesScheduled(pages=fresh_pages[start : start + MAX_PAGES_PER_EVENT])
                    for start in range(0, len(fresh_pages), MAX_PAGES_PER_EVENT)
                ]
            case RecordOutcome():
                return self._outcome(command, state, now)
        raise TypeError(f"not a campaign command: {command!r}")

    @staticmethod
    def _require(state: CampaignState) -> CampaignSettings:
        if state.settings is None:
            raise NotFound(f"no campaign {state.campaign_id}")
        return state.settings

    def _outcome(self, command: RecordOutcome, state: CampaignState, now: datetime) -> list[CampaignEvent]:
        settings = self._require(state)
        url = state.in_flight.get(command.job_id)
        if url is None:
            return []  # not this campaign's job, or recorded already
        page = state.pages[url]
        report = command.report
        failure = command.reason if report is None else report.failure
        if failure:
            code = failure.split(":", 1)[0].strip()
            retry = None if code in PERMANENT_FAILURES else now + timedelta(seconds=settings.recrawl_min_s)
            return [PageFailed(url=url, job_id=command.job_id, reason=failure[:1000], next_crawl_at=retry)]
        assert report is not None
        first = page.crawls == 0
        unchanged = report.not_modified or (
            report.content_hash is not None and report.content_hash == page.content_hash
        )
        interval = next_interval(settings, page.interval_s, changed=not unchanged, first=first)
        next_at = now + timedelta(seconds=interval)
        events: list[CampaignEvent]
        if unchanged and not first:
            events = [
                PageUnchanged(
                    url=url,
                    job_id=command.job_id,
                    not_modified=report.not_modified,
                    interval_s=interval,
                    next_crawl_at=next_at,
                )
            ]
        else:
            near = command.near_duplicate
            events = [
                PageChanged(
                    url=url,
                    job_id=command.job_id,
                    status=report.status,
                    content_hash=report.content_hash or "",
                    etag=report.etag,
                    last_modified=report.last_modified,
                    fields_found=report.fields_found,
                    fields_asked=report.fields_asked,
                    near_duplicate_of=near.url if near is not None and near.url != url else None,
                    similarity=near.similarity if near is not None and near.url != url else None,
                    signature=command.signature,
                    interval_s=interval,
                    next_crawl_at=next_at,
                )
            ]
        base = report.final_url or url
        events.extend(_chunked(_frontier_additions(state, settings, report.links, page.depth + 1, base)))
        return events

    def evolve(self, state: CampaignState, event: CampaignEvent) -> CampaignState:
        match event:
            case CampaignStarted(settings=settings):
                state.settings = settings
                state.status = "running"
                state.seed_hosts = seed_hosts(settings)
            case CampaignPaused():
                state.status = "paused"
            case CampaignResumed():
                state.status = "running"
            case PagesDiscovered(pages=entries):
                for entry in entries:
                    state.pages.setdefault(entry.url, PageState(url=entry.url, depth=entry.depth))
            case PagesScheduled(pages=scheduled):
                for item in scheduled:
                    page = state.pages.get(item.url)
                    if page is not None:
                        page.job_id = item.job_id
                        state.in_flight[item.job_id] = item.url
            case PageChanged() | PageUnchanged() | PageFailed():
                page = state.pages.get(event.url)
                state.in_flight.pop(event.job_id, None)
                if page is not None:
                    page.job_id = None
                    _record(page, event)
            case _:
                raise TypeError(f"not a campaign event: {event!r}")
        return state


def _record(page: PageState, event: PageChanged | PageUnchanged | PageFailed) -> None:
    match event:
        case PageChanged():
            page.crawls += 1
            page.changed += 1
            page.content_hash = event.content_hash
            page.etag = event.etag
            page.last_modified = event.last_modified
            page.interval_s = event.interval_s
            page.next_crawl_at = event.next_crawl_at
            page.near_duplicate_of = event.near_duplicate_of
            page.signature = event.signature or page.signature
        case PageUnchanged():
            page.crawls += 1
            page.unchanged += 1
            page.interval_s = event.interval_s
            page.next_crawl_at = event.next_crawl_at
        case PageFailed():
            page.failed += 1
            page.next_crawl_at = event.next_crawl_at
            if event.next_crawl_at is None:
                page.given_up = event.reason
