"""A crawl campaign end to end (issue #16): pages per second for a 10,000-page campaign over a
local web, through every part a real crawl goes through.

The whole stack runs as `ccn up` starts it (registry, scheduler, edge, fetch proxy, crawler,
analytics) with reference nodes (`ccn node`) over WebSocket. The crawler turns the campaign's
frontier into crawl_domain_page jobs; a node takes each, asks the edge for the page, the edge
asks the fetch proxy, which checks the job, the allow-list, robots.txt and the domain's shared
limits, fetches it from the bench's web and stores the body; the node runs the job on it and
sends the result; the crawler records the page and adds its links to the frontier. The figure
is pages crawled (recorded by the crawler) over the time from the campaign's start. The nodes
are warmed first by a short campaign of their own (their workers load the job libraries once).

The web is generated: HOSTS sites (`site-NN.localhost`, loopback through the development
allowance, at most 64 pairs), each a tree of pages eight links wide, every page its own text.
Each site is allowed at 600 requests a minute (the most a policy gives), so politeness caps the
campaign at 10 pages a second per site: with 64 sites, far above what two cores do end to end.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import msgspec
import psutil
from aiohttp import web

from bench.lifecycle_bench import Stack, running_stack
from bench.lifecycle_costs import CpuMeter, stack_processes
from bench.measure import Figure, figure
from ccn_cli.stack.ports import free_port
from ccn_core.domain_csv import allow_list_csv
from ccn_proto.crawl import CampaignSettings, CampaignView
from tests.support.servers import EmbeddedNats, EmbeddedPostgres, start_nats, start_postgres

GROUP = "crawl"
CCN = str(Path(sys.executable).parent / "ccn")
FANOUT = 8
WORDS = (
    "grant", "funding", "programme", "community", "education", "health", "research", "environment", "youth",
    "arts", "heritage", "climate", "capital", "revenue", "eligibility", "deadline", "applicants", "charities",
    "foundation", "trust", "award", "small", "large", "regional", "national", "rural", "urban", "innovation",
    "partnership", "volunteers", "outcomes", "evaluation", "budget",
)  # fmt: skip
CAMPAIGN = "bench-crawl"
WARM_CAMPAIGN = "bench-warm-up"


def site_name(index: int) -> str:
    return f"site-{index:02d}.localhost"


def page_html(host: str, number: int, pages: int) -> str:
    """Page `number` of `host`: a paragraph of its own and links to its children in the tree."""
    rng = random.Random(f"{host}/{number}")
    text = " ".join(rng.choice(WORDS) for _ in range(300))
    children = range(number * FANOUT + 1, min(pages, number * FANOUT + FANOUT + 1))
    links = "".join(f'<li><a href="/p/{child}">programme {child}</a></li>' for child in children)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{host} programme {number}</title></head>"
        f"<body><h1>Programme {number} of {host}</h1><p>{text}</p><ul>{links}</ul></body></html>"
    )


def bench_web(pages_per_host: int) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        if number >= pages_per_host:
            raise web.HTTPNotFound
        host = request.host.rsplit(":", 1)[0]
        return web.Response(text=page_html(host, number, pages_per_host), content_type="text/html")

    app = web.Application()
    app.router.add_get(r"/p/{number:\d{1,7}}", page)  # robots.txt and everything else: 404 (allow all)
    return app


def node_processes(stack: Stack, count: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    logs = stack.home / "bench-nodes"
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for index in range(count):
        with (logs / f"node-{index}.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [CCN, "node", "--name", f"crawl-bench-{index}", "--concurrency", str(concurrency)],
                    env=stack.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return processes


async def _admin(http: aiohttp.ClientSession, stack: Stack, method: str, path: str, body: bytes, kind: str) -> bytes:
    headers = {"Authorization": f"Bearer {stack.admin_token}", "Content-Type": kind}
    async with http.request(method, f"{stack.edge}{path}", data=body, headers=headers) as response:
        answer = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {answer[:500]!r}")
        return answer


async def _crawled(
    http: aiohttp.ClientSession, stack: Stack, campaign_id: str, settings: CampaignSettings, *, timeout_s: float
) -> CampaignView:
    """Start the campaign and wait until every page it may crawl was crawled or failed (or the
    time is up): its progress at the end."""
    path = f"/admin/crawl/campaigns/{campaign_id}"
    view = msgspec.json.decode(
        await _admin(http, stack, "PUT", path, msgspec.json.encode(settings), "application/json"), type=CampaignView
    )
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        await asyncio.sleep(1.0)
        view = msgspec.json.decode(await _admin(http, stack, "GET", path, b"", "application/json"), type=CampaignView)
        if view.crawled + view.failed >= settings.max_pages and view.in_flight == 0:
            break
    return view


async def crawl_campaign(
    stack: Stack,
    web_port: int,
    hosts: int,
    pages: int,
    nodes: int,
    concurrency: int,
    server_pids: tuple[int, int],
) -> Figure:
    """`server_pids`: NATS's and PostgreSQL's, whose CPU a page costs too."""
    allow_list = allow_list_csv(
        [site_name(i) for i in range(hosts)],
        per_minute=600,
        per_hour=36000,
        concurrent=8,
        notes="the bench web",
        reviewer="bench",
    )
    settings = CampaignSettings(
        name="the bench web",
        seeds=[f"http://{site_name(i)}:{web_port}/p/0" for i in range(hosts)],
        max_depth=10,
        max_pages=pages,
        max_in_flight=400,
        recrawl=False,
    )
    workers = node_processes(stack, nodes, concurrency)
    try:
        async with aiohttp.ClientSession() as http:
            await _admin(http, stack, "POST", "/admin/domains/import", allow_list, "text/csv")
            await asyncio.sleep(2.0)  # the proxy's policy book takes the import in
            # a node's workers load the job libraries once, on their first jobs: a short campaign
            # of its own warms them, as a node that has been running a while is
            warm = msgspec.structs.replace(settings, max_pages=nodes * concurrency * 2)
            await _crawled(http, stack, WARM_CAMPAIGN, warm, timeout_s=120.0)
            processes = stack_processes(stack.home, *server_pids)  # "bench": this process, the web and the poller
            processes.update({f"node {index}": psutil.Process(worker.pid) for index, worker in enumerate(workers)})
            meter = CpuMeter(processes, with_children=frozenset(name for name in processes if name != "bench"))
            started = time.perf_counter()
            cpu_before = psutil.cpu_times()
            meter.start()
            view = await _crawled(http, stack, CAMPAIGN, settings, timeout_s=60.0 + pages / 5.0)
            elapsed = time.perf_counter() - started
            cpu = psutil.cpu_times()
            spent = meter.stop()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    busy = (cpu.user + cpu.system) - (cpu_before.user + cpu_before.system)
    done = view.crawled
    by_part: dict[str, float] = {}
    for name, seconds in spent.items():
        part = "nodes" if name.startswith("node ") else name
        by_part[part] = by_part.get(part, 0.0) + seconds
    costliest = sorted(by_part.items(), key=lambda item: -item[1])[:6]
    cost = ", ".join(f"{name} {seconds * 1000 / max(done, 1):.0f}" for name, seconds in costliest)
    # the system's own share: nodes are volunteers' machines and the bench is the web it crawls
    server_ms = sum(seconds for name, seconds in by_part.items() if name not in ("nodes", "bench"))
    server_ms = server_ms * 1000 / max(done, 1)
    result = figure(
        f"crawl campaign end to end: {pages:,} pages over {hosts} local sites, {nodes} nodes x {concurrency}",
        GROUP,
        done,
        elapsed,
        notes=f"crawled {done:,} of {pages:,} (failed {view.failed}, in flight {view.in_flight} at the end, "
        f"near-duplicates {view.near_duplicates}); the machine's {os.cpu_count()} cores busy "
        f"{busy / elapsed:.2f} on average; CPU ms a page: {cost}; the services, NATS and PostgreSQL together "
        f"{server_ms:.0f} ms a page (~{2000 / max(server_ms, 0.001):.0f} pages/s on 2 cores without the nodes); "
        f"politeness allows {hosts * 10} pages/s",
    )
    return result


async def _figures(workdir: Path, *, quick: bool) -> list[Figure]:
    pages, hosts = (1_000, 8) if quick else (10_000, 64)
    nats_server = start_nats(workdir / "nats-crawl", free_port())
    postgres = start_postgres(workdir / "pg-crawl", free_port())
    try:
        postgres.create_database("crawl")
        web_port = free_port()
        runner = web.AppRunner(bench_web(-(-pages // hosts)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", web_port).start()
        try:
            extra = {
                "CCN_FETCH_DEV_LOOPBACK": ",".join(f"{site_name(i)}:{web_port}" for i in range(hosts)),
                "CCN_FETCH_PROXY_HEALTH_PORT": str(free_port()),
                "CCN_CRAWLER_HEALTH_PORT": str(free_port()),
                "CCN_VALIDATION_HEALTH_PORT": str(free_port()),
                "CCN_MERGE_HEALTH_PORT": str(free_port()),
            }
            ports = [free_port() for _ in range(5)]
            async with running_stack(
                nats_server.url, postgres.dsn("crawl"), workdir / "stack-crawl", ports, extra
            ) as stack:
                # the figures count the servers' CPU too: the bench starts its own
                assert isinstance(nats_server, EmbeddedNats)
                assert isinstance(postgres, EmbeddedPostgres)
                server_pids = (nats_server.running.pid, postgres.running.pid)
                return [await crawl_campaign(stack, web_port, hosts, pages, 4, 8, server_pids)]
        finally:
            await runner.cleanup()
    finally:
        nats_server.stop()
        postgres.stop()


def campaign_figures(workdir: Path, *, quick: bool) -> list[Figure]:
    return asyncio.run(_figures(workdir, quick=quick))
