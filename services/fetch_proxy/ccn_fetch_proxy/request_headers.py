"""The request headers the fetch proxy sends: built from nothing a node chose but the two
conditional-GET validators, which are checked again here.

A node cannot add, remove or spell a header: cookies, credentials, forwarding headers, a Host
of its choosing or a Range never leave the proxy. The user agent names the project, so a site
can tell who we are and write a robots.txt group for us (RFC 9309 2.2.1: the product token
`ccnbot`)."""

from __future__ import annotations

import re

USER_AGENT = "CCNBot/1.0 (+https://github.com/ecoservants/community-compute; EcoServants Compute Network)"
# what the proxy decodes itself (body_decoding): nothing it cannot bound
ACCEPT_ENCODING = "gzip, deflate"
ACCEPT = "text/html, application/xhtml+xml, text/plain;q=0.9, application/pdf;q=0.8, */*;q=0.1"
MAX_VALIDATOR_CHARS = 256
# visible ASCII and space: no CR, LF or NUL can split a header
_VALIDATOR = re.compile(r"[\x20-\x7e]{1,256}")


def request_headers(*, if_none_match: str | None = None, if_modified_since: str | None = None) -> dict[str, str]:
    """Every header of a page request. A validator that is not one safe header value is left
    out (the request is then an ordinary GET), never sent as it came."""
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": ACCEPT,
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    if if_none_match is not None and _VALIDATOR.fullmatch(if_none_match):
        headers["If-None-Match"] = if_none_match.strip()
    if if_modified_since is not None and _VALIDATOR.fullmatch(if_modified_since):
        headers["If-Modified-Since"] = if_modified_since.strip()
    return headers


def robots_request_headers() -> dict[str, str]:
    return {"User-Agent": USER_AGENT, "Accept": "text/plain, */*;q=0.1", "Accept-Encoding": ACCEPT_ENCODING}
