"""One HTTP GET to addresses the egress policy checked, and nothing else.

The name was resolved once (`resolve_host`, bounded in time) and every answer checked
(ccn_core.egress.check_answers); aiohttp is given a resolver that knows only those answers, so
it cannot look the name up again (no DNS rebinding between the check and the connect). TLS is
verified against the host name, which aiohttp also sends as SNI.

Connections are kept alive per checked destination: the pool is keyed by the scheme, the name,
the port and the exact set of addresses this request's check allowed, so a request reuses a
connection only to an address that its own check has just allowed again (a name that now
resolves elsewhere gets a pool of its own). That spares a TCP and TLS handshake per page of a
site; the pools are few (least recently used closed first) and idle connections end quickly.

Bounds: connect, each read, and the whole exchange (a slowloris server that sends a byte at a
time is cut at the total); headers (line and field size); the body while it streams, before and
after decoding (ccn_fetch_proxy.body_decoding). Redirects are never followed here: the caller
checks each hop again and calls again.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable
from ipaddress import IPv6Address, ip_address

import aiohttp
import msgspec
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ccn_core.egress import Allowed
from ccn_fetch_proxy.body_decoding import (
    BodyDecoder,
    BodyTooLarge,
    BoundExceeded,
    DecompressionBomb,
    UnsupportedEncoding,
)
from ccn_proto.fetch import FailureReason

_CHUNK_BYTES = 64 * 1024
MAX_RESOLVE_ANSWERS = 64


class FetchLimits(msgspec.Struct, frozen=True, kw_only=True):
    max_body_bytes: int = 16 * 1024 * 1024
    max_decompression_ratio: float = 100.0
    resolve_timeout_s: float = 3.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    max_header_line_bytes: int = 8 * 1024


class FetchError(Exception):
    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: FailureReason = reason
        self.detail = detail[:1000]


class HopResponse(msgspec.Struct, frozen=True, kw_only=True):
    """One response: its status, the few headers the proxy reads, and the decoded body when it
    was asked for (None when it was not read)."""

    status: int
    content_type: str | None = None
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    retry_after: str | None = None
    body: bytes | None = None
    truncated: bool = False


# (status, content type) -> read the body?
WantBody = Callable[[int, str | None], bool]


async def resolve_host(name: str, timeout_s: float) -> list[str]:
    """The addresses `name` resolves to, asked of the system resolver without blocking the loop.
    Names under `.localhost` are loopback without asking (RFC 6761 6.3): the egress policy
    refuses them anyway unless a development allowance names them."""
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    answers: list[str] = []
    for info in infos[: MAX_RESOLVE_ANSWERS + 1]:
        address = str(info[4][0])
        if address not in answers:
            answers.append(address)
    return answers


class _PinnedResolver(AbstractResolver):
    """Answers for the one checked name with the checked addresses; any other name resolves to
    nothing."""

    def __init__(self, name: str, addresses: tuple[str, ...]) -> None:
        self._name = name
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._name:
            raise OSError(f"{host!r} was not checked")
        results: list[ResolveResult] = []
        for address in self._addresses:
            v6 = isinstance(ip_address(address), IPv6Address)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=socket.AF_INET6 if v6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None


# (scheme, authority, checked addresses): the destinations that keep connections open
_PoolKey = tuple[str, str, tuple[str, ...]]
MAX_POOLS = 128
# the domain gate bounds a domain's concurrent fetches (at most 64 by policy); the pool never should
CONNECTIONS_PER_POOL = 64
KEEPALIVE_S = 10.0


class SafeFetcher:
    def __init__(self, limits: FetchLimits, ssl_context: ssl.SSLContext | None = None) -> None:
        self.limits = limits
        # one verified context for every request: making one costs milliseconds
        self._ssl = ssl_context or ssl.create_default_context()
        self._sessions: OrderedDict[_PoolKey, aiohttp.ClientSession] = OrderedDict()

    async def close(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)

    async def _session(self, allowed: Allowed) -> aiohttp.ClientSession:
        target = allowed.target
        key: _PoolKey = (target.scheme, target.authority, tuple(sorted(allowed.addresses)))
        session = self._sessions.get(key)
        if session is not None and not session.closed:
            self._sessions.move_to_end(key)
            return session
        limits = self.limits
        connector = aiohttp.TCPConnector(
            resolver=_PinnedResolver(target.host.name, allowed.addresses),
            use_dns_cache=False,
            limit=CONNECTIONS_PER_POOL,
            keepalive_timeout=KEEPALIVE_S,
            ssl=self._ssl if target.scheme == "https" else False,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=limits.connect_timeout_s, sock_read=limits.read_timeout_s
            ),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            max_line_size=limits.max_header_line_bytes,
            max_field_size=limits.max_header_line_bytes,
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )
        self._sessions[key] = session
        while len(self._sessions) > MAX_POOLS:
            _, oldest = self._sessions.popitem(last=False)
            await oldest.close()
        return session

    async def get(
        self,
        allowed: Allowed,
        headers: dict[str, str],
        *,
        want_body: WantBody,
        max_body_bytes: int | None = None,
        truncate: bool = False,
        deadline: float | None = None,
    ) -> HopResponse:
        """GET the checked target. With `truncate`, a body past `max_body_bytes` is cut there
        (robots.txt: only the first 512 KiB count); otherwise it fails as too_large. `deadline`
        (the loop's clock) ends the exchange earlier than the total bound when it comes first."""
        limits = self.limits
        total_s = limits.total_timeout_s
        if deadline is not None:
            total_s = min(total_s, deadline - asyncio.get_running_loop().time())
            if total_s <= 0:
                raise FetchError("timeout", "the request's time ran out before this hop")
        bound = max_body_bytes if max_body_bytes is not None else limits.max_body_bytes
        target = allowed.target
        try:
            async with asyncio.timeout(total_s):
                session = await self._session(allowed)
                async with session.get(
                    URL(target.url, encoded=True), headers=headers, allow_redirects=False
                ) as response:
                    # a body left unread (not wanted, cut at a bound) closes its connection
                    # rather than going back to the pool half read
                    return await _read(response, want_body, bound, truncate, limits)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError("timeout", f"no whole answer from {target.authority} within the time bounds") from None
        except aiohttp.ClientConnectorCertificateError as error:
            raise FetchError("tls_error", f"the certificate of {target.authority} is not valid: {error}") from None
        except aiohttp.ClientSSLError as error:
            raise FetchError("tls_error", f"TLS with {target.authority} failed: {error}") from None
        except aiohttp.ClientConnectorError as error:
            raise FetchError("connect_failed", f"could not connect to {target.authority}: {error}") from None
        except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as error:
            raise FetchError(
                "bad_response", f"{target.authority} answered badly: {type(error).__name__}: {error}"
            ) from None
        except (aiohttp.ClientError, OSError, ValueError) as error:
            raise FetchError("connect_failed", f"{type(error).__name__}: {error!s:.300}") from None


async def _read(
    response: aiohttp.ClientResponse, want_body: WantBody, bound: int, truncate: bool, limits: FetchLimits
) -> HopResponse:
    headers = response.headers
    content_type = headers.get("Content-Type")
    head = HopResponse(
        status=response.status,
        content_type=content_type[:256] if content_type else None,
        location=headers.get("Location"),
        etag=_short(headers.get("ETag")),
        last_modified=_short(headers.get("Last-Modified")),
        retry_after=_short(headers.get("Retry-After")),
    )
    if not want_body(response.status, content_type):
        return head
    declared = response.content_length
    if declared is not None and declared > bound and not truncate:
        raise FetchError("too_large", f"the body is declared as {declared} bytes, over {bound}")
    try:
        decoder = BodyDecoder(
            headers.get("Content-Encoding"), max_bytes=bound, max_ratio=limits.max_decompression_ratio
        )
    except UnsupportedEncoding as error:
        raise FetchError("bad_response", str(error)) from None
    body = bytearray()
    try:
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            if decoder.compressed and decoder.received + len(chunk) > bound:
                # what arrives is bounded too, not only what it decodes to
                raise BodyTooLarge(f"over {bound} bytes arrived compressed")
            body += decoder.feed(chunk)
        body += decoder.finish()
    except BoundExceeded as exceeded:
        if truncate:
            # the first bytes within the bound are the body (robots.txt: the first 512 KiB count)
            return msgspec.structs.replace(head, body=bytes(body + exceeded.partial)[:bound], truncated=True)
        reason: FailureReason = "decompression_bomb" if isinstance(exceeded, DecompressionBomb) else "too_large"
        raise FetchError(reason, str(exceeded)) from None
    except ValueError as error:
        raise FetchError("bad_response", str(error)) from None
    return msgspec.structs.replace(head, body=bytes(body))


def _short(value: str | None) -> str | None:
    """A response validator kept only when it is a short, visible-ASCII value."""
    if value is None or len(value) > 256 or not value.isascii() or not value.isprintable():
        return None
    return value
