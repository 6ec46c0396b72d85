"""The fetch proxy as it runs (`serve_fetch_proxy`): the allow-list is the policy book it
follows from CCN_POLICY, changed through its own domain commands; the gate is politeness shared
in NATS KV; jobs come from the scheduler (a stand-in here). On a NATS server of the test's own,
so its stand-in scheduler and its domain commands are the only ones answering."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from aiohttp import web

from ccn_cli.fixture_web import FixtureState, dev_loopback_setting, fixture_web
from ccn_cli.stack.ports import free_port
from ccn_core.commands import CommandClient, CommandContext, CommandServer
from ccn_core.errors import NotFound
from ccn_core.service import open_runtime
from ccn_fetch_proxy.app import serve_fetch_proxy
from ccn_fetch_proxy.policy_book import PolicyBook
from ccn_jobs.registry import JOB_TYPES
from ccn_proto.domains import AllowDomainRequest, DomainPolicyReply
from ccn_proto.fetch import FetchedPage, FetchOutcome, FetchPage, FetchRefused
from ccn_proto.scheduler import CancelJob, CancelJobReply, GetJob, JobView
from tests.conftest import make_settings
from tests.support.fetch_fixtures import job_view

CRAWL_TYPE = "crawl_domain_page"


@pytest.fixture
async def site_port() -> AsyncIterator[int]:
    port = free_port()
    runner = web.AppRunner(fixture_web(FixtureState()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def test_the_service_fetches_what_its_allow_list_allows_at_robots_txts_pace(
    isolated_nats: str, site_port: int, tmp_path: Path
) -> None:
    settings = msgspec.structs.replace(
        make_settings(isolated_nats, "postgresql://unused.invalid/none", tmp_path),
        fetch_dev_loopback=dev_loopback_setting(site_port),
    )
    views: dict[str, JobView] = {}

    async def get_job(command: GetJob, ctx: CommandContext) -> JobView:
        if command.job_id not in views:
            raise NotFound("no such job")
        return views[command.job_id]

    async def cancel_job(command: CancelJob, ctx: CommandContext) -> CancelJobReply:
        raise AssertionError("nothing here is disallowed by robots.txt")

    async with open_runtime("fetch-proxy", settings, needs_postgres=False) as runtime:
        scheduler = CommandServer(runtime.nc, "scheduler")
        scheduler.register("get_job", GetJob, get_job)
        scheduler.register("cancel_job", CancelJob, cancel_job)
        await scheduler.start()
        runtime.on_stop(scheduler.stop)
        proxy = await serve_fetch_proxy(runtime)
        client = CommandClient(runtime.nc, timeout=10.0)

        async def fetch(site: str, path: str) -> FetchOutcome:
            job_id = f"job-{secrets.token_hex(6)}"
            views[job_id] = _crawl_job(job_id, f"http://{site}:{site_port}{path}")
            request = FetchPage(job_id=job_id, node_id="node-1", url=f"http://{site}:{site_port}{path}")
            return await client.call("fetch", "fetch_page", request, FetchOutcome, correlation_id=job_id)  # type: ignore[arg-type]

        unlisted = await fetch("grants.localhost", "/opportunities/1")
        assert isinstance(unlisted, FetchRefused) and unlisted.reason == "domain_not_allowed"
        allowed = await client.call(
            "domains",
            "allow",
            AllowDomainRequest(domain="grants.localhost", by="test"),
            DomainPolicyReply,
            correlation_id="allow",
        )
        book = proxy._policies
        assert isinstance(book, PolicyBook) and await book.caught_up(allowed.policy.version, 5.0)

        first = await fetch("grants.localhost", "/opportunities/1")
        assert isinstance(first, FetchedPage) and first.status == 200 and first.body is not None
        # robots.txt asks ccnbot for a second between fetches: the shared limiter holds to it
        second = await fetch("grants.localhost", "/opportunities/2")
        assert isinstance(second, FetchRefused) and second.stage == "rate_limit"
        assert second.retry_after is not None and 0 < second.retry_after <= 1.0


def _crawl_job(job_id: str, url: str) -> JobView:
    """A job of a crawl type whose payload is this one URL (its sample payload, URL replaced)."""
    job_type = JOB_TYPES[CRAWL_TYPE]
    sample = msgspec.to_builtins(job_type.sample_payloads[0])
    payload = _with_url(sample, url)
    view = job_view(job_id, holder="node-1", prefix=url, job_type=CRAWL_TYPE)
    return msgspec.structs.replace(view, payload=payload)


def _with_url(payload: dict[str, object], url: str) -> dict[str, object]:
    return {key: (url if key in ("url", "seed_url", "start_url") else value) for key, value in payload.items()}
