"""The fetch proxy's command: a node's `FetchPage`, checked in order and fetched, answered with
one FetchOutcome and recorded as one event in CCN_FETCH.

The decisions are the pure functions of ccn_fetch_proxy.fetch_checks; this module gathers what
they read (the job's view, the domain's policy, robots.txt, the resolved addresses), calls the
domain gate around every request it sends, and follows redirects by hand, checking each hop
again from the scheme on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import msgspec
from nats.js.kv import KeyValue

from ccn_core import ids
from ccn_core.dead_letter import printable
from ccn_core.document_bodies import ObjectStoreBodies, body_digest
from ccn_core.domain.domain_policy import DomainPolicyState, domain_of
from ccn_core.egress import Allowed, EgressPolicy, Refused, Target, check_answers
from ccn_core.errors import CcnError, Unavailable
from ccn_core.fetch_records import domain_record_id, record_event
from ccn_core.logging import get_logger
from ccn_core.metrics import FETCHES
from ccn_core.robots import MAX_ROBOTS_BYTES
from ccn_fetch_proxy.content_types import body_type
from ccn_fetch_proxy.domain_gate import NOT_SENT, DomainGate, GateEvent, LimitRefusal, Permit, RequestOutcome
from ccn_fetch_proxy.fetch_checks import (
    PolicyLookup,
    Refusal,
    allow_list_refusal,
    as_redirect,
    egress_refusal,
    fetch_budget_refusal,
    job_max_fetches,
    job_refusal,
    record_domain_id,
    robots_refusal,
    url_check,
    with_job_validators,
)
from ccn_fetch_proxy.fetch_records import FetchRecords
from ccn_fetch_proxy.job_access import FetchBudget, JobAccess
from ccn_fetch_proxy.request_headers import USER_AGENT, request_headers, robots_request_headers
from ccn_fetch_proxy.robots_cache import CachedRobots, FetchCause, RobotsCache, RobotsDeferred, RobotsFetch, origin_of
from ccn_fetch_proxy.safe_fetcher import FetchError, HopResponse, SafeFetcher, resolve_host
from ccn_jobs.crawl import MAX_FETCHES_PER_JOB
from ccn_jobs.job_type import JobType
from ccn_proto.documents import DocumentRef
from ccn_proto.envelope import Actor
from ccn_proto.fetch import (
    MAX_REDIRECTS,
    MAX_URL_CHARS,
    FailureReason,
    FetchedPage,
    FetchEvent,
    FetchFailed,
    FetchFailureRecorded,
    FetchOutcome,
    FetchPage,
    FetchRefusalRecorded,
    FetchRefused,
    PageFetchRecorded,
    RobotsFetchRecorded,
)
from ccn_proto.scheduler import JobView

# FetchRefused.detail and FetchFailed.detail are Text: a node decoding the reply refuses more
MAX_DETAIL_CHARS = 1000
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309 2.3.1.2
# a request whose own robots.txt fetch took the domain's slot waits this long at most for the
# next one, rather than sending the node away for having asked first: the default pace (30 a
# minute, one each 2 s) and a crawl-delay of a few seconds fit in it; once per origin a day
ROBOTS_SLOT_WAIT_S = 5.0
log = get_logger("ccn.fetch_proxy")

Resolve = Callable[[str, float], Awaitable[list[str]]]


class _Failure(msgspec.Struct, frozen=True):
    reason: FailureReason
    detail: str


class _JobBudget:
    """The job's fetches counted once per request: beside the gate when the request is to be
    sent, or before a refusal (refused requests count too, so a node cannot ask without end)."""

    def __init__(self, budget: FetchBudget, view: JobView, cap: int) -> None:
        self._budget = budget
        self._view = view
        self._cap = cap
        self._counted: Refusal | None = None
        self._done = False
        self.spent = False  # a fetch was counted: a "not now" gives it back

    async def spend(self) -> Refusal | None:
        """None when the fetch is counted; the refusal when the job has made all it may (or its
        count cannot be read: not now)."""
        if self._done:
            return self._counted
        self._done = True
        try:
            spent = await self._budget.spend(self._view.job_id, self._view.attempt, self._cap)
        except Unavailable as error:
            self._counted = Refusal(
                stage="job", reason="job_unverifiable", detail=error.message, retry_after=error.retry_after or 2.0
            )
            return self._counted
        self.spent = spent is not None
        self._counted = fetch_budget_refusal(self._cap if spent is None else spent - 1, self._cap)
        return self._counted

    async def or_refusal(self, refusal: Refusal) -> Refusal:
        """The job's own refusal when it has no fetch left, else `refusal`, counted."""
        return await self.spend() or refusal


class FetchProxy:
    def __init__(
        self,
        *,
        jobs: JobAccess,
        budget: FetchBudget,
        policies: PolicyLookup,
        gate: DomainGate,
        fetcher: SafeFetcher,
        bodies: ObjectStoreBodies,
        grants: KeyValue,
        records: FetchRecords,
        job_types: Mapping[str, JobType[Any, Any]],
        egress: EgressPolicy,
        resolve: Resolve = resolve_host,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._jobs = jobs
        self._budget = budget
        self._policies = policies
        self._gate = gate
        self._fetcher = fetcher
        self._bodies = bodies
        self._grants = grants
        self._records = records
        self._job_types = job_types
        self._egress = egress
        self._resolve = resolve
        self._clock = clock
        self.robots = RobotsCache(self._fetch_robots, USER_AGENT, clock=clock)
        # the node requests (fetch ids) whose robots.txt fetch was sent and not yet answered
        self._robots_sent_for: set[str] = set()

    async def fetch_page(
        self, request: FetchPage, correlation_id: str, causation_id: str | None = None
    ) -> FetchOutcome:
        """Answer one request and record it: exactly one record, whatever happens."""
        fetch_id = ids.new_event_id()
        cause = FetchCause(
            fetch_id=fetch_id, job_id=request.job_id, node_id=request.node_id, correlation_id=correlation_id
        )
        started = time.perf_counter()
        # a CcnError from here (the scheduler or NATS unavailable) reaches the caller, who
        # retries: nothing was fetched, so nothing is recorded
        gate_events: list[GateEvent] = []
        job: list[JobView] = []
        budget: list[_JobBudget] = []
        # writes the answer does not depend on (the last request's release, the body's grant):
        # made together with the record, before the node is answered
        deferred: list[Awaitable[None]] = []
        try:
            outcome, policy = await self._answer(request, cause, started, gate_events, job, budget, deferred)
        except BaseException:
            # what was put off still happens (a permit released, a grant written), never leaks
            await asyncio.gather(*deferred, return_exceptions=True)
            raise
        finally:
            self._robots_sent_for.discard(fetch_id)
        if budget and budget[0].spent and isinstance(outcome, FetchRefused) and outcome.retry_after is not None:
            # a "not now" (a limit, the breaker, robots.txt unreadable) sent nothing: the node
            # asks again, and that must not find the job's fetches spent
            await self._budget.refund(job[0].job_id, job[0].attempt)
        domain_id = record_domain_id(request.url, policy, self._egress)
        _count_and_log(request, outcome)
        record = self._records.append(
            record_event(
                domain_id,
                _record_of(request, outcome, domain_id),
                event_id=fetch_id,
                now=self._clock(),
                correlation_id=correlation_id,
                causation_id=causation_id,
                actor=Actor(kind="node", id=request.node_id),
            )
        )
        await _all_stored(asyncio.gather(record, *deferred, return_exceptions=True), request, outcome, fetch_id)
        # what the domain gate decided along the way: a breaker that moved, a limit alert
        await self._record_gate_events(gate_events, cause)
        return outcome

    async def _answer(
        self,
        request: FetchPage,
        cause: FetchCause,
        started: float,
        gate_events: list[GateEvent],
        job: list[JobView],
        budget: list[_JobBudget],
        deferred: list[Awaitable[None]],
    ) -> tuple[FetchOutcome, DomainPolicyState | None]:
        url, fetch_id, correlation_id = request.url, cause.fetch_id, cause.correlation_id

        def refused(refusal: Refusal) -> FetchRefused:
            return FetchRefused(
                fetch_id=fetch_id,
                url=url,
                stage=refusal.stage,
                reason=refusal.reason,
                detail=printable(refusal.detail, MAX_DETAIL_CHARS),
                retry_after=refusal.retry_after,
            )

        scope = await self._job_scope(request, correlation_id)
        if isinstance(scope, Refusal):
            return refused(scope), None
        job.append(scope)
        spend = _JobBudget(self._budget, scope, min(MAX_FETCHES_PER_JOB, job_max_fetches(scope, self._job_types)))
        budget.append(spend)
        request = with_job_validators(request, scope, self._job_types)
        target = url_check(url, self._egress)
        if isinstance(target, Refusal):
            return refused(await spend.or_refusal(target)), None
        policy = self._policy_for(target)
        refusal = allow_list_refusal(target, policy)
        if refusal is not None:
            return refused(await spend.or_refusal(refusal)), policy
        assert policy is not None
        cached = await self._robots_for(target, cause)
        refusal = cached if isinstance(cached, Refusal) else robots_refusal(cached, target, self._clock())
        if refusal is not None:
            refusal = await spend.or_refusal(refusal)
            if refusal.reason == "robots_disallowed":
                await self._cancel_for_robots(request, correlation_id)
            return refused(refusal), policy
        assert not isinstance(cached, Refusal)
        crawl_delay = cached.rules.decide(target.url).min_interval_s
        headers = request_headers(if_none_match=request.if_none_match, if_modified_since=request.if_modified_since)
        redirects: list[str] = []
        hop_policy = policy
        # every hop's request shares one time bound, so a chain of slow redirects ends too
        deadline = asyncio.get_running_loop().time() + self._fetcher.limits.total_timeout_s
        while True:
            answered = await self._send(
                target,
                hop_policy,
                crawl_delay,
                headers,
                deadline,
                gate_events,
                deferred,
                None if redirects else spend,
                wait_for_slot=fetch_id in self._robots_sent_for,
            )
            if isinstance(answered, Refusal):
                return refused(as_redirect(answered, target.url) if redirects else answered), policy
            if isinstance(answered, _Failure):
                return _failed(fetch_id, url, answered, started), policy
            location = answered.location if answered.status in REDIRECT_STATUSES else None
            if location is None:
                break
            if len(redirects) >= MAX_REDIRECTS:
                failure = _Failure("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")
                return _failed(fetch_id, url, failure, started), policy
            hop_url = urljoin(target.url, location.strip()[:MAX_URL_CHARS])
            hop = await self._check_hop(hop_url, cause)
            if isinstance(hop, Refusal):
                return refused(as_redirect(hop, hop_url)), policy
            target, hop_policy, crawl_delay = hop
            redirects.append(target.url)  # as checked and requested, never as the site spelled it
            # validators belong to the URL asked for, not to where it led
            headers = request_headers()
        return await self._fetched(request, fetch_id, target, answered, redirects, started, deferred), policy

    async def _job_scope(self, request: FetchPage, correlation_id: str) -> Refusal | JobView:
        try:
            return await self._checked_job_scope(request, correlation_id)
        except Unavailable as error:
            # nothing was asked of any site: the node may ask again once the scheduler answers
            return Refusal(
                stage="job", reason="job_unverifiable", detail=error.message, retry_after=error.retry_after or 2.0
            )

    async def _checked_job_scope(self, request: FetchPage, correlation_id: str) -> Refusal | JobView:
        view = await self._jobs.view(request.job_id, correlation_id)
        if view is not None and job_refusal(view, request.node_id, request.url, self._job_types) is not None:
            # the view may be a cached one from before the node claimed the job
            view = await self._jobs.view(request.job_id, correlation_id, fresh=True)
        if view is None:
            return Refusal(stage="job", reason="unknown_job", detail=f"no job {request.job_id}")
        return job_refusal(view, request.node_id, request.url, self._job_types) or view

    def _policy_for(self, target: Target) -> DomainPolicyState | None:
        if target.host.address is not None:
            return None  # the allow-list is of domains
        return self._policies.policy_for(target.host.name)

    async def _check_hop(self, url: str, cause: FetchCause) -> Refusal | tuple[Target, DomainPolicyState, float | None]:
        target = url_check(url, self._egress)
        if isinstance(target, Refusal):
            return target
        policy = self._policy_for(target)
        refusal = allow_list_refusal(target, policy)
        if refusal is not None:
            return refusal
        assert policy is not None
        cached = await self._robots_for(target, cause)
        if isinstance(cached, Refusal):
            return cached
        refusal = robots_refusal(cached, target, self._clock())
        if refusal is not None:
            return refusal
        return target, policy, cached.rules.decide(target.url).min_interval_s

    async def _robots_for(self, target: Target, cause: FetchCause) -> CachedRobots | Refusal:
        try:
            return await self.robots.robots_for(target, cause)
        except RobotsDeferred as deferred:
            # robots.txt is asked for under the domain's limits too; a "not now" sent nothing
            return Refusal(
                stage=deferred.stage, reason=deferred.reason, detail=deferred.detail, retry_after=deferred.retry_after
            )

    async def _send(
        self,
        target: Target,
        policy: DomainPolicyState,
        crawl_delay: float | None,
        headers: dict[str, str],
        deadline: float,
        gate_events: list[GateEvent],
        deferred: list[Awaitable[None]] | None = None,
        budget: _JobBudget | None = None,
        *,
        wait_for_slot: bool = False,
    ) -> HopResponse | Refusal | _Failure:
        """One request through the gate: the limiter first, then the egress check on the
        resolved addresses, then the GET to exactly those addresses. The permit of a last
        response (not a redirect) is released in `deferred`, beside the other writes; a
        redirect's is released at once, since the next hop may need the domain's slot. The
        job's fetch is counted (`budget`, on the first hop) while the gate is asked, not before.
        `wait_for_slot`: this request's own robots.txt fetch was just sent, so short "not now"s
        are waited out here (`_after_a_short_wait`)."""
        domain = policy.domain or domain_of(policy.policy_id)

        async def acquire() -> Permit | LimitRefusal | Refusal:
            permit = await self._acquire(domain, policy, crawl_delay)
            if wait_for_slot:
                permit = await self._after_a_short_wait(permit, domain, policy, crawl_delay, deadline, gate_events)
            return permit

        if budget is None:
            permit = await acquire()
        else:
            permit, over_budget = await asyncio.gather(acquire(), budget.spend())
            if over_budget is not None:
                if isinstance(permit, Permit):
                    await self._release(permit, NOT_SENT, gate_events)
                return over_budget
        if isinstance(permit, Refusal):
            return permit
        if isinstance(permit, LimitRefusal):
            gate_events.extend(permit.events)
            return Refusal(
                stage=permit.stage, reason=permit.reason, detail=permit.detail, retry_after=permit.retry_after
            )
        gate_events.extend(permit.events)
        sent = time.perf_counter()
        allowed = await self._egress_check(target)
        if isinstance(allowed, Refusal):
            await self._release(permit, NOT_SENT, gate_events)
            return allowed
        try:
            response = await self._fetcher.get(allowed, headers, want_body=_wants_body, deadline=deadline)
        except FetchError as error:
            elapsed = (time.perf_counter() - sent) * 1000
            await self._release(permit, RequestOutcome(elapsed_ms=elapsed, failure=error.reason), gate_events)
            return _Failure(error.reason, error.detail)
        elapsed = (time.perf_counter() - sent) * 1000
        release = self._release(
            permit,
            RequestOutcome(status=response.status, elapsed_ms=elapsed, retry_after=response.retry_after),
            gate_events,
        )
        if deferred is None or response.status in REDIRECT_STATUSES:
            await release
        else:
            deferred.append(release)
        return response

    async def _after_a_short_wait(
        self,
        permit: Permit | LimitRefusal | Refusal,
        domain: str,
        policy: DomainPolicyState,
        crawl_delay: float | None,
        deadline: float,
        gate_events: list[GateEvent],
    ) -> Permit | LimitRefusal | Refusal:
        """Rate-limit "not now"s waited out while they add up to at most ROBOTS_SLOT_WAIT_S (the
        crawl-delay and the per-minute pace may each want their turn), asking the gate again
        after each."""
        loop = asyncio.get_running_loop()
        give_up_at = min(loop.time() + ROBOTS_SLOT_WAIT_S, deadline)
        while isinstance(permit, LimitRefusal) and permit.stage == "rate_limit" and permit.retry_after is not None:
            # a hair past the moment named, so the gate's own clock has reached it too
            wake_at = loop.time() + permit.retry_after + 0.01
            if wake_at >= give_up_at:
                break
            gate_events.extend(permit.events)
            await asyncio.sleep(wake_at - loop.time())
            permit = await self._acquire(domain, policy, crawl_delay)
        return permit

    async def _acquire(
        self, domain: str, policy: DomainPolicyState, crawl_delay: float | None
    ) -> Permit | LimitRefusal | Refusal:
        try:
            return await self._gate.acquire(domain, policy.limits, crawl_delay)
        except CcnError as error:
            # limits that cannot be checked are a refusal, never a pass
            return Refusal(
                stage="rate_limit",
                reason="limits_unavailable",
                detail=error.message,
                retry_after=error.retry_after or 1.0,
            )

    async def _release(self, permit: Permit, outcome: RequestOutcome, gate_events: list[GateEvent]) -> None:
        try:
            gate_events.extend(await self._gate.release(permit, outcome))
        except Exception:
            log.exception("the domain gate failed to take a request's outcome", domain=permit.domain)

    async def _egress_check(self, target: Target) -> Allowed | Refusal:
        if target.host.address is not None:
            checked = check_answers(target, [str(target.host.address)], self._egress)
        else:
            try:
                answers = await self._resolve(target.host.name, self._fetcher.limits.resolve_timeout_s)
            except (OSError, TimeoutError, UnicodeError) as error:
                return Refusal(
                    stage="egress",
                    reason="resolution_failed",
                    detail=f"{target.host.name} did not resolve: {type(error).__name__}: {error!s:.200}",
                )
            checked = check_answers(target, answers, self._egress)
        return egress_refusal(checked) if isinstance(checked, Refused) else checked

    async def _fetched(
        self,
        request: FetchPage,
        fetch_id: str,
        target: Target,
        response: HopResponse,
        redirects: list[str],
        started: float,
        deferred: list[Awaitable[None]],
    ) -> FetchedPage | FetchFailed:
        body_ref: DocumentRef | None = None
        if 200 <= response.status < 300 and response.status != 204:
            kind = body_type(response.content_type)
            if kind is None:
                failure = _Failure(
                    "content_type_not_allowed",
                    f"Content-Type {str(response.content_type)[:100]!r} is not one the jobs read",
                )
                return _failed(fetch_id, request.url, failure, started)
            if response.body:
                digest = body_digest(response.body)
                # stored beside the grant and the record, all before the node is answered
                deferred.append(self._store_body(response.body))
                deferred.append(self._grant(f"{request.job_id}.{digest}", fetch_id))
                body_ref = DocumentRef(
                    sha256=digest, size=len(response.body), media_type=kind.media_type, charset=kind.charset
                )
        return FetchedPage(
            fetch_id=fetch_id,
            url=request.url,
            final_url=target.url,
            status=response.status,
            content_type=printable(response.content_type, 256) if response.content_type else None,
            body=body_ref,
            etag=response.etag,
            last_modified=response.last_modified,
            redirects=redirects,
            elapsed_ms=_elapsed_ms(started),
            fetched_at=self._clock(),
        )

    async def _store_body(self, body: bytes) -> None:
        await self._bodies.put(body)

    async def _grant(self, key: str, fetch_id: str) -> None:
        await self._grants.put(key, msgspec.json.encode({"fetch_id": fetch_id}))

    async def _cancel_for_robots(self, request: FetchPage, correlation_id: str) -> None:
        reason = f"robots.txt disallows {request.url[:500]}"
        log.warning(
            "robots.txt disallows a job's URL; cancelling the job", job_id=request.job_id, url=request.url[:500]
        )
        try:
            await self._jobs.cancel(request.job_id, reason, correlation_id)
        except CcnError as error:
            # the refusal stands whether or not the cancel went through; the job's own lease
            # ends it otherwise
            log.warning("could not cancel the job", job_id=request.job_id, code=error.code, reason=error.message)

    async def _fetch_robots(self, origin: Target, cause: FetchCause) -> RobotsFetch:
        """robots.txt of the origin, through the same checks as any fetch (the scheme, each
        hop's allow-list, the egress policy) and the domain's gate; anything refused on the way
        is `unreachable`, which disallows (fail closed), except the gate's "not now"
        (RobotsDeferred), which caches nothing. Every request sent is recorded."""
        url = f"{origin_of(origin)}/robots.txt"
        response: HopResponse | None = None
        deadline = asyncio.get_running_loop().time() + self._fetcher.limits.total_timeout_s
        for hop in range(ROBOTS_MAX_REDIRECTS + 1):
            target = url_check(url, self._egress)
            if isinstance(target, Refusal):
                return RobotsFetch(None)
            policy = self._policy_for(target)
            # the origin's own robots.txt is asked for whatever paths its policy allows
            if policy is None or (hop > 0 and allow_list_refusal(target, policy) is not None):
                return RobotsFetch(None)
            gate_events: list[GateEvent] = []
            permit = await self._acquire(policy.domain or domain_of(policy.policy_id), policy, None)
            if not isinstance(permit, Permit):
                if isinstance(permit, LimitRefusal):
                    await self._record_gate_events(permit.events, cause)
                raise RobotsDeferred(
                    permit.stage,
                    permit.reason,
                    permit.retry_after or 1.0,
                    f"robots.txt of {target.authority} was not asked for now: {permit.detail}",
                )
            await self._record_gate_events(permit.events, cause)
            allowed = await self._egress_check(target)
            if isinstance(allowed, Refusal):
                await self._release(permit, NOT_SENT, gate_events)
                await self._record_gate_events(gate_events, cause)
                return RobotsFetch(None)
            sent = time.perf_counter()
            self._robots_sent_for.add(cause.fetch_id)
            failure: FetchError | None = None
            try:
                response = await self._fetcher.get(
                    allowed,
                    robots_request_headers(),
                    want_body=lambda status, _type: 200 <= status < 300,
                    max_body_bytes=MAX_ROBOTS_BYTES,
                    truncate=True,
                    deadline=deadline,
                )
                elapsed = (time.perf_counter() - sent) * 1000
                answered = RequestOutcome(status=response.status, elapsed_ms=elapsed, retry_after=response.retry_after)
            except FetchError as error:
                failure, response = error, None
                elapsed = (time.perf_counter() - sent) * 1000
                answered = RequestOutcome(elapsed_ms=elapsed, failure=error.reason)
            await self._release(permit, answered, gate_events)
            await self._record_robots(target, policy, cause, elapsed, status=answered.status, failure=failure)
            await self._record_gate_events(gate_events, cause)
            if response is None:
                log.info("robots.txt unreachable", origin=origin_of(origin), reason=answered.failure)
                return RobotsFetch(None)
            if response.status not in REDIRECT_STATUSES or not response.location:
                return RobotsFetch(response.status, response.body or b"", response.retry_after)
            url = urljoin(target.url, response.location.strip()[:8192])
        assert response is not None
        return RobotsFetch(response.status)  # too many redirects: RFC 9309 counts it unavailable

    async def _record_robots(
        self,
        target: Target,
        policy: DomainPolicyState,
        cause: FetchCause,
        elapsed_ms: float,
        *,
        status: int | None = None,
        failure: FetchError | None = None,
    ) -> None:
        record = RobotsFetchRecorded(
            for_fetch_id=cause.fetch_id,
            job_id=cause.job_id,
            node_id=cause.node_id,
            domain=policy.domain or domain_of(policy.policy_id),
            url=target.url,
            status=status,
            failure=failure.reason if failure is not None else None,
            detail=printable(failure.detail, MAX_DETAIL_CHARS) if failure is not None else "",
            elapsed_ms=round(elapsed_ms, 3),
        )
        await self._append_record(policy.policy_id, record, cause, Actor(kind="node", id=cause.node_id))

    async def _record_gate_events(self, events: Sequence[GateEvent], cause: FetchCause) -> None:
        for event in events:
            await self._append_record(
                domain_record_id(event.domain), event, cause, Actor(kind="service", id="fetch-proxy")
            )

    async def _append_record(self, domain_id: str, event: FetchEvent, cause: FetchCause, actor: Actor) -> None:
        await self._records.append(
            record_event(
                domain_id,
                event,
                event_id=ids.new_event_id(),
                now=self._clock(),
                correlation_id=cause.correlation_id,
                causation_id=cause.fetch_id,
                actor=actor,
            )
        )


async def _all_stored(
    writes: Awaitable[list[BaseException | None]], request: FetchPage, outcome: FetchOutcome, fetch_id: str
) -> None:
    """Every write of a fetch waited for; one that failed (NATS away) is an error the node can
    retry on, with a line an operator can act on, never an answer that names what was not stored."""
    failures = [result for result in await writes if isinstance(result, BaseException)]
    if not failures:
        return
    for failure in failures:
        if not isinstance(failure, Exception):
            raise failure  # a cancellation stays one
    log.error(
        "a fetch's record, body or grant could not be stored; the node is told to retry",
        fetch_id=fetch_id,
        job_id=request.job_id,
        node_id=request.node_id,
        url=request.url[:300],
        outcome=type(outcome).__name__,
        errors=[f"{type(failure).__name__}: {failure!s:.200}" for failure in failures],
    )
    raise Unavailable("the fetch could not be recorded; try again", retry_after=1.0)


def _count_and_log(request: FetchPage, outcome: FetchOutcome) -> None:
    match outcome:
        case FetchedPage(status=status):
            FETCHES.labels("fetched", f"{status // 100}xx").inc()
        case FetchRefused(stage=stage, reason=reason):
            FETCHES.labels("refused", stage).inc()
            if stage in ("egress", "redirect"):
                # what an attempt to turn the proxy against internal addresses looks like: watched
                log.warning(
                    "fetch refused by the egress policy",
                    stage=stage,
                    reason=reason,
                    job_id=request.job_id,
                    node_id=request.node_id,
                    url=request.url[:300],
                )
        case FetchFailed(reason=reason):
            FETCHES.labels("failed", reason).inc()


def _wants_body(status: int, content_type: str | None) -> bool:
    return 200 <= status < 300 and body_type(content_type) is not None


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _failed(fetch_id: str, url: str, failure: _Failure, started: float) -> FetchFailed:
    return FetchFailed(
        fetch_id=fetch_id,
        url=url,
        reason=failure.reason,
        detail=printable(failure.detail, MAX_DETAIL_CHARS),
        elapsed_ms=_elapsed_ms(started),
    )


def _record_of(request: FetchPage, outcome: FetchOutcome, domain_id: str) -> FetchEvent:
    domain = "" if domain_id.startswith("_") else domain_of(domain_id)
    match outcome:
        case FetchedPage():
            return PageFetchRecorded(
                fetch_id=outcome.fetch_id,
                job_id=request.job_id,
                node_id=request.node_id,
                domain=domain,
                url=request.url,
                final_url=outcome.final_url,
                status=outcome.status,
                content_type=outcome.content_type,
                sha256=outcome.body.sha256 if outcome.body else None,
                size=outcome.body.size if outcome.body else None,
                not_modified=outcome.status == 304,
                redirects=len(outcome.redirects),
                elapsed_ms=outcome.elapsed_ms,
            )
        case FetchRefused():
            return FetchRefusalRecorded(
                fetch_id=outcome.fetch_id,
                job_id=request.job_id,
                node_id=request.node_id,
                domain=domain,
                url=request.url,
                stage=outcome.stage,
                reason=outcome.reason,
                detail=outcome.detail,
            )
        case FetchFailed():
            return FetchFailureRecorded(
                fetch_id=outcome.fetch_id,
                job_id=request.job_id,
                node_id=request.node_id,
                domain=domain,
                url=request.url,
                reason=outcome.reason,
                detail=outcome.detail,
                elapsed_ms=outcome.elapsed_ms,
            )
    raise AssertionError(f"unknown outcome {type(outcome).__name__}")
