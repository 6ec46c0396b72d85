"""`ccn up --demo` (what `make run` does) also crawls: the local fixture web's two grant sites
are on the allow-list, and the demo campaign's pages are fetched by the reference nodes through
the fetch proxy (which may reach loopback only for those sites), recorded as changed pages with
their links in the frontier, and counted in crawl analytics per domain, with the fields the
campaign's rules found (`ccn crawl status`, `ccn crawl stats`, GET /admin/crawl/domains)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

from tests.e2e.conftest import Stack


def campaign(stack: Stack) -> dict[str, Any]:
    shown = stack.ccn("crawl", "status", "demo-grants", "--json")
    assert shown.returncode == 0, shown.stderr
    view: dict[str, Any] = json.loads(shown.stdout)
    return view


async def test_the_demo_campaign_crawls_the_local_grant_sites_through_the_proxy(stack: Stack) -> None:
    async with asyncio.timeout(180):
        while True:
            view = campaign(stack)
            # the seeds' index pages link to the opportunities: the frontier grew from what was fetched
            if view["crawled"] >= 6 and view["pages"] > 2:
                break
            await asyncio.sleep(1.0)
    assert view["status"] == "running"
    stats = stack.ccn("crawl", "stats", "--csv")
    assert stats.returncode == 0, stats.stderr
    domains = {row["domain"] for row in csv.DictReader(io.StringIO(stats.stdout))}
    assert {"grants.localhost", "foundation.localhost"} <= domains
    listed = stack.ccn("domains", "list")
    assert listed.returncode == 0, listed.stderr
    assert "grants.localhost" in listed.stdout and "allowed" in listed.stdout

    # the opportunity pages' fields (title, funder, amounts, dates) found, as extraction yield
    async with asyncio.timeout(60):
        while True:
            grants = grants_row(stack)
            if int(grants["pages_fetched"]) >= 3 and int(grants["fields_found"] or 0) > 0:
                break
            await asyncio.sleep(1.0)
    assert int(grants["fields_asked"]) >= int(grants["fields_found"]) > 0


def grants_row(stack: Stack) -> dict[str, str]:
    shown = stack.ccn("crawl", "stats", "--csv")
    assert shown.returncode == 0, shown.stderr
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    return next(row for row in rows if row["domain"] == "grants.localhost")
