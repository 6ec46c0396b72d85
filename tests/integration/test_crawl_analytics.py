"""Crawl analytics against real NATS and PostgreSQL: fetch records appended to CCN_FETCH are
folded per domain by the analytics service, served by GET /admin/crawl/domains (JSON, paged, and
CSV), printed by `ccn crawl stats`; breaker changes and limit alerts are orchestrator-log steps;
and dropping the table and replaying the stream rebuilds it row for row."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_analytics.__main__ import start_analytics
from ccn_analytics.crawl_projection import CrawlDomainStatsProjection
from ccn_analytics.orchestrator_node_projection import orchestrator_log_projections
from ccn_cli.crawl_stats_cmd import run_stats
from ccn_core import ids
from ccn_core.domain.domain_policy import policy_id
from ccn_core.projection import rebuild
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import CRAWL_DOMAIN_STATS, FETCH, ORCHESTRATOR_FETCH_LOG, ensure_streams
from ccn_proto.envelope import HEADER_CORRELATION_ID, HEADER_TYPE, Actor, Envelope
from ccn_proto.fetch import (
    BreakerChanged,
    DomainLimitAlert,
    ExtractionYieldRecorded,
    FetchEvent,
    FetchFailureRecorded,
    FetchRefusalRecorded,
    PageFetchRecorded,
)
from tests.conftest import make_settings

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def crawl_settings(nats_url: str, fresh_database: str, tmp_path: Path) -> Settings:
    return make_settings(nats_url, fresh_database, tmp_path)


@pytest.fixture
async def client(nats_url: str, crawl_settings: Settings) -> AsyncIterator[NATS]:
    connection = await nats.connect(nats_url)
    await ensure_streams(connection.jetstream(), crawl_settings)
    yield connection
    await connection.drain()


@pytest.fixture
async def pool(crawl_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(crawl_settings.effective_database_url, min_size=1, max_size=4) as created:
        yield created


def base_url(settings: Settings) -> str:
    return f"http://{settings.analytics_host}:{settings.analytics_port}"


@asynccontextmanager
async def running_analytics(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_runtime("analytics", settings) as runtime:
        await start_analytics(runtime)
        headers = {"Authorization": f"Bearer {settings.admin_token}"}
        async with httpx.AsyncClient(base_url=base_url(settings), headers=headers) as admin:
            async with asyncio.timeout(10):
                while True:
                    try:
                        if (await admin.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
            yield admin


async def record(client: NATS, data: FetchEvent) -> None:
    """Append a fetch record as the fetch proxy does: no expected sequence, its id as Msg-Id."""
    tag = type(data).__struct_config__.tag
    assert isinstance(tag, str)
    event_id = ids.new_event_id()
    envelope = Envelope[Any](
        event_id=event_id,
        type=tag,
        schema_version=1,
        aggregate_id=policy_id(data.domain) if data.domain else "none",
        occurred_at=datetime.now(UTC),
        correlation_id=f"c-{event_id}",
        causation_id=None,
        actor=Actor(kind="service", id="fetch-proxy-test"),
        data=data,
    )
    headers = {"Nats-Msg-Id": event_id, HEADER_TYPE: tag, HEADER_CORRELATION_ID: envelope.correlation_id}
    subject = f"ccn.fetch.{envelope.aggregate_id}.{tag.split('.', 1)[1]}"
    await client.jetstream().publish(subject, msgspec.json.encode(envelope), stream=FETCH.name, headers=headers)


async def wait_projected(client: NATS, pool: asyncpg.Pool) -> None:
    last = (await client.jetstream().stream_info(FETCH.name)).state.last_seq
    async with asyncio.timeout(20):
        while True:
            rows = await pool.fetch(
                "SELECT projection, last_seq FROM projection_checkpoints WHERE projection = ANY($1::text[])",
                [CRAWL_DOMAIN_STATS.durable, ORCHESTRATOR_FETCH_LOG.durable],
            )
            if len(rows) == 2 and all(row["last_seq"] >= last for row in rows):
                return
            await asyncio.sleep(0.05)


def page(domain: str, status: int, elapsed_ms: float) -> PageFetchRecorded:
    url = f"https://{domain}/grants"
    return PageFetchRecorded(
        fetch_id=ids.new_event_id(),
        job_id="job-1",
        node_id="node-1",
        domain=domain,
        url=url,
        final_url=url,
        status=status,
        size=1000,
        elapsed_ms=elapsed_ms,
    )


async def write_crawl(client: NATS) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:10]
    busy, down = f"busy-{tag}.example.org", f"down-{tag}.example.org"
    for elapsed in (10.0, 20.0, 30.0, 40.0):
        await record(client, page(busy, 200, elapsed))
    await record(client, page(busy, 404, 5.0))
    refused = {"fetch_id": "f", "job_id": "j", "node_id": "n", "domain": busy, "url": "u", "reason": "r"}
    await record(client, msgspec.convert({**refused, "stage": "robots"}, FetchRefusalRecorded))
    await record(client, msgspec.convert({**refused, "stage": "rate_limit"}, FetchRefusalRecorded))
    await record(client, DomainLimitAlert(domain=busy, limit="per_minute", denials=30, window_s=60.0))
    await record(
        client, ExtractionYieldRecorded(domain=busy, job_id="job-1", pages=4, fields_asked=20, fields_found=15)
    )
    failed = {"fetch_id": "f", "job_id": "j", "node_id": "n", "domain": down, "url": "u", "elapsed_ms": 10000.0}
    for _ in range(5):
        await record(client, msgspec.convert({**failed, "reason": "timeout"}, FetchFailureRecorded))
    await record(
        client,
        BreakerChanged(
            domain=down, state="open", previous="closed", reason="5 failures in a row", consecutive_failures=5
        ),
    )
    return busy, down


async def snapshot(pool: asyncpg.Pool, domains: tuple[str, ...]) -> list[tuple[object, ...]]:
    stats = await pool.fetch(
        "SELECT * FROM crawl_domain_stats WHERE domain = ANY($1::text[]) ORDER BY domain", list(domains)
    )
    steps = await pool.fetch(
        "SELECT event_id, step, stream, stream_seq, event, details::text FROM orchestrator_log"
        " WHERE stream = $1 ORDER BY stream_seq",
        FETCH.name,
    )
    return [tuple(row.values()) for row in [*stats, *steps]]


async def test_the_crawl_is_folded_per_domain_served_as_json_and_csv_and_rebuilt_by_replay(
    crawl_settings: Settings, client: NATS, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_analytics(crawl_settings) as admin:
        busy, down = await write_crawl(client)
        await wait_projected(client, pool)

        by_domain = {}
        cursor = None
        while True:  # one domain a page: the cursor walks them all
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            answer = (await admin.get("/admin/crawl/domains", params=params)).json()
            by_domain.update({entry["domain"]: entry for entry in answer["domains"]})
            if not answer["has_more"]:
                break
            cursor = answer["next_cursor"]
        shown = by_domain[busy]
        assert (shown["pages_fetched"], shown["successes"], shown["status_4xx"], shown["success_rate"]) == (
            5,
            4,
            1,
            0.8,
        )
        assert (shown["refused"], shown["refusals"]) == (2, {"rate_limit": 1, "robots": 1})
        assert shown["avg_latency_ms"] == pytest.approx(21.0)
        assert 40.0 <= shown["p95_latency_ms"] <= 40.0 * 2 ** (1 / 8)
        assert (shown["extraction_yield"], shown["limit_alerts"], shown["last_limit_alert_limit"]) == (
            0.75,
            1,
            "per_minute",
        )
        assert (shown["breaker_state"], by_domain[down]["breaker_state"]) == ("closed", "open")
        assert (by_domain[down]["failures"], by_domain[down]["success_rate"]) == ({"timeout": 5}, 0.0)

        opened = (await admin.get("/admin/crawl/domains", params={"breaker": "open"})).json()["domains"]
        assert down in [entry["domain"] for entry in opened] and busy not in [entry["domain"] for entry in opened]

        exported = await admin.get("/admin/crawl/domains", params={"format": "csv", "limit": 1000})
        assert exported.headers["content-type"].startswith("text/csv")
        rows = {row["domain"]: row for row in csv.DictReader(io.StringIO(exported.text))}
        assert (rows[down]["failures_timeout"], rows[down]["breaker_state"], rows[busy]["refusals_robots"]) == (
            "5",
            "open",
            "1",
        )

        schema = (await admin.get("/schema/openapi.json")).json()
        documented = schema["paths"]["/admin/crawl/domains"]["get"]["responses"]["200"]["content"]
        assert set(documented) == {"application/json", "text/csv; charset=utf-8"}
        assert "$ref" in documented["application/json"]["schema"]

        refused = await httpx.AsyncClient(base_url=base_url(crawl_settings)).get("/admin/crawl/domains")
        assert refused.status_code == 401
        bad = await admin.get("/admin/crawl/domains", params={"format": "xml"})
        assert bad.status_code == 400

        steps = await pool.fetch(
            "SELECT event, details FROM orchestrator_log WHERE stream = $1 AND details->>'domain' = ANY($2::text[])"
            " ORDER BY stream_seq",
            FETCH.name,
            [busy, down],
        )
        assert [row["event"] for row in steps] == ["domain_limit_alert", "domain_breaker_changed"]

        args = argparse.Namespace(csv=False, breaker="open", max=1000)
        assert await asyncio.to_thread(run_stats, args, crawl_settings) == 0
        printed = capsys.readouterr().out
        assert down in printed and "open" in printed and busy not in printed

    live = await snapshot(pool, (busy, down))
    assert len(live) >= 4
    await rebuild(pool, CrawlDomainStatsProjection(), *orchestrator_log_projections())
    assert await snapshot(pool, (busy, down)) == []
    async with running_analytics(crawl_settings):
        await wait_projected(client, pool)
    assert await snapshot(pool, (busy, down)) == live
