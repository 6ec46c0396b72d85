"""The fetcher's kept-alive connections: reused only to a destination the request's own check
allowed with the same addresses, and never handed back half read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from ccn_cli.stack.ports import free_port
from ccn_core.egress import Allowed, EgressPolicy, decide_egress
from ccn_fetch_proxy.request_headers import request_headers
from ccn_fetch_proxy.safe_fetcher import FetchError, FetchLimits, SafeFetcher

LIMITS = FetchLimits(max_body_bytes=1024, connect_timeout_s=1.0, read_timeout_s=0.5, total_timeout_s=1.0)


@dataclass
class Site:
    port: int
    # the client's (address, port) of each request: one per connection it was sent on
    peers: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    port = free_port()
    seen = Site(port)

    async def small(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.peers.append((str(peer[0]), int(peer[1])) if peer else ("?", 0))
        return web.Response(text="small", content_type="text/plain")

    async def huge(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.peers.append((str(peer[0]), int(peer[1])) if peer else ("?", 0))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 1024)
        return response

    async def slow(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.peers.append((str(peer[0]), int(peer[1])) if peer else ("?", 0))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"a")
        await asyncio.sleep(3)
        return response

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/huge", huge)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    made = SafeFetcher(LIMITS)
    try:
        yield made
    finally:
        await made.close()


def checked(host: str, port: int, path: str, answers: list[str]) -> Allowed:
    policy = EgressPolicy(loopback_allowance=frozenset({(host, port)}))
    allowed = decide_egress(f"http://{host}:{port}{path}", lambda _name: answers, policy)
    assert isinstance(allowed, Allowed), allowed
    return allowed


def wants_all(_status: int, _type: str | None) -> bool:
    return True


async def test_pages_of_one_checked_destination_share_a_connection(site: Site, fetcher: SafeFetcher) -> None:
    for _ in range(3):
        response = await fetcher.get(
            checked("a.localhost", site.port, "/small", ["127.0.0.1"]), request_headers(), want_body=wants_all
        )
        assert response.body == b"small"
    assert len(site.peers) == 3 and len(set(site.peers)) == 1


async def test_another_name_or_another_address_set_never_reuses_a_connection(site: Site, fetcher: SafeFetcher) -> None:
    await fetcher.get(
        checked("a.localhost", site.port, "/small", ["127.0.0.1"]), request_headers(), want_body=wants_all
    )
    await fetcher.get(
        checked("b.localhost", site.port, "/small", ["127.0.0.1"]), request_headers(), want_body=wants_all
    )
    # the same name, checked now with another answer beside the first: a pool of its own
    await fetcher.get(
        checked("a.localhost", site.port, "/small", ["127.0.0.1", "127.0.0.2"]), request_headers(), want_body=wants_all
    )
    assert len(set(site.peers)) == 3


@pytest.mark.parametrize("path", ["/huge", "/slow"])
async def test_a_body_cut_at_a_bound_closes_its_connection(site: Site, fetcher: SafeFetcher, path: str) -> None:
    allowed = checked("a.localhost", site.port, path, ["127.0.0.1"])
    with pytest.raises(FetchError) as failed:
        await fetcher.get(allowed, request_headers(), want_body=wants_all)
    assert failed.value.reason in ("too_large", "timeout")
    after = await fetcher.get(
        checked("a.localhost", site.port, "/small", ["127.0.0.1"]), request_headers(), want_body=wants_all
    )
    assert after.body == b"small"
    assert site.peers[0] != site.peers[1]


async def test_a_truncated_read_keeps_its_bytes_and_does_not_return_the_connection(
    site: Site, fetcher: SafeFetcher
) -> None:
    allowed = checked("a.localhost", site.port, "/huge", ["127.0.0.1"])
    response = await fetcher.get(allowed, request_headers(), want_body=wants_all, truncate=True)
    assert response.truncated and response.body == b"x" * 1024
    after = await fetcher.get(
        checked("a.localhost", site.port, "/small", ["127.0.0.1"]), request_headers(), want_body=wants_all
    )
    assert after.body == b"small" and site.peers[0] != site.peers[1]


async def test_the_pools_are_bounded(site: Site, fetcher: SafeFetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ccn_fetch_proxy.safe_fetcher.MAX_POOLS", 2)
    for name in ("a", "b", "c", "a"):
        await fetcher.get(
            checked(f"{name}.localhost", site.port, "/small", ["127.0.0.1"]), request_headers(), want_body=wants_all
        )
    # a's pool was closed when c's was made: its second page needed a new connection
    assert len(set(site.peers)) == 4
