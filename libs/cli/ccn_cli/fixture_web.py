"""A local web to crawl: a few sites like grant funders', and a hostile one, served on loopback
by one aiohttp app that tells the sites apart by the Host header (`grants.localhost`,
`foundation.localhost`, `flaky.localhost`, `hostile.localhost`, all on one port).

The fetch proxy reaches it only through the development allowance
(CCN_FETCH_DEV_LOOPBACK=grants.localhost:8421,...; `dev_loopback_setting` prints it), since
every loopback address is otherwise refused. Names under `.localhost` are loopback by RFC 6761,
so no DNS or hosts file is involved.

- grants.localhost: an index of funding opportunities linking to a page each (deadline, amount,
  eligibility, rounds), a PDF of guidance, an XHTML page; robots.txt with a Crawl-delay and a
  disallowed /private/.
- foundation.localhost: pages linking to each other and back; robots.txt answers 404 (allow all).
- flaky.localhost: robots.txt answers 503 with Retry-After until `state.flaky_robots_ok` is set.
- hostile.localhost: slow pages, a 500, redirects to internal addresses (127.0.0.1,
  169.254.169.254, [::1]), a redirect loop, a 10 GB body generated lazily (with and without
  Content-Length), a gzip bomb, a slowloris body (a byte a second, for an hour), a body of a
  type the jobs do not read, a header past any sane size, a coding the proxy does not decode,
  and an echo of the request's headers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gzip
import html
from dataclasses import dataclass, field

from aiohttp import web

from ccn_jobs.demo_documents import grant_document, grant_pdf

DEFAULT_PORT = 8421
SITES = ("grants.localhost", "foundation.localhost", "flaky.localhost", "hostile.localhost")
OPPORTUNITIES = 12
HUGE_BYTES = 10 * 1024**3
_CHUNK = b"<p>" + b"funding " * 8190 + b"</p>\n"  # 64 KiB
GRANTS_ROBOTS = "User-agent: *\nDisallow: /private/\n\nUser-agent: CCNBot\nDisallow: /private/\nCrawl-delay: 1\n"


@dataclass
class FixtureState:
    """What a test may change while the web serves."""

    flaky_robots_ok: bool = False
    slow_s: float = 3.0
    slowloris_interval_s: float = 1.0
    hits: dict[str, int] = field(default_factory=dict)


STATE_KEY = web.AppKey("fixture_state", FixtureState)
PDF_KEY = web.AppKey("guidance_pdf", bytes)
BOMB_KEY = web.AppKey("gzip_bomb", bytes)


def dev_loopback_setting(port: int) -> str:
    """The CCN_FETCH_DEV_LOOPBACK value that lets the fetch proxy reach these sites."""
    return ",".join(f"{site}:{port}" for site in SITES)


def _page(title: str, body: str) -> str:
    head = f"<head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
    return f"<!doctype html><html>{head}<body>{body}</body></html>"


def _html(text: str, **headers: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers=headers)


def _opportunity(index: int) -> str:
    document = grant_document(index)
    rounds = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='amount'>{html.escape(amount)}</td>"
        f"<td class='deadline'>{html.escape(closing)}</td></tr>"
        for name, amount, closing in document.rounds
    )
    paragraphs = "".join(f"<p>{html.escape(text)}</p>" for text in document.paragraphs)
    return _page(
        document.title,
        f"<h1 class='title'>{html.escape(document.title)}</h1><p class='funder'>{html.escape(document.funder)}</p>"
        f"<p class='eligibility'>Eligibility: registered charities and community groups in the UK.</p>"
        f"{paragraphs}<table class='rounds'><tr><th>Round</th><th>Maximum grant</th><th>Closing date</th></tr>{rounds}"
        f"</table><a href='/'>All opportunities</a> <a href='/opportunities/{(index + 1) % OPPORTUNITIES}'>Next</a>",
    )


async def _grants(request: web.Request, path: str) -> web.StreamResponse:
    if path == "/robots.txt":
        return web.Response(text=GRANTS_ROBOTS, content_type="text/plain")
    if path == "/":
        links = "".join(
            f"<li><a href='/opportunities/{n}'>{html.escape(grant_document(n).title)}</a></li>"
            for n in range(OPPORTUNITIES)
        )
        return _html(
            _page("Funding opportunities", f"<h1>Open funding</h1><ul>{links}</ul><a href='/guidance.pdf'>Guidance</a>")
        )
    if path.startswith("/opportunities/") and path.removeprefix("/opportunities/").isdigit():
        index = int(path.removeprefix("/opportunities/"))
        if index < OPPORTUNITIES:
            validators = {"ETag": f'"opp-{index}"', "Last-Modified": "Mon, 02 Nov 2026 09:00:00 GMT"}
            if request.headers.get("If-None-Match") == validators["ETag"]:
                return web.Response(status=304, headers=validators)
            return _html(_opportunity(index), **validators)
    if path == "/guidance.pdf":
        return web.Response(body=request.app[PDF_KEY], content_type="application/pdf")
    if path == "/about.xhtml":
        return web.Response(text=_page("About", "<p>About us</p>"), content_type="application/xhtml+xml")
    if path.startswith("/private/"):
        return _html(_page("Private", "<p>not for crawlers</p>"))
    raise web.HTTPNotFound()


async def _foundation(request: web.Request, path: str) -> web.StreamResponse:
    if path == "/robots.txt":
        raise web.HTTPNotFound()
    pages = {"/": "/programmes", "/programmes": "/contact", "/contact": "/"}
    if path in pages:
        return _html(_page(path, f"<h1>Foundation {path}</h1><a href='{pages[path]}'>more</a><a href='/'>home</a>"))
    raise web.HTTPNotFound()


async def _flaky(request: web.Request, path: str) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if path == "/robots.txt":
        if not state.flaky_robots_ok:
            return web.Response(status=503, text="busy", headers={"Retry-After": "1"})
        return web.Response(text="User-agent: *\nAllow: /\n", content_type="text/plain")
    return _html(_page("Flaky", "<p>up now</p>"))


async def _hostile(request: web.Request, path: str) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    port = request.url.port or DEFAULT_PORT  # redirects to this very server, by address
    redirects = {
        "/redirect/loopback": "http://127.0.0.1/",
        "/redirect/loopback-port": f"http://127.0.0.1:{port}/",
        "/redirect/metadata": "http://169.254.169.254/latest/meta-data/",
        "/redirect/v6": "http://[::1]/",
        "/redirect/loop": "/redirect/loop",
        "/redirect/decimal": "http://2130706433/",
        "/redirect/ok": "/ok",
    }
    if path == "/robots.txt":
        raise web.HTTPNotFound()
    if path in redirects:
        raise web.HTTPFound(redirects[path])
    if path.startswith("/redirect/chain/") and path.removeprefix("/redirect/chain/").isdigit():
        left = int(path.removeprefix("/redirect/chain/"))
        raise web.HTTPFound(f"/redirect/chain/{left - 1}" if left > 0 else "/ok")
    if path == "/headers":
        # what reached the site, one header a line: the tests check the proxy sent only its own
        echoed = "".join(f"{name}: {value}\n" for name, value in request.headers.items())
        return web.Response(text=echoed, content_type="text/plain")
    if path == "/ok":
        return _html(_page("ok", "<p>ok</p>"))
    if path == "/slow":
        await asyncio.sleep(state.slow_s)
        return _html(_page("slow", "<p>late</p>"))
    if path == "/error":
        return web.Response(status=500, text="broken")
    if path == "/long-header":
        return web.Response(text="x", content_type="text/html", headers={"X-Filler": "a" * 20_000})
    if path == "/brotli":
        return web.Response(body=b"\x0b\x02\x80ok\x03", headers={"Content-Type": "text/html", "Content-Encoding": "br"})
    if path == "/binary":
        return web.Response(body=b"\x00" * 1024, content_type="application/octet-stream")
    if path == "/huge":
        return await _stream(request, web.StreamResponse(headers={"Content-Type": "text/html"}), HUGE_BYTES)
    if path == "/huge-chunked":
        # the same 10 GB with no Content-Length: only counting while streaming finds it too large
        return await _stream(
            request, web.StreamResponse(headers={"Content-Type": "text/html"}), HUGE_BYTES, chunked=True
        )
    if path == "/bomb":
        return web.Response(
            body=request.app[BOMB_KEY], headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
        )
    if path == "/slowloris":
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        await response.prepare(request)
        for _ in range(3600):
            await response.write(b" ")
            await asyncio.sleep(state.slowloris_interval_s)
        return response
    raise web.HTTPNotFound()


async def _stream(
    request: web.Request, response: web.StreamResponse, size: int, *, chunked: bool = False
) -> web.StreamResponse:
    """`size` bytes made as they are sent: a client that stops reading stops the making."""
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = size
    await response.prepare(request)
    sent = 0
    while sent < size:
        chunk = _CHUNK[: size - sent]
        await response.write(chunk)
        sent += len(chunk)
    return response


@functools.cache
def _guidance_pdf() -> bytes:
    """Made once, before serving: rendering a PDF takes longer than a test's read bound."""
    return grant_pdf(3, pages=2)


@functools.cache
def _gzip_bomb() -> bytes:
    """64 MiB of zeros, gzipped to about 64 KiB (a ratio near 1000); made once, before serving:
    compressing it takes longer than a test's read bound on a loaded machine."""
    return gzip.compress(b"\x00" * (64 * 1024 * 1024), compresslevel=9)


_HANDLERS = {
    "grants.localhost": _grants,
    "foundation.localhost": _foundation,
    "flaky.localhost": _flaky,
    "hostile.localhost": _hostile,
}


async def _dispatch(request: web.Request) -> web.StreamResponse:
    site = (request.host or "").rsplit(":", 1)[0].lower()
    handler = _HANDLERS.get(site)
    state = request.app[STATE_KEY]
    state.hits[f"{site}{request.path}"] = state.hits.get(f"{site}{request.path}", 0) + 1
    if handler is None:
        raise web.HTTPNotFound(text=f"no site {site!r} here")
    return await handler(request, request.path)


def fixture_web(state: FixtureState | None = None) -> web.Application:
    app = web.Application()
    app[STATE_KEY] = state or FixtureState()
    app[PDF_KEY] = _guidance_pdf()
    app[BOMB_KEY] = _gzip_bomb()
    app.router.add_route("GET", "/{tail:.*}", _dispatch)
    return app


async def serve_fixture_web(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> web.AppRunner:
    """Start serving on loopback; `await runner.cleanup()` stops it."""
    runner = web.AppRunner(fixture_web(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the local fixture web on loopback.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    print(f"fixture web on 127.0.0.1:{args.port}; CCN_FETCH_DEV_LOOPBACK={dev_loopback_setting(args.port)}")
    web.run_app(fixture_web(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
