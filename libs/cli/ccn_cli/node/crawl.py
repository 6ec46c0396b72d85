"""A crawl job's fetches, as the node makes them before the handler runs (the loop of
ccn_jobs.crawl's docstring), with the I/O passed in: a `fetch` function that asks the edge for a
URL and a BodyReader that reads a fetched body, so the loop and its rules are tested without
either (ccn_cli.node.documents wires them to the edge).

- The loop asks `next_urls` for the URLs to fetch given the pages so far, fetches each once (a
  URL asked for again is skipped: it cannot make the loop go round for ever), and ends when
  `next_urls` has nothing new or `max_fetches` (never past MAX_FETCHES_PER_JOB) were made.
- A fetch answered "not now" (a refusal with `retry_after`, or the edge saying the proxy is
  unavailable) is asked again after that wait, at most MAX_ATTEMPTS times and only while the
  job's time allows. Still "not now" after that, the job fails (and the scheduler retries it
  later): a result built on a passing refusal would differ from the result another node gets
  for the same job once it passes, and results are compared by checksum.
- A refusal without `retry_after` (robots.txt, allow-list, egress policy...) and a failure of
  the site (timeout, too large...) are what the page is: the handler sees them.
- A fetched body is read through the reader and checked against its reference's size and
  sha256 before the handler sees it, inline; one that cannot be read fails the job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

import msgspec

from ccn_jobs.crawl import MAX_FETCHES_PER_JOB, CrawledPage, CrawlSpec
from ccn_jobs.documents import BodyReader, checked_reference_body
from ccn_jobs.errors import DocumentRefused
from ccn_proto.documents import InlineDocument
from ccn_proto.fetch import FetchedPage, FetchOutcome, FetchRefused

P = TypeVar("P", bound=msgspec.Struct)

# a domain's pace (its crawl-delay, its per-minute limit) is the usual "not now": a few jobs of
# one site in flight each wait their turn, so a job is patient for several turns
MAX_ATTEMPTS: Final = 8
# the wait before asking again when the edge said "not now" without saying for how long
DEFAULT_RETRY_AFTER_S: Final = 1.0
# a retry is made only if its wait ends this long before the job's time does, so that the fetch
# itself and the handler still have time to run
RETRY_MARGIN_S: Final = 2.0


class FetchUnavailable(Exception):
    """The edge could not pass the fetch on now (the proxy is down or busy, or the node is over
    its fetch rate): ask again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CrawlInterrupted(ValueError):
    """The crawl could not be finished now; the message is the job's failure reason."""


Fetch = Callable[[str], Awaitable[FetchOutcome]]


@dataclass
class CrawlClock:
    """The job's time: when it ends, and how to wait (injected, so tests wait for nothing)."""

    deadline: float
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    def allows(self, wait_s: float) -> bool:
        return self.now() + wait_s + RETRY_MARGIN_S < self.deadline


async def fetch_with_retries(fetch: Fetch, url: str, clock: CrawlClock) -> FetchOutcome:
    """The fetch's outcome once it is not a "not now"; CrawlInterrupted if it still is after
    MAX_ATTEMPTS, or when the wait would outlast the job's time."""
    attempt = 0
    while True:
        attempt += 1
        try:
            outcome = await fetch(url)
        except FetchUnavailable as exc:
            wait_s = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER_S
            why = str(exc)
        else:
            if not isinstance(outcome, FetchRefused) or outcome.retry_after is None:
                return outcome
            wait_s, why = outcome.retry_after, f"refused for now ({outcome.stage}: {outcome.reason})"
        if attempt >= MAX_ATTEMPTS or not clock.allows(wait_s):
            raise CrawlInterrupted(f"fetch_unavailable: {url}: {why}; asked {attempt} times, next try in {wait_s:g} s")
        await clock.sleep(wait_s)


async def crawled_page(url: str, outcome: FetchOutcome, reader: BodyReader, job_type: str) -> CrawledPage:
    """The page as the handler sees it: the outcome, and its body read and checked, inline."""
    if not isinstance(outcome, FetchedPage) or outcome.body is None:
        return CrawledPage(url=url, outcome=outcome)
    ref = outcome.body
    try:
        data = await reader.read(ref.sha256, ref.size)
    except LookupError as exc:
        raise DocumentRefused(job_type, "body_missing", str(exc)) from None
    data = checked_reference_body(ref, data, job_type)
    document = InlineDocument(media_type=ref.media_type, data=data, size=len(data), charset=ref.charset)
    return CrawledPage(url=url, outcome=outcome, document=document)


async def crawl_pages(
    spec: CrawlSpec[P], payload: P, fetch_page: Callable[[str], Awaitable[CrawledPage]]
) -> list[CrawledPage]:
    """Every page the job's crawl asks for, in the order fetched (see the module's docstring)."""
    limit = min(spec.max_fetches(payload), MAX_FETCHES_PER_JOB)
    pages: list[CrawledPage] = []
    asked: set[str] = set()
    while len(pages) < limit:
        fresh = [url for url in spec.next_urls(payload, pages) if url not in asked]
        if not fresh:
            break
        for url in fresh:
            if len(pages) >= limit:
                break
            if url in asked:  # named twice in one round
                continue
            asked.add(url)
            pages.append(await fetch_page(url))
    return pages


async def crawl(
    spec: CrawlSpec[P], payload: P, fetch: Fetch, reader: BodyReader, job_type: str, clock: CrawlClock
) -> P:
    """The payload with its pages in place, ready for the handler."""

    async def fetch_page(url: str) -> CrawledPage:
        return await crawled_page(url, await fetch_with_retries(fetch, url, clock), reader, job_type)

    return spec.with_pages(payload, await crawl_pages(spec, payload, fetch_page))
