"""The crawl-campaign decider: frontier, due pages, recrawl intervals and outcomes, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ccn_core.decider import fold
from ccn_core.domain.campaign import (
    MAX_LINKS_PER_PAGE,
    CampaignDecider,
    CampaignState,
    NearDuplicate,
    PageReport,
    RecordOutcome,
    RecordScheduled,
    due_pages,
    host_of,
    in_scope,
    next_interval,
    seed_hosts,
)
from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_proto.crawl import (
    CampaignEvent,
    CampaignSettings,
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

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DECIDER = CampaignDecider()
SETTINGS = CampaignSettings(
    name="funders",
    seeds=["https://Funder.example/", "https://funder.example/grants#top", "https://other.example"],
    max_depth=2,
    max_pages=10,
    max_in_flight=3,
    first_interval_s=3600.0,
    recrawl_min_s=600.0,
    recrawl_max_s=86400.0,
    denied_patterns=["/private*"],
)


def run(state: CampaignState, command: object, now: datetime = NOW) -> list[CampaignEvent]:
    events = DECIDER.decide(command, state, now)  # type: ignore[arg-type]
    for event in events:
        DECIDER.evolve(state, event)
    return events


def started(settings: CampaignSettings = SETTINGS) -> CampaignState:
    state = DECIDER.initial_state("funders")
    run(state, StartCampaign(campaign_id="funders", settings=settings, by="ada"))
    return state


def schedule(state: CampaignState, *urls: str) -> dict[str, str]:
    jobs = {url: f"job-{index}-{len(state.in_flight)}" for index, url in enumerate(urls)}
    run(state, RecordScheduled(pages=tuple(ScheduledPage(url=url, job_id=job) for url, job in jobs.items())))
    return jobs


def test_a_start_puts_the_canonical_seeds_in_the_frontier_once() -> None:
    state = started()
    assert list(state.pages) == ["https://funder.example/", "https://funder.example/grants", "https://other.example/"]
    assert all(page.depth == 0 for page in state.pages.values())
    assert state.status == "running"


def test_starting_again_with_the_same_settings_is_nothing_and_with_others_a_conflict() -> None:
    state = started()
    assert run(state, StartCampaign(campaign_id="funders", settings=SETTINGS, by="ada")) == []
    other = msgspec.structs.replace(SETTINGS, max_pages=11)
    with pytest.raises(Conflict):
        run(state, StartCampaign(campaign_id="funders", settings=other, by="ada"))


def test_a_seed_that_is_no_url_is_refused_naming_it() -> None:
    bad = msgspec.structs.replace(SETTINGS, seeds=["https://ok.example/", "https://user:pw@x.example/"])
    with pytest.raises(BadInput) as refused:
        run(DECIDER.initial_state("c"), StartCampaign(campaign_id="c", settings=bad, by="ada"))
    assert refused.value.field == "settings.seeds[1]"


def test_recrawl_bounds_that_cross_are_refused() -> None:
    bad = msgspec.structs.replace(SETTINGS, recrawl_min_s=7200.0, recrawl_max_s=3600.0)
    with pytest.raises(BadInput):
        run(DECIDER.initial_state("c"), StartCampaign(campaign_id="c", settings=bad, by="ada"))


def test_pause_and_resume_are_idempotent_and_need_a_campaign() -> None:
    state = started()
    assert len(run(state, PauseCampaign(campaign_id="funders", by="ada"))) == 1
    assert run(state, PauseCampaign(campaign_id="funders", by="ada")) == []
    assert due_pages(state, NOW, 100) == []
    assert len(run(state, ResumeCampaign(campaign_id="funders", by="ada"))) == 1
    assert run(state, ResumeCampaign(campaign_id="funders", by="ada")) == []
    with pytest.raises(NotFound):
        run(DECIDER.initial_state("none"), PauseCampaign(campaign_id="none", by="ada"))


def test_due_pages_stay_within_the_in_flight_bound_and_skip_held_pages() -> None:
    state = started(msgspec.structs.replace(SETTINGS, max_in_flight=2))
    due = due_pages(state, NOW, 100)
    assert [page.url for page in due] == ["https://funder.example/", "https://funder.example/grants"]
    schedule(state, due[0].url)
    assert [page.url for page in due_pages(state, NOW, 100)] == ["https://funder.example/grants"]


def test_due_pages_hold_at_most_the_per_host_bound_of_one_host() -> None:
    state = started(msgspec.structs.replace(SETTINGS, max_in_flight=10, max_in_flight_per_host=1))
    due = due_pages(state, NOW, 100)
    hosts = [host_of(page.url) for page in due]
    assert len(hosts) == len(set(hosts))  # one page per host
    schedule(state, due[0].url)
    assert host_of(due[0].url) not in {host_of(page.url) for page in due_pages(state, NOW, 100)}


def test_scheduling_a_held_page_again_records_nothing() -> None:
    state = started()
    schedule(state, "https://funder.example/")
    events = run(state, RecordScheduled(pages=(ScheduledPage(url="https://funder.example/", job_id="again"),)))
    assert events == []


def report(**fields: object) -> PageReport:
    return PageReport(**{"status": 200, "content_hash": "h1", **fields})  # type: ignore[arg-type]


def test_a_first_crawl_is_a_change_and_its_links_in_scope_join_the_frontier() -> None:
    state = started()
    job = schedule(state, "https://funder.example/")["https://funder.example/"]
    links = (
        "/grants/a",  # relative: resolved against the page
        "https://funder.example/grants/a#x",  # the same page
        "https://elsewhere.example/",  # another host
        "/private/area",  # denied
        "mailto:x@funder.example",  # not http
        "https://funder.example/grants/b",
    )
    events = run(state, RecordOutcome(job_id=job, report=report(links=links)))
    assert isinstance(events[0], PageChanged)
    assert events[0].interval_s == 3600.0
    assert events[0].next_crawl_at == NOW + timedelta(hours=1)
    assert isinstance(events[1], PagesDiscovered)
    assert [(p.url, p.depth) for p in events[1].pages] == [
        ("https://funder.example/grants/a", 1),
        ("https://funder.example/grants/b", 1),
    ]
    assert state.in_flight == {}


def test_links_stop_at_max_depth_and_max_pages() -> None:
    state = started(msgspec.structs.replace(SETTINGS, max_depth=0))
    job = schedule(state, "https://funder.example/")["https://funder.example/"]
    events = run(state, RecordOutcome(job_id=job, report=report(links=("/a",))))
    assert [type(e) for e in events] == [PageChanged]
    state = started(msgspec.structs.replace(SETTINGS, max_pages=4))
    job = schedule(state, "https://funder.example/")["https://funder.example/"]
    events = run(state, RecordOutcome(job_id=job, report=report(links=("/a", "/b", "/c"))))
    assert len(state.pages) == 4
    assert isinstance(events[1], PagesDiscovered) and len(events[1].pages) == 1


def test_a_page_with_endless_links_adds_at_most_its_share() -> None:
    settings = msgspec.structs.replace(SETTINGS, max_pages=100_000)
    state = started(settings)
    job = schedule(state, "https://funder.example/")["https://funder.example/"]
    links = tuple(f"/trap/{n}" for n in range(MAX_LINKS_PER_PAGE * 3))
    run(state, RecordOutcome(job_id=job, report=report(links=links)))
    assert len(state.pages) == 3 + MAX_LINKS_PER_PAGE


@pytest.mark.parametrize(
    ("previous", "changed", "expected"),
    [(3600.0, True, 1800.0), (3600.0, False, 7200.0), (700.0, True, 600.0), (80000.0, False, 86400.0)],
)
def test_the_recrawl_interval_halves_on_change_doubles_otherwise_within_bounds(
    previous: float, changed: bool, expected: float
) -> None:
    assert next_interval(SETTINGS, previous, changed=changed, first=False) == expected


def crawled_once(content_hash: str = "h1") -> tuple[CampaignState, str]:
    state = started()
    url = "https://funder.example/"
    job = schedule(state, url)[url]
    run(state, RecordOutcome(job_id=job, report=report(content_hash=content_hash, etag='"v1"')))
    return state, url


def test_a_recrawl_with_the_same_hash_or_a_304_is_unchanged_and_doubles_the_interval() -> None:
    state, url = crawled_once()
    assert due_pages(state, NOW, 10)[0].url != url  # not due before its time
    later = NOW + timedelta(hours=1)
    assert url in [page.url for page in due_pages(state, later, 10)]
    job = schedule(state, url)[url]
    [unchanged] = run(state, RecordOutcome(job_id=job, report=report(content_hash="h1")), later)
    assert isinstance(unchanged, PageUnchanged) and not unchanged.not_modified
    assert unchanged.interval_s == 7200.0
    job = schedule(state, url)[url]
    [not_modified] = run(state, RecordOutcome(job_id=job, report=report(status=304, not_modified=True)), later)
    assert isinstance(not_modified, PageUnchanged) and not_modified.not_modified
    assert not_modified.interval_s == 14400.0
    assert state.pages[url].etag == '"v1"'


def test_a_recrawl_with_new_content_is_a_change_and_halves_the_interval() -> None:
    state, url = crawled_once()
    job = schedule(state, url)[url]
    [changed] = run(state, RecordOutcome(job_id=job, report=report(content_hash="h2")))
    assert isinstance(changed, PageChanged) and changed.interval_s == 1800.0


def test_failures_are_tried_again_later_unless_refused_for_good() -> None:
    state = started()
    url = "https://funder.example/"
    job = schedule(state, url)[url]
    [failed] = run(state, RecordOutcome(job_id=job, reason="dead: timeout"))
    assert isinstance(failed, PageFailed) and failed.next_crawl_at == NOW + timedelta(seconds=600)
    assert url not in [page.url for page in due_pages(state, NOW, 10)]
    job = schedule(state, url)[url] if url in [p.url for p in due_pages(state, NOW + timedelta(hours=1), 10)] else ""
    assert job
    [refused] = run(state, RecordOutcome(job_id=job, report=report(failure="robots_disallowed: /")))
    assert isinstance(refused, PageFailed) and refused.next_crawl_at is None
    assert state.pages[url].given_up
    assert url not in [page.url for page in due_pages(state, NOW + timedelta(days=365), 10)]


def test_an_outcome_for_a_job_the_campaign_does_not_hold_records_nothing() -> None:
    state = started()
    assert run(state, RecordOutcome(job_id="someone-elses", report=report())) == []


def test_a_near_duplicate_is_linked_on_the_change() -> None:
    state = started()
    url = "https://funder.example/"
    job = schedule(state, url)[url]
    near = NearDuplicate(url="https://other.example/", similarity=0.95)
    [changed] = run(state, RecordOutcome(job_id=job, report=report(), near_duplicate=near, signature="ab"))
    assert isinstance(changed, PageChanged)
    assert (changed.near_duplicate_of, changed.similarity) == ("https://other.example/", 0.95)
    assert state.pages[url].near_duplicate_of == "https://other.example/"


def test_a_replayed_history_folds_to_the_same_state() -> None:
    events: list[CampaignEvent] = []
    decider = CampaignDecider()
    live = decider.initial_state("funders")
    for command in (
        StartCampaign(campaign_id="funders", settings=SETTINGS, by="ada"),
        RecordScheduled(pages=(ScheduledPage(url="https://funder.example/", job_id="j1"),)),
        RecordOutcome(job_id="j1", report=report(links=("/a",))),
    ):
        decided = decider.decide(command, live, NOW)  # type: ignore[arg-type]
        events.extend(decided)
        for event in decided:
            decider.evolve(live, event)
    replayed = fold(decider, "funders", events)  # type: ignore[arg-type]
    assert replayed.pages.keys() == live.pages.keys()
    assert replayed.view(NOW) == live.view(NOW)
    assert [type(event) for event in events[-3:]] == [PagesScheduled, PageChanged, PagesDiscovered]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://funder.example/grants", True),
        ("https://www.funder.example/grants", False),
        ("https://funder.example/private/x", False),
        ("https://funder.example.evil.example/", False),
        ("https://evilfunder.example/", False),
    ],
)
def test_scope_is_the_seed_hosts_and_the_patterns(url: str, expected: bool) -> None:
    assert in_scope(SETTINGS, seed_hosts(SETTINGS), url) is expected


def test_subdomains_join_the_scope_only_when_asked() -> None:
    settings = msgspec.structs.replace(SETTINGS, include_subdomains=True)
    assert in_scope(settings, seed_hosts(settings), "https://www.funder.example/a")
    assert not in_scope(settings, seed_hosts(settings), "https://evilfunder.example/a")
