"""The reference node's crawl loop (ccn_cli.node.crawl) with fake fetches: it stops at
max_fetches, ends when next_urls has nothing new, never fetches a URL twice; "not now" is asked
again a few times within the job's time and then fails the job; a refusal for good and a site's
failure are the page's outcome; bodies are read and checked. Then the worker's whole crawl job
against a small HTTP server playing the edge (ccn_cli.node.documents.execute_crawl)."""

from __future__ import annotations

import asyncio
import hashlib
import pickle
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from aiohttp import web

from ccn_cli.node.crawl import (
    MAX_ATTEMPTS,
    CrawlClock,
    CrawlInterrupted,
    FetchUnavailable,
    crawl,
    crawl_pages,
    crawled_page,
    fetch_with_retries,
)
from ccn_cli.node.documents import EdgeDocuments, execute_crawl
from ccn_cli.node.execute import JobRefused
from ccn_cli.node.metering import BandwidthExceeded, FetchMeter, metering
from ccn_jobs.crawl import MAX_FETCHES_PER_JOB, CrawledPage, CrawlSpec
from ccn_jobs.errors import DocumentRefused
from ccn_proto.documents import PLAIN_TEXT, DocumentRef
from ccn_proto.fetch import FetchedPage, FetchFailed, FetchOutcome, FetchRefused
from tests.support.crawl_job import LINK_CRAWL, LinkCrawlPayload

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Budget(msgspec.Struct, frozen=True):
    limit: int


def page(url: str) -> CrawledPage:
    return CrawledPage(url=url, outcome=fetched(url))


def fetched(url: str, body: DocumentRef | None = None, status: int = 200) -> FetchedPage:
    return FetchedPage(fetch_id="f", url=url, final_url=url, status=status, body=body, fetched_at=NOW)


def refused(url: str, retry_after: float | None = None, reason: str = "robots_disallowed") -> FetchRefused:
    return FetchRefused(fetch_id="f", url=url, stage="robots", reason=reason, retry_after=retry_after)


def spec(next_urls: Any) -> CrawlSpec[Budget]:
    return CrawlSpec(
        in_scope=lambda payload, url: True,
        next_urls=next_urls,
        with_pages=lambda payload, pages: payload,
        max_fetches=lambda payload: payload.limit,
    )


async def crawled(crawl_spec: CrawlSpec[Budget], limit: int) -> list[str]:
    asked: list[str] = []

    async def fetch_page(url: str) -> CrawledPage:
        asked.append(url)
        return page(url)

    pages = await crawl_pages(crawl_spec, Budget(limit), fetch_page)
    assert [p.url for p in pages] == asked
    return asked


async def test_the_loop_stops_at_max_fetches() -> None:
    endless = spec(lambda payload, pages: [f"https://a.example/{len(pages)}", f"https://a.example/{len(pages) + 1}"])
    assert await crawled(endless, 3) == ["https://a.example/0", "https://a.example/1", "https://a.example/2"]


async def test_the_loop_never_passes_the_hard_cap_whatever_the_payload_asks() -> None:
    endless = spec(lambda payload, pages: [f"https://a.example/{len(pages)}"])
    assert len(await crawled(endless, 10_000)) == MAX_FETCHES_PER_JOB


async def test_the_loop_ends_when_next_urls_is_empty() -> None:
    two_rounds = spec(
        lambda payload, pages: (
            ["https://a.example/"]
            if not pages
            else (["https://a.example/b", "https://a.example/c"] if len(pages) == 1 else [])
        )
    )
    assert await crawled(two_rounds, 50) == ["https://a.example/", "https://a.example/b", "https://a.example/c"]


async def test_a_url_asked_for_again_is_not_fetched_again_and_the_loop_ends() -> None:
    # a job type that breaks its promise (it returns what it returned before) cannot spin the node
    stuck = spec(lambda payload, pages: ["https://a.example/", "https://a.example/", "https://a.example/x"])
    assert await crawled(stuck, 50) == ["https://a.example/", "https://a.example/x"]


def clock(deadline: float = 1_000.0) -> tuple[CrawlClock, list[float]]:
    waited: list[float] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    return CrawlClock(deadline=deadline, now=lambda: now[0], sleep=sleep), waited


def answering(*answers: FetchOutcome | FetchUnavailable) -> tuple[Any, list[str]]:
    asked: list[str] = []
    queue = list(answers)

    async def fetch(url: str) -> FetchOutcome:
        asked.append(url)
        answer = queue.pop(0)
        if isinstance(answer, FetchUnavailable):
            raise answer
        return answer

    return fetch, asked


URL = "https://funder.example/grants"


async def test_not_now_is_asked_again_after_its_wait_until_it_is_answered() -> None:
    crawl_clock, waited = clock()
    fetch, asked = answering(
        refused(URL, retry_after=3.0, reason="rate_limited"), FetchUnavailable("503", retry_after=7.0), fetched(URL)
    )
    assert await fetch_with_retries(fetch, URL, crawl_clock) == fetched(URL)
    assert (asked, waited) == ([URL] * 3, [3.0, 7.0])


async def test_still_not_now_after_the_last_attempt_fails_the_job() -> None:
    crawl_clock, waited = clock()
    fetch, asked = answering(*[refused(URL, retry_after=1.0, reason="rate_limited")] * MAX_ATTEMPTS)
    with pytest.raises(CrawlInterrupted, match=rf"^fetch_unavailable: .*rate_limited.*asked {MAX_ATTEMPTS} times"):
        await fetch_with_retries(fetch, URL, crawl_clock)
    assert len(asked) == MAX_ATTEMPTS and waited == [1.0] * (MAX_ATTEMPTS - 1)


async def test_a_wait_past_the_jobs_time_is_not_waited() -> None:
    crawl_clock, waited = clock(deadline=30.0)
    fetch, asked = answering(refused(URL, retry_after=60.0, reason="breaker_open"))
    with pytest.raises(CrawlInterrupted, match="next try in 60 s"):
        await fetch_with_retries(fetch, URL, crawl_clock)
    assert (asked, waited) == ([URL], [])


async def test_the_edge_unreachable_without_a_wait_is_asked_again_after_a_second() -> None:
    crawl_clock, waited = clock()
    fetch, _ = answering(FetchUnavailable("connection refused", retry_after=None), fetched(URL))
    assert await fetch_with_retries(fetch, URL, crawl_clock) == fetched(URL)
    assert waited == [1.0]


@pytest.mark.parametrize(
    "outcome",
    [
        refused(URL),  # robots.txt says no: for good
        FetchFailed(fetch_id="f", url=URL, reason="timeout"),
        fetched(URL, status=503),  # the site's own answer, whatever its status
    ],
)
async def test_a_refusal_for_good_or_a_failure_is_the_pages_outcome_asked_once(outcome: FetchOutcome) -> None:
    crawl_clock, waited = clock()
    fetch, asked = answering(outcome)
    assert await fetch_with_retries(fetch, URL, crawl_clock) == outcome
    assert (asked, waited) == ([URL], [])


BODY = b"link: https://funder.example/a\nlink: https://elsewhere.example/x\n"
REF = DocumentRef(sha256=hashlib.sha256(BODY).hexdigest(), size=len(BODY), media_type=PLAIN_TEXT)


class Bodies:
    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies
        self.read_sizes: list[int] = []

    async def read(self, sha256: str, size: int) -> bytes:
        self.read_sizes.append(size)
        try:
            return self.bodies[sha256]
        except KeyError:
            raise LookupError(f"no body {sha256}") from None


async def test_a_fetched_body_is_read_checked_and_put_inline() -> None:
    got = await crawled_page(URL, fetched(URL, REF), Bodies({REF.sha256: BODY}), "t")
    assert got.document is not None and got.document.data == BODY and got.document.media_type == PLAIN_TEXT
    assert got.outcome == fetched(URL, REF)


@pytest.mark.parametrize(
    ("bodies", "reason"),
    [
        ({}, "body_missing"),
        ({REF.sha256: BODY[:-1] + b"?"}, "body_mismatch"),
        ({REF.sha256: BODY + b"!"}, "body_mismatch"),
    ],
)
async def test_a_body_that_cannot_be_had_or_is_not_its_reference_fails_the_job(
    bodies: dict[str, bytes], reason: str
) -> None:
    with pytest.raises(DocumentRefused) as raised:
        await crawled_page(URL, fetched(URL, REF), Bodies(bodies), "t")
    assert raised.value.code == reason


async def test_a_page_without_a_body_reads_nothing() -> None:
    reader = Bodies({})
    got = await crawled_page(URL, fetched(URL, None, status=304), reader, "t")
    assert got.document is None and reader.read_sizes == []


async def test_a_crawl_puts_every_page_in_the_payload_in_the_order_fetched() -> None:
    start = "https://funder.example/"
    pages = {
        start: fetched(start, REF),
        "https://funder.example/a": refused("https://funder.example/a"),
    }
    crawl_clock, _ = clock()

    async def fetch(url: str) -> FetchOutcome:
        return pages[url]

    spec_ = LINK_CRAWL.crawl
    assert spec_ is not None
    payload = await crawl(spec_, LinkCrawlPayload(start=start), fetch, Bodies({REF.sha256: BODY}), "t", crawl_clock)
    assert [p.url for p in payload.pages] == [start, "https://funder.example/a"]  # elsewhere.example: out of scope
    assert LINK_CRAWL.handler(payload).pages[1].outcome == "refused:robots_disallowed"


# ---- the worker's whole crawl job against a fake edge ----


class FakeEdge:
    """The edge's fetch and documents endpoints, with the requests they saw."""

    def __init__(self, outcomes: dict[str, Sequence[FetchOutcome | int]], bodies: dict[str, bytes]) -> None:
        self.outcomes = {url: list(answers) for url, answers in outcomes.items()}
        self.bodies = bodies
        self.fetched: list[dict[str, Any]] = []
        self.tokens: set[str] = set()

    async def fetch(self, request: web.Request) -> web.StreamResponse:
        self.tokens.add(request.headers["Authorization"])
        body = await request.json()
        self.fetched.append({"job_id": request.match_info["job_id"], **body})
        answer = self.outcomes[body["url"]].pop(0)
        if isinstance(answer, int):
            return web.json_response(
                {"code": "unavailable", "message": "proxy"}, status=answer, headers={"Retry-After": "0"}
            )
        return web.Response(body=msgspec.json.encode(answer), content_type="application/json")

    async def document(self, request: web.Request) -> web.StreamResponse:
        self.tokens.add(request.headers["Authorization"])
        return web.Response(body=self.bodies[request.match_info["sha256"]], content_type="application/octet-stream")


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []

    async def start(fake: FakeEdge) -> EdgeDocuments:
        app = web.Application()
        app.router.add_post("/compute/jobs/{job_id}/fetch", fake.fetch)
        app.router.add_get("/compute/jobs/{job_id}/documents/{sha256}", fake.document)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return EdgeDocuments(
            base_url=f"http://127.0.0.1:{port}",
            session_token="ccs_token",
            job_id="job-7",
            timeout_s=20,
            read_timeout_s=5,
            user_agent="ccn-node/test",
        )

    yield start
    for runner in runners:
        await runner.cleanup()


START = "https://funder.example/"


async def test_a_crawl_job_fetches_through_the_edge_reads_its_bodies_and_runs_its_handler(serve: Any) -> None:
    second = b"no links here\n"
    second_ref = DocumentRef(sha256=hashlib.sha256(second).hexdigest(), size=len(second), media_type=PLAIN_TEXT)
    fake = FakeEdge(
        {
            START: [503, fetched(START, REF)],
            "https://funder.example/a": [fetched("https://funder.example/a", second_ref)],
        },
        {REF.sha256: BODY, second_ref.sha256: second},
    )
    source = await serve(fake)
    meter = FetchMeter()

    def run() -> tuple[dict[str, Any], str]:
        with metering(meter):
            return execute_crawl(source, LINK_CRAWL, {"start": START})

    result, checksum = await asyncio.to_thread(run)
    assert [request["url"] for request in fake.fetched] == [START, START, "https://funder.example/a"]
    assert {request["job_id"] for request in fake.fetched} == {"job-7"}
    assert set(fake.fetched[0]) == {"job_id", "url", "if_none_match", "if_modified_since"}
    assert fake.tokens == {"Bearer ccs_token"}
    assert result == {
        "pages": [
            {"url": START, "outcome": "fetched:200", "sha256": REF.sha256},
            {"url": "https://funder.example/a", "outcome": "fetched:200", "sha256": second_ref.sha256},
        ]
    }
    assert len(checksum) == 64
    assert meter.fetched == len(BODY) + len(second)  # the bodies count on the job's bandwidth


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ([401], "fetch_refused: https://funder.example/: the edge answered 401"),
        ([503] * MAX_ATTEMPTS, "fetch_unavailable: https://funder.example/: the edge answered 503"),
    ],
)
async def test_a_crawl_the_edge_will_not_serve_fails_with_a_reason_that_survives_a_worker(
    serve: Any, answers: list[int], reason: str
) -> None:
    source = await serve(FakeEdge({START: answers}, {}))
    with pytest.raises(JobRefused) as raised:
        await asyncio.to_thread(execute_crawl, source, LINK_CRAWL, {"start": START})
    assert str(raised.value).startswith(reason), raised.value
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)  # noqa: S301 - our own bytes


async def test_a_crawl_payload_off_its_schema_is_refused_before_any_fetch(serve: Any) -> None:
    fake = FakeEdge({}, {})
    source = await serve(fake)
    with pytest.raises(JobRefused, match="unknown field `begin`"):
        await asyncio.to_thread(execute_crawl, source, LINK_CRAWL, {"begin": START})
    assert fake.fetched == []


async def test_an_answer_that_is_not_an_outcome_fails_the_crawl(serve: Any) -> None:
    broken = FakeEdge({START: []}, {})

    async def not_an_outcome(request: web.Request) -> web.StreamResponse:
        return web.json_response({"type": "fetched", "url": 3})

    broken.fetch = not_an_outcome  # type: ignore[method-assign]
    source = await serve(broken)
    with pytest.raises(JobRefused, match="not a fetch outcome"):
        await asyncio.to_thread(execute_crawl, source, LINK_CRAWL, {"start": START})


async def test_a_crawl_over_its_bandwidth_budget_stops_before_the_body_is_asked_for(serve: Any) -> None:
    fake = FakeEdge({START: [fetched(START, REF)]}, {REF.sha256: BODY})
    source = await serve(fake)
    meter = FetchMeter(max_bytes_per_min=len(BODY) - 1)

    def run() -> tuple[dict[str, Any], str]:
        with metering(meter):
            return execute_crawl(source, LINK_CRAWL, {"start": START})

    with pytest.raises(BandwidthExceeded):  # the worker reports it as budget_exceeded
        await asyncio.to_thread(run)
    assert meter.fetched == 0 and len(fake.fetched) == 1
