"""Wires the crawler: the campaign repository, its commands, the dispatcher, the outcome reactor
and the sweeper."""

from __future__ import annotations

from ccn_core.aggregate import AggregateRepository
from ccn_core.commands import CommandClient, CommandServer
from ccn_core.domain.campaign import CampaignDecider
from ccn_core.reactor import Reactor
from ccn_core.service import Runtime, serve_health
from ccn_core.topology import CRAWL, CRAWL_OUTCOMES
from ccn_crawler.campaigns import Crawler, JobOutcomeEvent
from ccn_proto.crawl import CampaignEvent

# the subject every campaign's history starts with: listing them lists the campaigns
_STARTED = "ccn.campaign.*.started"


async def start_crawler(
    runtime: Runtime,
    *,
    health: bool = True,
    dispatch_interval_s: float = 1.0,
    sweep_interval_s: float = 60.0,
) -> Crawler:
    settings = runtime.settings
    repository = AggregateRepository(
        runtime.store, CampaignDecider(), CampaignEvent, stream=CRAWL.name, deadline_s=settings.command_timeout_s
    )

    async def campaign_ids() -> list[str]:
        info = await runtime.js.stream_info(CRAWL.name, subjects_filter=_STARTED)
        return [subject.split(".")[2] for subject in (info.state.subjects or {})]

    crawler = Crawler(
        repository,
        CommandClient(runtime.nc, timeout=settings.command_timeout_s),
        list_campaign_ids=campaign_ids,
        records=runtime.store,
    )
    await crawler.load_all()
    server = CommandServer(runtime.nc, "crawler")
    crawler.register_all(server)
    await server.start()
    runtime.on_stop(server.stop)

    reactor = Reactor(runtime.nc, runtime.js, CRAWL_OUTCOMES, JobOutcomeEvent, crawler.on_job_event)
    await reactor.ensure_consumer()
    runtime.spawn(reactor.run(), name=CRAWL_OUTCOMES.durable)

    async def stop_reactor() -> None:
        reactor.stop()

    runtime.on_stop(stop_reactor)
    runtime.watch_lag([CRAWL_OUTCOMES])
    runtime.spawn(
        crawler.run_loop(dispatch_interval_s, crawler.dispatch_once, "crawl dispatch", runtime.stopping),
        name="crawl-dispatch",
    )
    runtime.spawn(
        crawler.run_loop(sweep_interval_s, crawler.sweep_once, "crawl sweep", runtime.stopping), name="crawl-sweep"
    )
    if health:
        await serve_health(runtime, settings.health_host, settings.crawler_health_port)
    return crawler
