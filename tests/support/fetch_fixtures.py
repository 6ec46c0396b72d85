"""What the fetch proxy's tests share: a crawl job type of their own (the real ones live in
ccn_jobs, built by another part of the work), job views, and an allow-list in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ccn_core.domain.domain_policy import DomainPolicyState, PolicyLimits, policy_id
from ccn_jobs.crawl import CrawledPage, CrawlSpec
from ccn_jobs.job_type import JobType
from ccn_proto.scheduler import JobView


class SiteCrawl(msgspec.Struct, frozen=True, kw_only=True):
    """Fetch pages under `prefix`, at most `max_pages` of them; `etag`: the validator a recrawl
    sends for every page."""

    prefix: str
    max_pages: int = 50
    etag: str | None = None


class SiteCrawlResult(msgspec.Struct, frozen=True):
    pages: int


def _in_scope(payload: SiteCrawl, url: str) -> bool:
    return url.startswith(payload.prefix)


def _next_urls(payload: SiteCrawl, pages: Sequence[CrawledPage]) -> list[str]:
    return [] if pages else [payload.prefix]


SITE_CRAWL: JobType[SiteCrawl, SiteCrawlResult] = JobType(
    name="test_site_crawl",
    version="1",
    payload_type=SiteCrawl,
    result_type=SiteCrawlResult,
    handler=lambda payload: SiteCrawlResult(pages=0),
    consent_scope="crawl",
    crawl=CrawlSpec(
        in_scope=_in_scope,
        next_urls=_next_urls,
        with_pages=lambda payload, pages: payload,
        max_fetches=lambda payload: payload.max_pages,
        validators=lambda payload, url: (payload.etag, None),
    ),
)
NOT_A_CRAWL: JobType[SiteCrawl, SiteCrawlResult] = JobType(
    name="test_no_fetch",
    version="1",
    payload_type=SiteCrawl,
    result_type=SiteCrawlResult,
    handler=lambda payload: SiteCrawlResult(pages=0),
    consent_scope="crawl",
)
TEST_JOB_TYPES: Mapping[str, JobType[Any, Any]] = {SITE_CRAWL.name: SITE_CRAWL, NOT_A_CRAWL.name: NOT_A_CRAWL}


def job_view(
    job_id: str,
    *,
    holder: str | None,
    prefix: str,
    status: str = "claimed",
    job_type: str = SITE_CRAWL.name,
    max_pages: int = 50,
    attempt: int = 1,
    etag: str | None = None,
) -> JobView:
    return JobView(
        job_id=job_id,
        job_type=job_type,
        status=status,  # type: ignore[arg-type]
        payload={"prefix": prefix, "max_pages": max_pages, "etag": etag},
        priority=0,
        max_retries=3,
        lease_s=60.0,
        attempt=attempt,
        holder=holder,
        lease_until=None,
        retry_at=None,
        batch_id=None,
        dataset_source=None,
        dataset_version=None,
        result=None,
        result_checksum=None,
        history=[],
        server_time=datetime.now(UTC),
    )


def allowed(domain: str, **limits: Any) -> DomainPolicyState:
    limits_ = PolicyLimits(**limits)
    return DomainPolicyState(policy_id=policy_id(domain), domain=domain, status="allowed", limits=limits_)


def blocked(domain: str, reason: str = "asked us not to") -> DomainPolicyState:
    return DomainPolicyState(policy_id=policy_id(domain), domain=domain, status="blocked", block_reason=reason)


class MemoryPolicies:
    """The allow-list as a dict: host -> policy (no subdomain rules)."""

    def __init__(self, *policies: DomainPolicyState) -> None:
        self.by_domain = {policy.domain: policy for policy in policies if policy.domain}

    def policy_for(self, host: str) -> DomainPolicyState | None:
        return self.by_domain.get(host)
