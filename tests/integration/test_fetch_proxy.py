"""The fetch proxy against real NATS (records, body store, grants, counts) and the local
fixture web on loopback, which these tests alone reach through the development allowance.
Small bounds (a 1 MiB body, sub-second reads) keep the hostile cases fast."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import nats
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from ccn_cli.fixture_web import FixtureState, dev_loopback_setting, fixture_web
from ccn_cli.stack.ports import free_port
from ccn_core.commands import CommandClient
from ccn_core.domain.domain_policy import PolicyLimits
from ccn_core.egress import Allowed, EgressPolicy, decide_egress
from ccn_core.errors import Unavailable
from ccn_core.robots import RobotsRules
from ccn_core.service import Runtime, open_runtime
from ccn_core.topology import FETCH, FETCH_GRANTS
from ccn_fetch_proxy.app import start_fetch_proxy
from ccn_fetch_proxy.domain_gate import NOT_SENT, GateEvent, LimitRefusal, Permit, RequestOutcome, UnlimitedGate
from ccn_fetch_proxy.proxy import FetchProxy
from ccn_fetch_proxy.request_headers import USER_AGENT, request_headers
from ccn_fetch_proxy.robots_cache import CachedRobots
from ccn_fetch_proxy.safe_fetcher import FetchLimits, resolve_host
from ccn_proto.envelope import Envelope
from ccn_proto.fetch import (
    BreakerChanged,
    DomainLimitAlert,
    FetchedPage,
    FetchEvent,
    FetchFailed,
    FetchOutcome,
    FetchPage,
    FetchRefused,
    RobotsFetchRecorded,
)
from ccn_proto.scheduler import JobView
from tests.conftest import make_settings
from tests.support.fetch_fixtures import TEST_JOB_TYPES, MemoryPolicies, allowed, job_view

LIMITS = FetchLimits(max_body_bytes=1 << 20, connect_timeout_s=1.0, read_timeout_s=0.8, total_timeout_s=1.5)
SITES = ("grants.localhost", "foundation.localhost", "flaky.localhost", "hostile.localhost", "private.example.org")
DAY = timedelta(days=1)
_decode_record = msgspec.json.Decoder(Envelope[FetchEvent]).decode


@dataclass
class FakeJobs:
    views: dict[str, JobView] = field(default_factory=dict)
    cancelled: list[tuple[str, str]] = field(default_factory=list)

    async def view(self, job_id: str, correlation_id: str, *, fresh: bool = False) -> JobView | None:
        return self.views.get(job_id)

    async def cancel(self, job_id: str, reason: str, correlation_id: str) -> None:
        self.cancelled.append((job_id, reason))


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class RefusingGate:
    """Refuses every request, raising a limit alert as it does."""

    async def acquire(self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None) -> Permit | LimitRefusal:
        alert = DomainLimitAlert(domain=domain, limit="per_minute", denials=5, window_s=60.0)
        return LimitRefusal(
            stage="rate_limit", reason="per_minute", retry_after=12.5, detail=f"{domain} is busy", events=(alert,)
        )

    async def release(self, permit: Permit, outcome: RequestOutcome) -> Sequence[GateEvent]:
        raise AssertionError("nothing was acquired")


@dataclass
class WatchingGate:
    """Lets every request through and remembers what it was told; its half-open probe closes."""

    acquired: list[tuple[str, PolicyLimits, float | None]] = field(default_factory=list)
    released: list[RequestOutcome] = field(default_factory=list)

    async def acquire(self, domain: str, limits: PolicyLimits, crawl_delay_s: float | None) -> Permit | LimitRefusal:
        self.acquired.append((domain, limits, crawl_delay_s))
        return Permit(domain=domain, probe=True)

    async def release(self, permit: Permit, outcome: RequestOutcome) -> Sequence[GateEvent]:
        self.released.append(outcome)
        return (
            BreakerChanged(domain=permit.domain, state="closed", previous="half_open", reason="the probe succeeded"),
        )


@dataclass
class Harness:
    proxy: FetchProxy
    runtime: Runtime
    jobs: FakeJobs
    web: FixtureState
    port: int
    clock: Clock

    def job(self, prefix: str, *, node: str = "node-1", max_pages: int = 50, job_type: str = "test_site_crawl") -> str:
        job_id = f"job-{secrets.token_hex(6)}"
        self.jobs.views[job_id] = job_view(job_id, holder=node, prefix=prefix, max_pages=max_pages, job_type=job_type)
        return job_id

    def url(self, site: str, path: str = "/") -> str:
        return f"http://{site}:{self.port}{path}"

    async def fetch(self, site: str, path: str, *, job_id: str | None = None, node: str = "node-1") -> FetchOutcome:
        return await self.fetch_url(self.url(site, path), job_id=job_id or self.job(self.url(site)), node=node)

    async def fetch_url(self, url: str, *, job_id: str, node: str = "node-1") -> FetchOutcome:
        outcome = await self.proxy.fetch_page(
            FetchPage(job_id=job_id, node_id=node, url=url), correlation_id=f"test-{job_id}"
        )
        await self.assert_recorded(outcome, job_id)
        return outcome

    async def assert_recorded(self, outcome: FetchOutcome, job_id: str) -> None:
        """Exactly one record of this request, on its domain's subject, of the outcome's kind."""
        stored = await self.runtime.store.read(FETCH.name, "ccn.fetch.>")
        mine = [_decode_record(event.data) for event in stored if event.headers.get("Nats-Msg-Id") == outcome.fetch_id]
        assert len(mine) == 1, mine
        record = mine[0].data
        assert record.job_id == job_id and record.fetch_id == outcome.fetch_id  # type: ignore[union-attr]
        expected = {FetchedPage: "fetch.fetched", FetchRefused: "fetch.refused", FetchFailed: "fetch.failed"}
        assert mine[0].type == expected[type(outcome)]
        assert mine[0].correlation_id == f"test-{job_id}"


@pytest.fixture
async def harness(nats_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    port = free_port()
    state = FixtureState(slow_s=1.0, slowloris_interval_s=0.2)
    runner = web.AppRunner(fixture_web(state), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = msgspec.structs.replace(
        make_settings(nats_url, "postgresql://unused.invalid/none", tmp_path),
        fetch_dev_loopback=dev_loopback_setting(port),
    )
    jobs = FakeJobs()
    clock = Clock()

    async def resolve(name: str, timeout_s: float) -> list[str]:
        # a public-looking name whose only answer is private: refused at egress
        return ["10.0.0.7"] if name == "private.example.org" else await resolve_host(name, timeout_s)

    try:
        async with open_runtime("fetch-proxy", settings, needs_postgres=False) as runtime:
            proxy = await start_fetch_proxy(
                runtime,
                policies=MemoryPolicies(*(allowed(site) for site in SITES)),
                gate=UnlimitedGate(),
                jobs=jobs,
                job_types=TEST_JOB_TYPES,
                limits=LIMITS,
                resolve=resolve,
                health=False,
            )
            proxy.robots._clock = clock
            yield Harness(proxy, runtime, jobs, state, port, clock)
    finally:
        await runner.cleanup()


async def test_a_page_is_fetched_stored_once_and_granted_to_its_job(harness: Harness) -> None:
    first_job = harness.job(harness.url("grants.localhost"))
    second_job = harness.job(harness.url("grants.localhost"))
    first = await harness.fetch("grants.localhost", "/opportunities/3", job_id=first_job)
    second = await harness.fetch("grants.localhost", "/opportunities/3", job_id=second_job)
    assert isinstance(first, FetchedPage) and isinstance(second, FetchedPage)
    assert first.status == 200 and first.body is not None and first.body.media_type == "text/html"
    assert first.etag == '"opp-3"' and first.body.charset == "utf-8"
    assert second.body == first.body and first.fetch_id != second.fetch_id
    store = await harness.runtime.js.object_store("CCN_DOCUMENT_BODIES")
    info = await store.get_info(first.body.sha256)
    assert info.size == first.body.size
    body = (await store.get(first.body.sha256)).data or b""
    assert b"Maximum grant" in body and b"Eligibility" in body
    grants = await harness.runtime.js.key_value(FETCH_GRANTS.bucket)
    for job_id in (first_job, second_job):
        assert (await grants.get(f"{job_id}.{first.body.sha256}")).value is not None


async def test_the_command_answers_over_nats_and_pdfs_and_xhtml_are_kept(harness: Harness) -> None:
    job_id = harness.job(harness.url("grants.localhost"))
    client = CommandClient(harness.runtime.nc, timeout=5.0)
    request = FetchPage(job_id=job_id, node_id="node-1", url=harness.url("grants.localhost", "/guidance.pdf"))
    outcome = await client.call("fetch", "fetch_page", request, FetchOutcome, correlation_id=f"test-{job_id}")  # type: ignore[arg-type]
    assert isinstance(outcome, FetchedPage) and outcome.body is not None
    assert outcome.body.media_type == "application/pdf"
    await harness.assert_recorded(outcome, job_id)
    xhtml = await harness.fetch("grants.localhost", "/about.xhtml")
    assert isinstance(xhtml, FetchedPage) and xhtml.body is not None and xhtml.body.media_type == "text/html"


@pytest.mark.parametrize(
    ("site", "path", "stage", "reason"),
    [
        ("hostile.localhost", "/redirect/metadata", "redirect", "non_global_address"),
        ("hostile.localhost", "/redirect/loopback", "redirect", "non_global_address"),
        ("hostile.localhost", "/redirect/loopback-port", "redirect", "port_not_allowed"),
        ("hostile.localhost", "/redirect/v6", "redirect", "non_global_address"),
        ("hostile.localhost", "/redirect/decimal", "redirect", "non_global_address"),
    ],
)
async def test_redirects_and_names_to_internal_addresses_are_refused(
    harness: Harness, site: str, path: str, stage: str, reason: str
) -> None:
    outcome = await harness.fetch(site, path)
    assert isinstance(outcome, FetchRefused), outcome
    assert (outcome.stage, outcome.reason) == (stage, reason)


async def test_a_name_that_resolves_privately_is_refused_at_egress(harness: Harness) -> None:
    url = "http://private.example.org/"
    # its robots.txt is refused on the way too: disallowed (fail closed) until it can be read
    first = await harness.fetch_url(url, job_id=harness.job(url))
    assert isinstance(first, FetchRefused) and (first.stage, first.reason) == ("robots", "robots_unavailable")
    # with robots.txt known, the page itself meets the egress check
    harness.proxy.robots._entries["http://private.example.org"] = CachedRobots(
        rules=RobotsRules.allow_all(USER_AGENT), kind="allow_all", reason="test", valid_until=harness.clock.now + DAY
    )
    outcome = await harness.fetch_url(url, job_id=harness.job(url))
    assert isinstance(outcome, FetchRefused) and (outcome.stage, outcome.reason) == ("egress", "non_global_address")
    assert "private" in outcome.detail


async def test_each_check_refuses_in_its_order(harness: Harness) -> None:
    grants = harness.url("grants.localhost")
    outside = await harness.fetch("foundation.localhost", "/", job_id=harness.job(grants))
    assert isinstance(outside, FetchRefused) and (outside.stage, outside.reason) == ("job", "url_not_in_job")
    not_holder = await harness.fetch("grants.localhost", "/", job_id=harness.job(grants, node="node-2"))
    assert isinstance(not_holder, FetchRefused) and not_holder.reason == "not_job_holder"
    unknown = await harness.fetch("grants.localhost", "/", job_id="job-nonexistent")
    assert isinstance(unknown, FetchRefused) and unknown.reason == "unknown_job"
    no_fetch = await harness.fetch("grants.localhost", "/", job_id=harness.job(grants, job_type="test_no_fetch"))
    assert isinstance(no_fetch, FetchRefused) and no_fetch.reason == "job_does_not_fetch"
    job_id = harness.job("")  # a job whose scope is every URL: the later checks decide
    scheme = await harness.proxy.fetch_page(
        FetchPage(job_id=job_id, node_id="node-1", url="ftp://grants.localhost/"), correlation_id=f"test-{job_id}"
    )
    await harness.assert_recorded(scheme, job_id)
    assert isinstance(scheme, FetchRefused) and (scheme.stage, scheme.reason) == ("scheme", "scheme_not_allowed")
    unlisted = await harness.proxy.fetch_page(
        FetchPage(job_id=job_id, node_id="node-1", url="https://unlisted.example.org/"), correlation_id=f"test-{job_id}"
    )
    await harness.assert_recorded(unlisted, job_id)
    assert isinstance(unlisted, FetchRefused) and (unlisted.stage, unlisted.reason) == (
        "allow_list",
        "domain_not_allowed",
    )


async def test_a_robots_disallowed_url_is_refused_and_its_job_cancelled(harness: Harness) -> None:
    job_id = harness.job(harness.url("grants.localhost"))
    outcome = await harness.fetch("grants.localhost", "/private/report", job_id=job_id)
    assert isinstance(outcome, FetchRefused) and (outcome.stage, outcome.reason) == ("robots", "robots_disallowed")
    assert harness.jobs.cancelled == [
        (job_id, f"robots.txt disallows {harness.url('grants.localhost', '/private/report')}")
    ]
    assert harness.web.hits.get("grants.localhost/private/report") is None


async def test_robots_5xx_fails_closed_then_a_success_allows(harness: Harness) -> None:
    first = await harness.fetch("flaky.localhost", "/")
    assert isinstance(first, FetchRefused) and (first.stage, first.reason) == ("robots", "robots_unavailable")
    assert first.retry_after is not None and first.retry_after >= 1.0
    assert harness.jobs.cancelled == []  # a server error is not a disallow: the job stays
    harness.web.flaky_robots_ok = True
    still = await harness.fetch("flaky.localhost", "/")
    assert isinstance(still, FetchRefused) and still.reason == "robots_unavailable"  # until Retry-After
    harness.clock.now += timedelta(seconds=2)
    after = await harness.fetch("flaky.localhost", "/")
    assert isinstance(after, FetchedPage) and after.status == 200


async def test_robots_4xx_allows_all(harness: Harness) -> None:
    outcome = await harness.fetch("foundation.localhost", "/programmes")
    assert isinstance(outcome, FetchedPage) and outcome.status == 200 and outcome.body is not None


async def test_redirects_are_followed_by_hand_and_bounded(harness: Harness) -> None:
    chain = await harness.fetch("hostile.localhost", "/redirect/chain/3")
    assert isinstance(chain, FetchedPage) and chain.status == 200
    assert chain.final_url == harness.url("hostile.localhost", "/ok") and len(chain.redirects) == 4
    loop = await harness.fetch("hostile.localhost", "/redirect/loop")
    assert isinstance(loop, FetchFailed) and loop.reason == "too_many_redirects"
    assert harness.web.hits["hostile.localhost/redirect/loop"] == 11


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/bomb", "decompression_bomb"),
        ("/huge", "too_large"),
        ("/huge-chunked", "too_large"),
        ("/slowloris", "timeout"),
        ("/slow", "timeout"),
        ("/binary", "content_type_not_allowed"),
        ("/long-header", "bad_response"),
        ("/brotli", "bad_response"),
    ],
)
async def test_hostile_responses_fail_within_their_bounds(harness: Harness, path: str, reason: str) -> None:
    outcome = await harness.fetch("hostile.localhost", path)
    assert isinstance(outcome, FetchFailed), outcome
    assert outcome.reason == reason
    # cut at the bound: the 10 GB stream after 1 MiB, the slowloris at the total time
    assert outcome.elapsed_ms < LIMITS.total_timeout_s * 1000 + 1000


async def test_a_server_error_is_an_answer_without_a_body_and_outcomes_are_counted(harness: Harness) -> None:
    before = _counted("fetched", "5xx"), _counted("refused", "redirect")
    outcome = await harness.fetch("hostile.localhost", "/error")
    assert isinstance(outcome, FetchedPage) and outcome.status == 500 and outcome.body is None
    await harness.fetch("hostile.localhost", "/redirect/metadata")
    assert (_counted("fetched", "5xx"), _counted("refused", "redirect")) == (before[0] + 1, before[1] + 1)


def _counted(outcome: str, reason: str) -> float:
    return REGISTRY.get_sample_value("ccn_fetches_total", {"outcome": outcome, "reason": reason}) or 0.0


async def test_the_fetches_of_a_job_are_capped(harness: Harness) -> None:
    job_id = harness.job(harness.url("foundation.localhost"), max_pages=2)
    for path in ("/", "/contact"):
        assert isinstance(await harness.fetch("foundation.localhost", path, job_id=job_id), FetchedPage)
    third = await harness.fetch("foundation.localhost", "/programmes", job_id=job_id)
    assert isinstance(third, FetchRefused) and (third.stage, third.reason) == ("job", "too_many_fetches")


async def test_a_recrawl_sends_the_jobs_validators_never_the_nodes(harness: Harness) -> None:
    url = harness.url("grants.localhost", "/opportunities/5")
    recrawl = f"job-{secrets.token_hex(6)}"
    harness.jobs.views[recrawl] = job_view(
        recrawl, holder="node-1", prefix=harness.url("grants.localhost"), etag='"opp-5"'
    )
    outcome = await harness.proxy.fetch_page(FetchPage(job_id=recrawl, node_id="node-1", url=url), f"test-{recrawl}")
    await harness.assert_recorded(outcome, recrawl)
    assert isinstance(outcome, FetchedPage) and outcome.status == 304 and outcome.body is None
    assert outcome.etag == '"opp-5"'
    # a node's own validator would hide a change behind a 304: it is not sent
    first_crawl = harness.job(harness.url("grants.localhost"))
    forged = FetchPage(job_id=first_crawl, node_id="node-1", url=url, if_none_match='"opp-5"')
    fetched = await harness.proxy.fetch_page(forged, f"test-{first_crawl}")
    await harness.assert_recorded(fetched, first_crawl)
    assert isinstance(fetched, FetchedPage) and fetched.status == 200 and fetched.body is not None


async def test_the_site_sees_only_the_proxys_own_headers(harness: Harness) -> None:
    outcome = await harness.fetch("hostile.localhost", "/headers")
    assert isinstance(outcome, FetchedPage) and outcome.body is not None
    store = await harness.runtime.js.object_store("CCN_DOCUMENT_BODIES")
    echoed = ((await store.get(outcome.body.sha256)).data or b"").decode()
    names = {line.split(":", 1)[0].lower() for line in echoed.splitlines()}
    assert names == {"host", "user-agent", "accept", "accept-encoding"}
    assert f"Host: hostile.localhost:{harness.port}" in echoed and f"User-Agent: {USER_AGENT}" in echoed


async def test_a_job_the_scheduler_cannot_vouch_for_is_refused_for_now(harness: Harness) -> None:
    class Unreachable(FakeJobs):
        async def view(self, job_id: str, correlation_id: str, *, fresh: bool = False) -> JobView | None:
            raise Unavailable("the scheduler service did not answer in time", retry_after=2.0)

    harness.proxy._jobs = Unreachable()
    outcome = await harness.fetch("grants.localhost", "/", job_id="job-whatever")
    assert isinstance(outcome, FetchRefused)
    assert (outcome.stage, outcome.reason, outcome.retry_after) == ("job", "job_unverifiable", 2.0)


async def test_the_domain_gate_refuses_with_retry_after_and_its_alert_is_recorded(harness: Harness) -> None:
    harness.proxy._gate = RefusingGate()
    outcome = await harness.fetch("foundation.localhost", "/")
    assert isinstance(outcome, FetchRefused)
    assert (outcome.stage, outcome.reason, outcome.retry_after) == ("rate_limit", "per_minute", 12.5)
    (alert,) = await gate_records(harness, "foundation_localhost", outcome.fetch_id)
    assert alert.type == "fetch.limit_alert" and alert.data == DomainLimitAlert(
        domain="foundation.localhost", limit="per_minute", denials=5, window_s=60.0
    )


async def test_the_gate_hears_of_every_request_sent_and_its_breaker_changes_are_recorded(harness: Harness) -> None:
    gate = WatchingGate()
    harness.proxy._gate = gate
    job_id = harness.job(harness.url("grants.localhost"))
    outcome = await harness.fetch("grants.localhost", "/opportunities/1", job_id=job_id)
    assert isinstance(outcome, FetchedPage)
    # robots.txt first (no crawl-delay known yet), then the page under robots.txt's Crawl-delay
    assert [(domain, delay) for domain, _limits, delay in gate.acquired] == [
        ("grants.localhost", None),
        ("grants.localhost", 1.0),
    ]
    assert [released.status for released in gate.released] == [200, 200]
    assert all(released.failure is None and released.elapsed_ms > 0 for released in gate.released)
    changes = await gate_records(harness, "grants_localhost", outcome.fetch_id)
    assert [changed.type for changed in changes] == ["fetch.breaker_changed"] * 2
    assert all(changed.correlation_id == f"test-{job_id}" for changed in changes)
    failed = await harness.fetch("hostile.localhost", "/slow")
    assert isinstance(failed, FetchFailed) and gate.released[-1] == RequestOutcome(
        elapsed_ms=gate.released[-1].elapsed_ms, failure="timeout"
    )
    refused = await harness.fetch("hostile.localhost", "/redirect/metadata")
    assert isinstance(refused, FetchRefused) and gate.released[-1].status == 302


async def gate_records(harness: Harness, domain_id: str, fetch_id: str) -> list[Envelope[FetchEvent]]:
    stored = await harness.runtime.store.read(FETCH.name, f"ccn.fetch.{domain_id}.*")
    return [
        record
        for record in map(_decode_record, (event.data for event in stored))
        if record.causation_id == fetch_id and record.type in ("fetch.limit_alert", "fetch.breaker_changed")
    ]


SSRF_URLS = [
    ("http://169.254.169.254/latest/meta-data/", "egress"),
    ("http://[fd00:ec2::254]/latest/", "egress"),
    ("http://0x7f000001/", "egress"),
    ("http://0177.0.0.1/", "egress"),
    ("http://127.1/", "egress"),
    ("http://[::ffff:127.0.0.1]/", "egress"),
    ("http://[::ffff:a9fe:a9fe]/", "egress"),
    ("http://[64:ff9b::a9fe:a9fe]/", "egress"),
    ("http://metadata.google.internal/computeMetadata/v1/", "egress"),
    ("http://localhost/", "egress"),
    ("http://grants.localhost@169.254.169.254/", "scheme"),
    ("http://169.254.169.254#@grants.localhost/", "egress"),
    ("http://grants.localhost\\@169.254.169.254/", "scheme"),
    ("gopher://grants.localhost:70/_GET", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("dict://grants.localhost:11211/stat", "scheme"),
]


@pytest.mark.parametrize(("url", "stage"), SSRF_URLS)
async def test_ssrf_payloads_are_refused_and_reach_nothing(harness: Harness, url: str, stage: str) -> None:
    job_id = harness.job("")  # a job whose scope is every URL: the proxy's own checks decide
    outcome = await harness.fetch_url(url, job_id=job_id)
    assert isinstance(outcome, FetchRefused) and outcome.stage == stage, outcome
    assert harness.web.hits == {}


async def test_a_name_is_resolved_once_per_request_and_never_again_by_the_http_client(harness: Harness) -> None:
    await harness.fetch("foundation.localhost", "/")  # robots.txt known from here on
    asked: list[str] = []

    async def counting(name: str, timeout_s: float) -> list[str]:
        asked.append(name)
        return await resolve_host(name, timeout_s)

    harness.proxy._resolve = counting
    outcome = await harness.fetch("foundation.localhost", "/contact")
    assert isinstance(outcome, FetchedPage) and asked == ["foundation.localhost"]


@pytest.mark.parametrize("path", ["/huge", "/huge-chunked", "/bomb"])
async def test_robots_txt_reads_keep_the_first_bytes_of_a_huge_body_and_stop(harness: Harness, path: str) -> None:
    policy = EgressPolicy(loopback_allowance=frozenset({("hostile.localhost", harness.port)}))
    allowed_target = decide_egress(harness.url("hostile.localhost", path), lambda _name: ["127.0.0.1"], policy)
    assert isinstance(allowed_target, Allowed)
    response = await harness.proxy._fetcher.get(
        allowed_target, request_headers(), want_body=lambda _s, _t: True, max_body_bytes=512 * 1024, truncate=True
    )
    assert response.truncated and response.body is not None and len(response.body) == 512 * 1024


async def test_a_not_now_gives_the_jobs_fetch_back_and_a_spent_job_is_refused_with_its_permit_returned(
    harness: Harness,
) -> None:
    job_id = harness.job(harness.url("foundation.localhost"), max_pages=1)
    harness.proxy._gate = RefusingGate()
    for _ in range(3):
        refused = await harness.fetch("foundation.localhost", "/", job_id=job_id)
        assert isinstance(refused, FetchRefused) and refused.reason == "per_minute"
    gate = WatchingGate()
    harness.proxy._gate = gate
    assert isinstance(await harness.fetch("foundation.localhost", "/", job_id=job_id), FetchedPage)
    spent = await harness.fetch("foundation.localhost", "/contact", job_id=job_id)
    assert isinstance(spent, FetchRefused) and (spent.stage, spent.reason) == ("job", "too_many_fetches")
    # robots.txt, the page, then the page of the spent job: asked beside the count, its permit
    # came back unused
    assert len(gate.acquired) == 3 and gate.released[-1] == NOT_SENT


async def test_a_body_that_cannot_be_stored_is_an_error_to_retry_and_the_permit_still_comes_back(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = WatchingGate()
    harness.proxy._gate = gate

    async def unavailable(_data: bytes) -> str:
        raise nats.errors.TimeoutError

    monkeypatch.setattr(harness.proxy._bodies, "put", unavailable)
    job_id = harness.job(harness.url("foundation.localhost"))
    with pytest.raises(Unavailable):
        await harness.proxy.fetch_page(
            FetchPage(job_id=job_id, node_id="node-1", url=harness.url("foundation.localhost", "/")), "test-store"
        )
    assert [released.status for released in gate.released] == [404, 200]  # robots.txt, the page


async def test_every_robots_txt_request_is_recorded_for_the_request_that_caused_it(harness: Harness) -> None:
    job_id = harness.job(harness.url("grants.localhost"))
    first = await harness.fetch("grants.localhost", "/opportunities/1", job_id=job_id)
    second = await harness.fetch("grants.localhost", "/opportunities/2", job_id=job_id)
    stored = await harness.runtime.store.read(FETCH.name, "ccn.fetch.grants_localhost.robots_fetched")
    records = [_decode_record(event.data) for event in stored]
    # the second request found robots.txt cached (the stream holds other tests' records too)
    (record,) = [
        record
        for record in records
        if isinstance(record.data, RobotsFetchRecorded)
        and record.data.for_fetch_id in (first.fetch_id, second.fetch_id)
    ]
    assert isinstance(record.data, RobotsFetchRecorded)
    assert (record.data.for_fetch_id, record.data.job_id, record.data.status) == (first.fetch_id, job_id, 200)
    assert record.data.url == harness.url("grants.localhost", "/robots.txt") and record.causation_id == first.fetch_id
    assert record.correlation_id == f"test-{job_id}" and isinstance(second, FetchedPage)


async def test_robots_txt_put_off_by_the_domains_limits_is_not_cached_as_unreachable(harness: Harness) -> None:
    harness.proxy._gate = RefusingGate()
    refused = await harness.fetch("grants.localhost", "/opportunities/1")
    assert isinstance(refused, FetchRefused) and (refused.stage, refused.reason) == ("rate_limit", "per_minute")
    assert "robots.txt" in refused.detail and refused.retry_after == 12.5
    harness.proxy._gate = WatchingGate()
    assert isinstance(await harness.fetch("grants.localhost", "/opportunities/1"), FetchedPage)
