"""One spelling per URL, so the crawl frontier holds each page once.

Neither w3lib nor url-normalize is in the lock, and what the frontier needs is short, so this is
the standard library plus the host reading the egress decision uses (`ccn_core.url_host`): the
frontier and the fetch proxy then agree on what a host is.

- the scheme and host are lowercased; the host is IDNA (punycode) without a trailing dot, and an
  IP literal in any spelling is written the one standard way (`0x7f.1` is `127.0.0.1`);
- the scheme's default port is dropped;
- percent-encoding is normalised: escapes of unreserved characters are decoded (`%7E` is `~`),
  the other escapes are uppercased, and characters that must be escaped are (UTF-8);
- dot segments are removed (RFC 3986 5.2.4), `%2E` counting as a dot, as browsers count it;
- the fragment is dropped and the query is kept as it was written, parameters in their order
  (their order can matter to the server), an empty query dropped;
- an empty path is `/`.

Before parsing, as browsers do for http(s): surrounding spaces and controls are stripped, tabs
and line breaks removed, and backslashes before the query read as slashes. A relative link is
resolved against the page it was found on (`base`). Only http(s) URLs without credentials are
canonical; anything else is refused with a BadInput saying why.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from ccn_core.errors import BadInput
from ccn_core.url_host import BadHost, parse_host, split_port

MAX_URL_LENGTH = 8192
DEFAULT_PORTS = {"http": "80", "https": "443"}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31}):")
_EDGE_JUNK = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_PORT = re.compile(r"[0-9]{1,5}")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# an escape, a lone '%', or a character that may not stand unescaped in a path or query
_PATH_WORK = re.compile(r"%([0-9A-Fa-f]{2})|%|[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")
_QUERY_WORK = re.compile(r"%([0-9A-Fa-f]{2})|%|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]")


def canonical_url(url: str, base: str | None = None) -> str:
    """The canonical form of `url` (resolved against `base` when given). Raises BadInput."""
    if len(url) > MAX_URL_LENGTH or (base is not None and len(base) > MAX_URL_LENGTH):
        raise BadInput(f"the URL is longer than {MAX_URL_LENGTH} characters", field="url")
    absolute = _browser_cleanup(url)
    if base is not None:
        absolute = urljoin(_browser_cleanup(base), absolute)
    scheme_match = _SCHEME.match(absolute)
    if scheme_match is None:
        raise BadInput("the URL is not absolute (no scheme)", field="url")
    scheme = scheme_match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise BadInput(f"scheme {scheme!r} is not http or https", field="url")
    rest = absolute[scheme_match.end() :]
    if not rest.startswith("//"):
        raise BadInput("an http(s) URL must have '//' after the scheme", field="url")
    rest = rest[2:]
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1:
            end = min(end, found)
    authority, remainder = rest[:end], rest[end:]
    if "@" in authority:
        raise BadInput("credentials in the URL (userinfo) are not crawled", field="url")
    authority = _canonical_authority(authority, scheme)
    without_fragment = remainder.partition("#")[0]
    path, _, query = without_fragment.partition("?")
    canonical = f"{scheme}://{authority}{_canonical_path(path)}"
    if query:
        canonical += "?" + _QUERY_WORK.sub(_normalised, query)
    if len(canonical) > MAX_URL_LENGTH:
        raise BadInput(f"the canonical URL is longer than {MAX_URL_LENGTH} characters", field="url")
    return canonical


def _browser_cleanup(url: str) -> str:
    cleaned = _TAB_OR_NEWLINE.sub("", url.strip(_EDGE_JUNK))
    before_query, mark, after = cleaned.partition("?")
    return before_query.replace("\\", "/") + mark + after


def _canonical_authority(authority: str, scheme: str) -> str:
    try:
        written_host, port = split_port(authority)
        host = parse_host(written_host)
    except BadHost as error:
        raise BadInput(str(error), field="url") from None
    if port is None or port == "":
        return host.url_form
    if not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise BadInput(f"the port {port[:20]!r} is not a number from 1 to 65535", field="url")
    port = str(int(port))
    return host.url_form if port == DEFAULT_PORTS[scheme] else f"{host.url_form}:{port}"


def _canonical_path(path: str) -> str:
    normalised = _PATH_WORK.sub(_normalised, path) or "/"
    return remove_dot_segments(normalised if normalised.startswith("/") else "/" + normalised)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4 for an absolute path: `/a/b/../c/./d` is `/a/c/d`."""
    segments = path.split("/")[1:]
    kept: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                kept.append("")
        elif segment == "..":
            if kept:
                kept.pop()
            if last:
                kept.append("")
        else:
            kept.append(segment)
    return "/" + "/".join(kept)


def _normalised(match: re.Match[str]) -> str:
    escaped = match.group(1)
    if escaped is not None:
        byte = int(escaped, 16)
        return chr(byte) if byte in _UNRESERVED else f"%{escaped.upper()}"
    text = match.group()
    if text == "%":
        return "%25"
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8", "surrogatepass"))
