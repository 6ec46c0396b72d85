"""The fetch proxy's checks as pure functions, in the order issue #16 sets: the job, the scheme,
the allow-list, robots.txt (the rate limit and breaker, then the egress policy on the resolved
addresses, follow in the shell). Each returns a `Refusal` or says the request may go on; the
service only gathers what they read (the job's view, the domain's policy, robots.txt) and acts on
the answer.

A redirect hop is checked again from the scheme on, with the hop's own policy and robots.txt;
what refuses a hop is reported as stage `redirect` (`as_redirect`), its reason the hop's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import msgspec

from ccn_core.domain.domain_policy import DomainPolicyState, policy_id
from ccn_core.egress import EgressPolicy, Refused, Target, check_url
from ccn_fetch_proxy.robots_cache import CachedRobots
from ccn_jobs.job_type import JobType
from ccn_proto.fetch import FetchPage, RefusalStage
from ccn_proto.scheduler import JobView

# the record subject for a URL with no readable host (a policy id never starts with '_': a
# domain never starts with '.')
UNKNOWN_DOMAIN_ID = "_unknown"
_SUBJECT_TOKEN = re.compile(r"[a-z0-9-][a-z0-9_U-]{0,127}")


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    stage: RefusalStage
    reason: str
    detail: str = ""
    retry_after: float | None = None


class PolicyLookup(Protocol):
    """The allow-list as the proxy reads it. `policy_for(host)` is the policy that governs a
    canonical host name: its own, or a parent domain's that includes subdomains; None when no
    policy names it (refused as unknown)."""

    def policy_for(self, host: str) -> DomainPolicyState | None: ...


def job_refusal(view: JobView, node_id: str, url: str, job_types: Mapping[str, JobType[Any, Any]]) -> Refusal | None:
    """Is `url` one the node's current job may fetch? The node must hold the job, claimed, and
    the job's type must crawl (ccn_jobs.crawl) and count the URL in its scope."""
    if view.status != "claimed" or view.holder != node_id:
        return Refusal(stage="job", reason="not_job_holder", detail=f"the node does not hold job {view.job_id}")
    job_type = job_types.get(view.job_type)
    if job_type is None or job_type.crawl is None:
        return Refusal(stage="job", reason="job_does_not_fetch", detail=f"a {view.job_type} job fetches nothing")
    try:
        payload = msgspec.convert(view.payload, job_type.payload_type)
        in_scope = bool(job_type.crawl.in_scope(payload, url))
    except (msgspec.ValidationError, ValueError, TypeError) as error:
        return Refusal(stage="job", reason="payload_unreadable", detail=f"{type(error).__name__}: {error!s:.200}")
    if not in_scope:
        return Refusal(stage="job", reason="url_not_in_job", detail="the URL is outside the job's scope")
    return None


def job_max_fetches(view: JobView, job_types: Mapping[str, JobType[Any, Any]]) -> int:
    """The most fetches the job's own payload allows (its type's crawl spec); call after
    `job_refusal` let the job through."""
    job_type = job_types[view.job_type]
    assert job_type.crawl is not None
    return int(job_type.crawl.max_fetches(msgspec.convert(view.payload, job_type.payload_type)))


def with_job_validators(request: FetchPage, view: JobView, job_types: Mapping[str, JobType[Any, Any]]) -> FetchPage:
    """The request with the validators the job's payload gives for its URL (a recrawl's
    conditional GET) in place of any the node sent: a node's own ETag could make a changed page
    answer 304 and hide the change, so what is conditional is the job's to say. Call after
    `job_refusal` let the job through."""
    job_type = job_types[view.job_type]
    assert job_type.crawl is not None
    etag, modified = job_type.crawl.validators(msgspec.convert(view.payload, job_type.payload_type), request.url)
    if (etag, modified) == (request.if_none_match, request.if_modified_since):
        return request
    return msgspec.structs.replace(request, if_none_match=etag, if_modified_since=modified)


def fetch_budget_refusal(fetches_so_far: int, max_fetches: int) -> Refusal | None:
    if fetches_so_far >= max_fetches:
        return Refusal(stage="job", reason="too_many_fetches", detail=f"the job has made its {max_fetches} fetches")
    return None


def url_check(url: str, egress: EgressPolicy) -> Target | Refusal:
    """The scheme and the URL's own form (ccn_core.egress.check_url): everything about the URL
    that needs no lookup. The egress policy's refusals of the name itself (an IP literal, a
    special-use name, a port) are the egress stage's."""
    checked = check_url(url, egress)
    if isinstance(checked, Refused):
        stage: RefusalStage = (
            "scheme" if checked.code in ("scheme_not_allowed", "malformed_url", "userinfo") else "egress"
        )
        return Refusal(stage=stage, reason=checked.code, detail=checked.reason)
    return checked


def allow_list_refusal(target: Target, policy: DomainPolicyState | None) -> Refusal | None:
    if policy is None:
        return Refusal(
            stage="allow_list", reason="domain_not_allowed", detail=f"{target.host.name} is on no allow-list"
        )
    if policy.status == "blocked":
        return Refusal(
            stage="allow_list",
            reason="domain_blocked",
            detail=f"{target.host.name} is blocked: {policy.block_reason or ''}",
        )
    if policy.status != "allowed":
        return Refusal(stage="allow_list", reason="domain_not_allowed", detail=f"{target.host.name} is not reviewed")
    if not policy.permits(target.request_target):
        return Refusal(
            stage="allow_list", reason="path_not_allowed", detail="the path is outside the domain's allowed paths"
        )
    return None


def robots_refusal(robots: CachedRobots, target: Target, now: datetime) -> Refusal | None:
    """`robots_disallowed` when the site's robots.txt disallows the URL (its job is then
    cancelled: the URL will never be fetched); `robots_unavailable` while robots.txt could not be
    read (5xx, 429, unreachable: disallowed for now, asked again after `retry_after`)."""
    if robots.kind == "disallow_all":
        wait_s = max((robots.valid_until - now).total_seconds(), 1.0)
        return Refusal(stage="robots", reason="robots_unavailable", detail=robots.reason, retry_after=round(wait_s, 3))
    if not robots.rules.decide(target.url).allowed:
        return Refusal(stage="robots", reason="robots_disallowed", detail=f"robots.txt disallows {target.url[:300]}")
    return None


def egress_refusal(refused: Refused) -> Refusal:
    return Refusal(stage="egress", reason=refused.code, detail=refused.reason)


def as_redirect(refusal: Refusal, hop_url: str) -> Refusal:
    """A hop's refusal, as the refusal of the redirect that led there."""
    return Refusal(
        stage="redirect",
        reason=refusal.reason,
        detail=f"redirect to {hop_url[:300]} refused at {refusal.stage}: {refusal.detail}"[:1000],
        retry_after=refusal.retry_after,
    )


def record_domain_id(url: str, policy: DomainPolicyState | None, egress: EgressPolicy) -> str:
    """The aggregate id a fetch record is filed under: the governing policy's id, else the host's
    own policy id, else UNKNOWN_DOMAIN_ID (no readable host, or one too long for a subject)."""
    if policy is not None:
        return policy.policy_id
    checked = check_url(url, egress)
    if isinstance(checked, Refused):
        return UNKNOWN_DOMAIN_ID
    if checked.host.address is not None:
        return UNKNOWN_DOMAIN_ID
    return domain_record_id(checked.host.name)


def domain_record_id(domain: str) -> str:
    """A canonical domain's policy id, when it can name a subject; UNKNOWN_DOMAIN_ID otherwise."""
    candidate = policy_id(domain)
    if not _SUBJECT_TOKEN.fullmatch(candidate):
        return UNKNOWN_DOMAIN_ID
    return candidate
