"""TLS as the fetch proxy's fetcher does it: verified against the URL's host name (sent as SNI)
while connecting to the checked address only. A loopback HTTPS server with a certificate for
`secure.localhost`, from a test CA made for these tests alone (tests/data/tls; its key was
thrown away once the certificate was signed)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ccn_cli.stack.ports import free_port
from ccn_core.egress import Allowed, EgressPolicy, decide_egress
from ccn_fetch_proxy.request_headers import request_headers
from ccn_fetch_proxy.safe_fetcher import FetchError, FetchLimits, SafeFetcher

TLS = Path(__file__).parents[1] / "data" / "tls"
LIMITS = FetchLimits(connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=2.0)


@pytest.fixture
async def https_port() -> AsyncIterator[int]:
    seen: list[str | None] = []

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.host}", content_type="text/plain")

    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(TLS / "secure-localhost.pem", TLS / "secure-localhost.key")
    server_context.sni_callback = lambda _socket, name, _context: seen.append(name)  # type: ignore[assignment,func-returns-value]
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context).start()
    try:
        yield port
    finally:
        await runner.cleanup()
    assert seen and all(name in ("secure.localhost", "mismatch.localhost") for name in seen), seen


def checked(host: str, port: int) -> Allowed:
    policy = EgressPolicy(loopback_allowance=frozenset({(host, port)}))
    allowed = decide_egress(f"https://{host}:{port}/", lambda _name: ["127.0.0.1"], policy)
    assert isinstance(allowed, Allowed)
    return allowed


def trusting_the_test_ca() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(TLS / "test-ca.pem"))


@pytest.fixture
async def fetchers() -> AsyncIterator[list[SafeFetcher]]:
    made: list[SafeFetcher] = []
    yield made
    for fetcher in made:
        await fetcher.close()


def fetcher(fetchers: list[SafeFetcher], context: ssl.SSLContext | None = None) -> SafeFetcher:
    made = SafeFetcher(LIMITS, context)
    fetchers.append(made)
    return made


async def test_a_certificate_for_the_host_from_a_trusted_ca_is_accepted(
    https_port: int, fetchers: list[SafeFetcher]
) -> None:
    response = await fetcher(fetchers, trusting_the_test_ca()).get(
        checked("secure.localhost", https_port), request_headers(), want_body=lambda status, _type: status == 200
    )
    assert response.status == 200 and response.body == f"hello secure.localhost:{https_port}".encode()


async def test_a_certificate_no_trusted_ca_signed_is_a_tls_error(https_port: int, fetchers: list[SafeFetcher]) -> None:
    with pytest.raises(FetchError) as refused:
        await fetcher(fetchers).get(
            checked("secure.localhost", https_port), request_headers(), want_body=lambda _status, _type: True
        )
    assert refused.value.reason == "tls_error"


async def test_a_certificate_for_another_name_is_a_tls_error(https_port: int, fetchers: list[SafeFetcher]) -> None:
    with pytest.raises(FetchError) as refused:
        await fetcher(fetchers, trusting_the_test_ca()).get(
            checked("mismatch.localhost", https_port), request_headers(), want_body=lambda _status, _type: True
        )
    assert refused.value.reason == "tls_error"
