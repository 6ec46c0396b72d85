"""The allow-list read model and its admin API against real NATS and Postgres: domain-policy
commands become community_domains rows and admin entries of the audit trail; GET /admin/domains
pages and filters, GET /admin/domains/{domain} gives a policy with its history from the stream;
every route needs the admin token; dropping the table and replaying the stream rebuilds it row
for row."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from ccn_analytics.__main__ import start_analytics
from ccn_analytics.domains_projection import DomainReadModel
from ccn_core.commands import CommandClient
from ccn_core.projection import rebuild
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import AUDIT_POLICY_LOG, DOMAIN_READ_MODEL, POLICY
from ccn_fetch_proxy.policy_service import start_domain_policy
from ccn_proto.domains import (
    AllowDomainRequest,
    BlockDomainRequest,
    DomainPolicyReply,
    ImportDomains,
    ImportDomainsReply,
    ImportRow,
    UpdateDomainRequest,
)


@contextlib.asynccontextmanager
async def running_analytics(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with open_runtime("analytics", settings) as runtime:
        await start_analytics(runtime)
        base = f"http://{settings.analytics_host}:{settings.analytics_port}"
        headers = {"Authorization": f"Bearer {settings.admin_token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            async with asyncio.timeout(10):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
            yield client


@pytest.fixture
async def commands(kernel_settings: Settings) -> AsyncIterator[CommandClient]:
    """The fetch proxy's domain-policy part, and a client of its commands."""
    async with open_runtime("fetch-proxy", kernel_settings, needs_postgres=False) as runtime:
        await start_domain_policy(runtime)
        nc = await nats.connect(kernel_settings.effective_nats_url)
        yield CommandClient(nc, timeout=10.0)
        await nc.drain()


@pytest.fixture
async def pool(kernel_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(kernel_settings.effective_database_url, min_size=1, max_size=4) as created:
        yield created


async def send(commands: CommandClient, name: str, request: Any, reply_type: type[Any] = DomainPolicyReply) -> Any:
    return await commands.call("domains", name, request, reply_type, correlation_id=f"story-{name}")


async def write_story(commands: CommandClient) -> None:
    """Allowances, an update, a block and an import, as an admin and the importer would."""
    await send(commands, "allow", AllowDomainRequest(domain="grants.example.org", requests_per_minute=30, by="ann"))
    await send(
        commands, "update", UpdateDomainRequest(domain="grants.example.org", allowed_paths=["/grants"], by="bob")
    )
    await send(commands, "allow", AllowDomainRequest(domain="members.example.net", by="ann"))
    await send(commands, "block", BlockDomainRequest(domain="members.example.net", reason="terms 4.2", by="bob"))
    rows = [
        ImportRow(line=n + 2, command=AllowDomainRequest(domain=f"site{n:02}.example.com", max_concurrent=2, by="csv"))
        for n in range(7)
    ]
    rows.append(ImportRow(line=9, command=AllowDomainRequest(domain="bücher-stiftung.example", by="csv")))
    reply = await send(commands, "import", ImportDomains(rows=rows), ImportDomainsReply)
    assert len(reply.accepted) == 8 and not reply.rejected


async def wait_projected(kernel_settings: Settings, pool: asyncpg.Pool, *durables: str) -> None:
    nc = await nats.connect(kernel_settings.effective_nats_url)
    try:
        last = (await nc.jetstream().stream_info(POLICY.name)).state.last_seq
    finally:
        await nc.drain()
    async with asyncio.timeout(20):
        for durable in durables:
            while True:
                done = await pool.fetchval("SELECT last_seq FROM projection_checkpoints WHERE projection = $1", durable)
                if done is not None and done >= last:
                    break
                await asyncio.sleep(0.05)


async def snapshot(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await pool.fetch("SELECT * FROM community_domains ORDER BY policy_id")]


async def test_the_allow_list_is_listed_shown_and_audited(
    kernel_settings: Settings, commands: CommandClient, pool: asyncpg.Pool
) -> None:
    async with running_analytics(kernel_settings) as analytics:
        await write_story(commands)
        await wait_projected(kernel_settings, pool, DOMAIN_READ_MODEL.durable, AUDIT_POLICY_LOG.durable)

        page = (await analytics.get("/admin/domains", params={"limit": 4})).json()
        assert [d["domain"] for d in page["domains"]] == [
            "grants.example.org",
            "members.example.net",
            "site00.example.com",
            "site01.example.com",
        ]
        assert page["has_more"] and page["next_cursor"] == "site01.example.com"
        grants = page["domains"][0]
        assert (grants["permission"], grants["requests_per_minute"], grants["allowed_paths"]) == (
            "allowed",
            30,
            ["/grants"],
        )
        assert (grants["changed_by"], grants["last_event_type"]) == ("bob", "domain.policy_updated")
        rest = (await analytics.get("/admin/domains", params={"cursor": page["next_cursor"], "limit": 100})).json()
        assert len(rest["domains"]) == 6 and not rest["has_more"]
        assert rest["domains"][-1]["domain"] == "xn--bcher-stiftung-gsb.example"
        blocked = (await analytics.get("/admin/domains", params={"permission": "blocked"})).json()
        assert [(d["domain"], d["block_reason"]) for d in blocked["domains"]] == [("members.example.net", "terms 4.2")]

        # one domain, by its Unicode name: the policy and every change, who made it and how
        detail = (await analytics.get("/admin/domains/MEMBERS.example.net")).json()
        assert detail["policy"]["permission"] == "blocked"
        assert [(c["event_type"], c["actor"]) for c in detail["history"]] == [
            ("domain.allowed", {"kind": "admin", "id": "ann"}),
            ("domain.blocked", {"kind": "admin", "id": "bob"}),
        ]
        assert detail["history"][1]["data"]["reason"] == "terms 4.2" and not detail["history_truncated"]
        assert detail["history"][1]["correlation_id"] == "story-block"
        idn = (await analytics.get("/admin/domains/bücher-stiftung.example")).json()
        assert idn["domain"] == "xn--bcher-stiftung-gsb.example" and idn["policy"]["changed_by"] == "csv"

        missing = await analytics.get("/admin/domains/never-reviewed.example.org")
        assert missing.status_code == 404 and "no policy for never-reviewed.example.org" in missing.json()["message"]
        for bad in ("10.0.0.1", "intranet"):
            refused = await analytics.get(f"/admin/domains/{bad}")
            assert refused.status_code == 400 and refused.json()["field"] == "domain", refused.text
        assert (await analytics.get("/admin/domains", params={"permission": "maybe"})).status_code == 400
        assert (await analytics.get("/admin/domains", params={"cursor": "DROP TABLE"})).status_code == 400
        for path in ("/admin/domains", "/admin/domains/grants.example.org"):
            assert (await analytics.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 401

        # admins' changes are in the audit trail, with what they set
        audit = (await analytics.get("/admin/audit", params={"type": "domain.blocked"})).json()
        [entry] = audit["entries"]
        assert (entry["aggregate_type"], entry["aggregate_id"], entry["actor"]) == (
            "domain",
            "members_example_net",
            {"kind": "admin", "id": "bob"},
        )
        assert entry["details"] == {
            "domain": "members.example.net",
            "reason": "terms 4.2",
            "reviewer": None,
            "reviewed_at": None,
            "by": "bob",
        }


async def test_rebuild_by_replay_equals_the_live_table(
    kernel_settings: Settings, commands: CommandClient, pool: asyncpg.Pool
) -> None:
    async with running_analytics(kernel_settings):
        await write_story(commands)  # projected as it happens: an event at a time, mostly
        await wait_projected(kernel_settings, pool, DOMAIN_READ_MODEL.durable)
    live = await snapshot(pool)
    assert len(live) == 10

    await rebuild(pool, DomainReadModel())
    assert await snapshot(pool) == []
    async with running_analytics(kernel_settings):  # the whole stream, in batches of many events
        await wait_projected(kernel_settings, pool, DOMAIN_READ_MODEL.durable)
    assert await snapshot(pool) == live
