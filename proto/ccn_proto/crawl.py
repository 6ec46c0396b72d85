"""Crawl campaigns (stream CCN_CRAWL, `ccn.campaign.<id>.<event>`): seed URLs, extraction rules and
a recrawl schedule, the URL frontier they fill, and what each crawl of a page found.

One aggregate per campaign. Its history is the frontier: every URL it discovered (canonical, in
its scope, each once), every job that crawled one, and each crawl's outcome:
- `campaign.page_changed`: the page's content differs from the last crawl (or is new); it may be a
  near-duplicate of another page already crawled (`near_duplicate_of`), linked rather than kept
  as a page of its own;
- `campaign.page_unchanged`: the same content (the site answered 304 to the conditional GET, or
  the content hash is the same);
- `campaign.page_failed`: refused or not fetched; the page is tried again later.
Each outcome sets the page's next crawl: the interval halves when the page changed and doubles
when it did not, within the campaign's bounds. Page events are many and small, so the frontier
events carry lists (up to MAX_PAGES_PER_EVENT each) rather than one event per URL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ccn_proto.constraints import END, SINGLE_LINE_PATTERN, ShortText, Text

CampaignId = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=rf"^[a-z0-9][a-z0-9-]*{END}")]
CampaignUrl = Annotated[str, msgspec.Meta(min_length=1, max_length=2048, pattern=rf"^https?://[\x21-\x7e]+{END}")]
UrlPattern = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=rf"^/[\x21-\x7e]*{END}")]
MAX_SEEDS = 1000
MAX_PAGES_PER_EVENT = 500
MAX_CAMPAIGN_PAGES = 100_000
CrawlJobType = Literal["crawl_domain_page"]
CampaignStatus = Literal["running", "paused"]
Seconds = Annotated[float, msgspec.Meta(ge=1.0, le=365 * 86400.0)]


class CampaignSettings(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`seeds`: where the crawl starts; pages they link to join the frontier when they are on a
        seed's host (or a subdomain, with `include_subdomains`), match `allowed_patterns` (none: any
        path) and no `denied_patterns`, lie within `max_depth` links of a seed, and the campaign has
        fewer than `max_pages`. At most `max_in_flight` pages are crawled at once, and at most
    `max_in_flight_per_host` of one host. `fields`: the extraction rules each page's job applies (the job
        type's `fields`, checked by its rules engine when the campaign starts). Recrawl intervals start at
        `first_interval_s` and adapt between the two bounds."""

    name: ShortText
    seeds: Annotated[list[CampaignUrl], msgspec.Meta(min_length=1, max_length=MAX_SEEDS)]
    job_type: CrawlJobType = "crawl_domain_page"
    fields: Annotated[list[dict[str, Any]], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    include_subdomains: bool = False
    allowed_patterns: Annotated[list[UrlPattern], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    denied_patterns: Annotated[list[UrlPattern], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    max_depth: Annotated[int, msgspec.Meta(ge=0, le=50)] = 3
    max_pages: Annotated[int, msgspec.Meta(ge=1, le=MAX_CAMPAIGN_PAGES)] = 1000
    max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 200
    # a site's pages in flight at once: more would only wait for its pace at the proxy
    max_in_flight_per_host: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    first_interval_s: Seconds = 86400.0
    recrawl_min_s: Seconds = 3600.0
    recrawl_max_s: Seconds = 30 * 86400.0
    recrawl: bool = True


# ---- events ----


class CampaignStarted(msgspec.Struct, gc=False, tag="campaign.started", frozen=True, kw_only=True):
    settings: CampaignSettings
    by: ShortText


class CampaignPaused(msgspec.Struct, gc=False, tag="campaign.paused", frozen=True, kw_only=True):
    by: ShortText
    reason: Text | None = None


class CampaignResumed(msgspec.Struct, gc=False, tag="campaign.resumed", frozen=True, kw_only=True):
    by: ShortText


class FrontierEntry(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    url: str  # canonical
    depth: int
    found_on: str | None = None


class PagesDiscovered(msgspec.Struct, gc=False, tag="campaign.pages_discovered", frozen=True, kw_only=True):
    pages: list[FrontierEntry]


class ScheduledPage(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    url: str
    job_id: str


class PagesScheduled(msgspec.Struct, gc=False, tag="campaign.pages_scheduled", frozen=True, kw_only=True):
    pages: list[ScheduledPage]


class PageChanged(msgspec.Struct, gc=False, tag="campaign.page_changed", frozen=True, kw_only=True):
    url: str
    job_id: str
    status: int | None = None
    content_hash: str
    etag: str | None = None
    last_modified: str | None = None
    fields_found: int = 0
    fields_asked: int = 0
    near_duplicate_of: str | None = None
    similarity: float | None = None
    signature: str | None = None  # the text's MinHash, hex: the near-duplicate index is rebuilt from it
    interval_s: float
    next_crawl_at: datetime


class PageUnchanged(msgspec.Struct, gc=False, tag="campaign.page_unchanged", frozen=True, kw_only=True):
    url: str
    job_id: str
    not_modified: bool  # the site said 304; else the content hash was the same
    interval_s: float
    next_crawl_at: datetime


class PageFailed(msgspec.Struct, gc=False, tag="campaign.page_failed", frozen=True, kw_only=True):
    url: str
    job_id: str
    reason: str
    next_crawl_at: datetime | None  # None: not tried again (refused for good, e.g. robots.txt)


CampaignEvent = (
    CampaignStarted
    | CampaignPaused
    | CampaignResumed
    | PagesDiscovered
    | PagesScheduled
    | PageChanged
    | PageUnchanged
    | PageFailed
)
CAMPAIGN_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    CampaignStarted,
    CampaignPaused,
    CampaignResumed,
    PagesDiscovered,
    PagesScheduled,
    PageChanged,
    PageUnchanged,
    PageFailed,
)


# ---- commands (`ccn.cmd.crawler.<name>`) ----


class StartCampaign(msgspec.Struct, gc=False, tag="start_campaign", frozen=True, kw_only=True):
    campaign_id: CampaignId
    settings: CampaignSettings
    by: ShortText


class PauseCampaign(msgspec.Struct, gc=False, tag="pause_campaign", frozen=True, kw_only=True):
    campaign_id: CampaignId
    by: ShortText
    reason: Annotated[str, msgspec.Meta(max_length=1000, pattern=SINGLE_LINE_PATTERN)] | None = None


class ResumeCampaign(msgspec.Struct, gc=False, tag="resume_campaign", frozen=True, kw_only=True):
    campaign_id: CampaignId
    by: ShortText


class GetCampaign(msgspec.Struct, gc=False, tag="get_campaign", frozen=True, kw_only=True):
    campaign_id: CampaignId


class ListCampaigns(msgspec.Struct, gc=False, tag="list_campaigns", frozen=True, kw_only=True):
    pass


class CampaignView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A campaign's progress, from its history: pages in its frontier, crawled at least once,
    in flight, changed and unchanged crawls, failures, near-duplicates, and due now."""

    campaign_id: str
    name: str
    status: CampaignStatus
    pages: int
    crawled: int
    in_flight: int
    changed: int
    unchanged: int
    failed: int
    near_duplicates: int
    due: int
    started_at: datetime | None = None


class CampaignList(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    campaigns: list[CampaignView]
