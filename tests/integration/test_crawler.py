"""The crawler against real NATS and Postgres with the real scheduler: a campaign's seeds become
crawl jobs, a finished job's page is recorded (changed, then unchanged on a 304) and its links
join the frontier, a recrawl is a conditional GET, a dead job is a failed page tried again later,
and a crawler killed mid-campaign picks up where it was: the jobs that finished while it was down
are recorded from its durable consumer, and the sweep finds any the consumer never heard of."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ccn_core import ids
from ccn_core.commands import CommandClient
from ccn_core.errors import BadInput, NotFound
from ccn_core.eventstore import EventStore
from ccn_core.service import Runtime, open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import FETCH
from ccn_crawler.app import start_crawler
from ccn_crawler.campaigns import Crawler
from ccn_proto.crawl import (
    CampaignList,
    CampaignSettings,
    CampaignView,
    GetCampaign,
    ListCampaigns,
    PauseCampaign,
    ResumeCampaign,
    StartCampaign,
)
from ccn_proto.scheduler import CancelJob, CancelJobReply, ClaimJobs, ClaimJobsReply, JobOffer
from ccn_scheduler.app import start_scheduler
from tests.conftest import make_settings
from tests.integration.test_scheduler import FAST, Scheduler, answering, eventually, scheduler_client
from tests.support.validation import validation_service


def page_result(
    url: str,
    *,
    status: int = 200,
    text_sha256: str | None = "a" * 64,
    etag: str | None = None,
    links: tuple[str, ...] = (),
    fields: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """A crawl_domain_page result, as a node submits one (ccn_jobs.crawl_domain_page)."""
    return {
        "fetch": {"url": url, "outcome": "fetched", "status": status, "final_url": url, "etag": etag},
        "title": None,
        "text": "",
        "chars": 0,
        "text_truncated": False,
        "text_sha256": text_sha256,
        "links": list(links),
        "links_truncated": False,
        "fields": [],
        "fields_found": fields[0],
        "fields_asked": fields[1],
        "fields_truncated": False,
        "crawler_version": "1",
    }


SETTINGS = CampaignSettings(
    name="local funders",
    seeds=["https://funder.example/", "https://trust.example/"],
    max_depth=2,
    max_pages=20,
    first_interval_s=1.0,
    recrawl_min_s=1.0,
    recrawl_max_s=60.0,
)


@pytest.fixture
def own_settings(isolated_nats: str, fresh_database: str, tmp_path: Path) -> Settings:
    return make_settings(isolated_nats, fresh_database, tmp_path)


@contextlib.asynccontextmanager
async def scheduler(settings: Settings) -> AsyncIterator[Runtime]:
    async with open_runtime("scheduler", settings) as runtime:
        await start_scheduler(runtime, health=False, options=FAST)
        await answering(settings.effective_nats_url)
        async with validation_service(settings):
            yield runtime


@contextlib.asynccontextmanager
async def crawler(settings: Settings) -> AsyncIterator[Crawler]:
    async with open_runtime("crawler", settings) as runtime:
        yield await start_crawler(runtime, health=False, dispatch_interval_s=0.1, sweep_interval_s=3600.0)


async def crawler_call(client: CommandClient, name: str, command: msgspec.Struct, reply: type[Any]) -> Any:
    return await client.call("crawler", name, command, reply, correlation_id=ids.new_correlation_id())


async def claim_all(api: Scheduler, want: int) -> list[JobOffer]:
    offers: list[JobOffer] = []

    async def more() -> bool:
        command = ClaimJobs(node_id="node-1", job_types=["crawl_domain_page"], concurrency=50, slots=50)
        reply = await api.call(command, ClaimJobsReply)
        offers.extend(reply.offers)
        return len(offers) >= want

    await eventually(more)
    return offers


async def view(client: CommandClient) -> CampaignView:
    reply: CampaignView = await crawler_call(client, "get_campaign", GetCampaign(campaign_id="local"), CampaignView)
    return reply


async def test_a_campaign_crawls_its_frontier_and_recrawls_conditionally(own_settings: Settings) -> None:
    async with scheduler(own_settings), scheduler_client(own_settings.effective_nats_url) as api:
        client = CommandClient(api.nc, timeout=10.0)
        async with crawler(own_settings):
            started = await crawler_call(
                client, "start_campaign", StartCampaign(campaign_id="local", settings=SETTINGS, by="ada"), CampaignView
            )
            assert started.pages == 2 and started.status == "running"
            offers = await claim_all(api, 2)
            by_url = {offer.payload["url"]: offer for offer in offers}
            assert set(by_url) == {"https://funder.example/", "https://trust.example/"}
            funder = by_url["https://funder.example/"]
            result = page_result(
                funder.payload["url"],
                etag='"v1"',
                links=("https://funder.example/grants", "https://away.example/"),
                fields=(3, 4),
            )
            await api.submit("node-1", funder.job_id, result)

            async def discovered() -> CampaignView | None:
                current = await view(client)
                return current if current.pages == 3 and current.changed == 1 else None

            await eventually(discovered)
            # the page's extraction yield, as a fetch record of its domain for crawl analytics
            store = EventStore(api.nc)
            await store.start()

            async def yield_recorded() -> list[Any]:
                return await store.read(FETCH.name, "ccn.fetch.funder_example.extraction_yield")

            [yielded] = await eventually(yield_recorded)
            record = msgspec.json.decode(yielded.data)["data"]
            assert (record["fields_found"], record["fields_asked"], record["job_id"]) == (3, 4, funder.job_id)
            await store.close()
            # the new page, and the funder page again once its (1 s) interval is up, as a conditional GET
            offers = await claim_all(api, 2)
            by_url = {offer.payload["url"]: offer for offer in offers}
            assert by_url["https://funder.example/"].payload["if_none_match"] == '"v1"'
            assert "https://funder.example/grants" in by_url
            again = by_url["https://funder.example/"]
            await api.submit("node-1", again.job_id, page_result(again.payload["url"], status=304, text_sha256=None))

            async def unchanged() -> CampaignView | None:
                current = await view(client)
                return current if current.unchanged == 1 else None

            await eventually(unchanged)
            paused = await crawler_call(
                client, "pause_campaign", PauseCampaign(campaign_id="local", by="ada"), CampaignView
            )
            assert paused.status == "paused"
            resumed = await crawler_call(
                client, "resume_campaign", ResumeCampaign(campaign_id="local", by="ada"), CampaignView
            )
            assert resumed.status == "running"
            listed = await crawler_call(client, "list_campaigns", ListCampaigns(), CampaignList)
            assert [campaign.campaign_id for campaign in listed.campaigns] == ["local"]
            with pytest.raises(NotFound):
                await crawler_call(client, "get_campaign", GetCampaign(campaign_id="nope"), CampaignView)
            # a Struct's constructor checks no constraints: these reach the crawler as a hostile client sends them
            for hostile in (
                StartCampaign(campaign_id="Bad Id!", settings=SETTINGS, by="ada"),
                StartCampaign(campaign_id="x", settings=msgspec.structs.replace(SETTINGS, seeds=[]), by="ada"),
                StartCampaign(
                    campaign_id="x",
                    settings=msgspec.structs.replace(SETTINGS, seeds=["https://a.example/\x00"]),
                    by="a",
                ),
                StartCampaign(campaign_id="x", settings=msgspec.structs.replace(SETTINGS, max_pages=10**9), by="ada"),
                # fields whose rule the extraction rules engine refuses: no campaign that could make no job
                StartCampaign(
                    campaign_id="x",
                    settings=msgspec.structs.replace(
                        SETTINGS, fields=[{"name": "amount", "rules": [{"css": "p >>> ", "regex": "(a+)+$"}]}]
                    ),
                    by="ada",
                ),
                StartCampaign(
                    campaign_id="x", settings=msgspec.structs.replace(SETTINGS, seeds=["file:///etc/passwd"]), by="a"
                ),
            ):
                with pytest.raises(BadInput):
                    await crawler_call(client, "start_campaign", hostile, CampaignView)


async def test_outcomes_while_the_crawler_is_down_are_recorded_when_it_is_back(own_settings: Settings) -> None:
    settings = msgspec.structs.replace(SETTINGS, seeds=["https://funder.example/"], first_interval_s=3600.0)
    async with scheduler(own_settings), scheduler_client(own_settings.effective_nats_url) as api:
        client = CommandClient(api.nc, timeout=10.0)
        async with crawler(own_settings):
            await crawler_call(
                client, "start_campaign", StartCampaign(campaign_id="local", settings=settings, by="ada"), CampaignView
            )
            [offer] = await claim_all(api, 1)
        # the crawler is gone: the job finishes meanwhile
        await api.submit(
            "node-1", offer.job_id, page_result(offer.payload["url"], links=("https://funder.example/next",))
        )
        async with crawler(own_settings):

            async def recorded() -> CampaignView | None:
                current = await view(client)
                return current if current.changed == 1 and current.pages == 2 else None

            await eventually(recorded)
            [second] = await claim_all(api, 1)
            assert second.payload["url"] == "https://funder.example/next"
            # cancelled (as the fetch proxy cancels a job robots.txt refuses): failed for good
            await api.call(CancelJob(job_id=second.job_id, reason="robots_disallowed"), CancelJobReply)

            async def failed() -> CampaignView | None:
                current = await view(client)
                return current if current.failed == 1 and current.in_flight == 0 else None

            await eventually(failed)
            assert (await view(client)).due == 0


async def test_the_sweep_records_a_job_that_finished_unheard(own_settings: Settings) -> None:
    settings = msgspec.structs.replace(SETTINGS, seeds=["https://funder.example/"], first_interval_s=3600.0)
    async with scheduler(own_settings), scheduler_client(own_settings.effective_nats_url) as api:
        client = CommandClient(api.nc, timeout=10.0)
        async with crawler(own_settings) as running:
            await crawler_call(
                client, "start_campaign", StartCampaign(campaign_id="local", settings=settings, by="ada"), CampaignView
            )
            [offer] = await claim_all(api, 1)
            running._job_campaign.clear()  # as if another replica had scheduled it
            await api.submit("node-1", offer.job_id, page_result(offer.payload["url"]))
            await api.completed(offer.job_id)
            assert (await view(client)).in_flight == 1
            assert await running.sweep_once() == 1
            current = await view(client)
            assert (current.in_flight, current.changed) == (0, 1)


async def test_counts_stay_exact_while_views_are_read_during_every_record(own_settings: Settings) -> None:
    """Reading a campaign (status, list, the sweep) while its outcomes are recorded must never
    apply an event twice: the view is folded apart from the writers' state."""
    seeds = [f"https://funder.example/page/{n}" for n in range(20)]
    settings = msgspec.structs.replace(
        SETTINGS, seeds=seeds, max_pages=20, max_in_flight_per_host=20, first_interval_s=3600.0
    )
    async with scheduler(own_settings), scheduler_client(own_settings.effective_nats_url) as api:
        client = CommandClient(api.nc, timeout=10.0)
        async with crawler(own_settings):
            await crawler_call(
                client, "start_campaign", StartCampaign(campaign_id="local", settings=settings, by="ada"), CampaignView
            )
            offers = await claim_all(api, 20)
            reading = True

            async def read_all_the_while() -> None:
                while reading:
                    await view(client)

            readers = [asyncio.create_task(read_all_the_while()) for _ in range(3)]
            try:
                await asyncio.gather(
                    *(api.submit("node-1", offer.job_id, page_result(offer.payload["url"])) for offer in offers)
                )

                async def all_recorded() -> CampaignView | None:
                    current = await view(client)
                    return current if current.in_flight == 0 else None

                await eventually(all_recorded)
            finally:
                reading = False
                await asyncio.gather(*readers)
            final = await view(client)
            assert (final.pages, final.crawled, final.changed, final.unchanged, final.failed) == (20, 20, 20, 0, 0)
