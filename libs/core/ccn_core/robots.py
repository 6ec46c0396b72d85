"""robots.txt decisions (RFC 9309), pure: what a fetched robots.txt means, and whether it lets
our crawler fetch a URL, and how slowly.

Protego (Scrapy's parser) reads the groups and rules: longest match, allow winning ties,
wildcards and `$`, percent-encoding normalised on both sides. Where it falls short of RFC 9309 the
file is prepared before Protego sees it, and the URL before it is matched:

- only the first `MAX_ROBOTS_BYTES` (512 KiB; the RFC asks for at least 500 KiB) are read, cut at
  the last whole line, so a huge file costs a bounded parse;
- a UTF-8 byte-order mark is dropped (Protego reads it as part of the first field, losing the
  first group); lines end at CR, LF or CRLF only (Python's `splitlines` also breaks at form
  feeds, U+0085, U+2028... which the RFC does not);
- a line longer than `MAX_LINE_CHARS` is cut; an over-long `Allow` is dropped instead, so a cut
  can only ever disallow more, never allow more;
- user-agent values are reduced to their product token (`CCNBot/1.0` is `ccnbot`), compared
  case-insensitively and whole: Protego matches a group's name anywhere in the crawler's name
  at a token start, so a group for `CCN` would have bound a crawler called `CCNBot`;
- `%2F` in rules and URLs is read as `/` (the RFC's own example matches
  `/foo/bar?baz=https://foo.bar` with `?baz=https%3A%2F%2Ffoo.bar`; Protego keeps them apart).

Crawl-delay and Request-rate are folded into one minimum interval between fetches, capped at a
day (robots.txt is fetched again within a day anyway, RFC 9309 2.4).

`robots_fetch_outcome` is RFC 9309's status rules: 2xx parse; 4xx (but 429) allow all; 429, 5xx
and an unreachable server disallow all until the next try, at Retry-After when the server gives
one; after too many redirects the file is unavailable, which allows all (2.3.1.2).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

import msgspec
from protego import Protego

MAX_ROBOTS_BYTES = 512 * 1024
MAX_LINE_CHARS = 16 * 1024
MAX_INTERVAL_S = 86_400.0
CACHE_TTL_S = 86_400.0  # RFC 9309 2.4: a cached robots.txt is used for a day at most
RETRY_AFTER_ERROR_S = 600.0  # when a 5xx or an unreachable server says nothing of when to come back
MIN_RETRY_S = 1.0

_UTF8_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(r"\r\n|\r|\n")
# characters str.splitlines breaks at but RFC 9309 does not: kept, as the escapes they stand for
_FALSE_LINE_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_USER_AGENT_LINE = re.compile(r"(\s*user[- ]?agent\s*(?::|\s)\s*)([^#]*)(.*)", re.IGNORECASE | re.DOTALL)
_ALLOW_LINE = re.compile(r"\s*allow\s*(?::|\s)", re.IGNORECASE)
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")
_ENCODED_SLASH = re.compile("%2f", re.IGNORECASE)
# what a group for another crawler is renamed to: no product token can hold '~'
_OTHER_AGENT = "~other-agent~"
# a stand-in origin: rules match the path and query only, and a path starting with '//' must not
# be read as an authority
_ORIGIN = "http://robots.invalid"


class RobotsDecision(msgspec.Struct, frozen=True):
    allowed: bool
    # the least time between two fetches from the site that robots.txt asks of us, or None
    min_interval_s: float | None = None


class RobotsRules:
    """One origin's robots.txt, parsed once and asked many times. Holds a Protego parser, so it
    is not a message: the fetch proxy caches it beside the `RobotsFetchOutcome` it came from."""

    __slots__ = ("_disallow_all", "_parser", "_product")

    def __init__(self, product: str, parser: Protego | None, *, disallow_all: bool = False) -> None:
        self._product = product
        self._parser = parser
        self._disallow_all = disallow_all

    @classmethod
    def parse(cls, robots_txt: bytes | str, user_agent: str) -> RobotsRules:
        product = product_token(user_agent)
        return cls(product, Protego.parse(prepare_robots_txt(robots_txt, product)))

    @classmethod
    def allow_all(cls, user_agent: str) -> RobotsRules:
        return cls(product_token(user_agent), None)

    @classmethod
    def disallow_all(cls, user_agent: str) -> RobotsRules:
        return cls(product_token(user_agent), None, disallow_all=True)

    def decide(self, url: str) -> RobotsDecision:
        if self._disallow_all:
            return RobotsDecision(allowed=False)
        if self._parser is None:
            return RobotsDecision(allowed=True)
        allowed = self._parser.can_fetch(_matchable(url), self._product)
        return RobotsDecision(allowed=allowed, min_interval_s=self._min_interval())

    def _min_interval(self) -> float | None:
        assert self._parser is not None
        intervals = []
        delay = self._parser.crawl_delay(self._product)
        if delay is not None:
            intervals.append(delay)
        rate = self._parser.request_rate(self._product)
        if rate is not None:
            intervals.append(rate.seconds / rate.requests)
        return min(max(intervals), MAX_INTERVAL_S) if intervals else None


def robots_decision(robots_txt: bytes | str, user_agent: str, url: str) -> RobotsDecision:
    """Does this robots.txt let `user_agent` fetch `url`? Parses every time: cache RobotsRules
    instead when asking more than once."""
    return RobotsRules.parse(robots_txt, user_agent).decide(url)


def product_token(user_agent: str) -> str:
    """The crawler's name as robots.txt groups name it: the leading letters, '-' and '_' of the
    user agent, lowercased (`CCNBot/1.0 (+https://…)` → `ccnbot`)."""
    found = _PRODUCT_TOKEN.match(user_agent.strip())
    if found is None:
        raise ValueError(f"the user agent {user_agent[:80]!r} does not start with a product token")
    return found.group().lower()


def prepare_robots_txt(robots_txt: bytes | str, product: str) -> str:
    """The file as Protego should read it (see the module's docstring)."""
    raw = robots_txt.encode("utf-8", "replace") if isinstance(robots_txt, str) else robots_txt
    if len(raw) > MAX_ROBOTS_BYTES:
        raw = raw[:MAX_ROBOTS_BYTES]
        last_end = max(raw.rfind(b"\n"), raw.rfind(b"\r"))
        raw = raw[: last_end + 1] if last_end >= 0 else b""
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    text = raw.decode("utf-8", "replace")
    lines = []
    for line in _LINE_END.split(text):
        line = _FALSE_LINE_BREAKS.sub(_escaped, line)
        if len(line) > MAX_LINE_CHARS:
            if _ALLOW_LINE.match(line):
                continue
            line = line[:MAX_LINE_CHARS]
        user_agent = _USER_AGENT_LINE.fullmatch(line)
        if user_agent is not None:
            field, value, comment = user_agent.groups()
            line = field + _group_name(value, product) + comment
        else:
            line = _ENCODED_SLASH.sub("/", line)
        lines.append(line)
    return "\n".join(lines)


def _group_name(value: str, product: str) -> str:
    value = value.strip()
    if not value or value == "*":
        return value
    found = _PRODUCT_TOKEN.match(value)
    return product if found is not None and found.group().lower() == product else _OTHER_AGENT


def _escaped(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def _matchable(url: str) -> str:
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query or url.partition("#")[0].endswith("?"):
        target += "?" + parts.query
    return _ORIGIN + _ENCODED_SLASH.sub("/", target if target.startswith("/") else "/" + target)


RobotsKind = Literal["parse", "allow_all", "disallow_all"]


class RobotsFetchOutcome(msgspec.Struct, frozen=True):
    """What a robots.txt fetch means: parse its body, or allow or disallow everything, until
    `valid_until`, when robots.txt is fetched again."""

    kind: RobotsKind
    reason: str
    valid_until: datetime


def robots_fetch_outcome(
    status: int | None,
    now: datetime,
    *,
    retry_after: str | None = None,
    ttl_s: float = CACHE_TTL_S,
    error_retry_s: float = RETRY_AFTER_ERROR_S,
) -> RobotsFetchOutcome:
    """RFC 9309 2.3.1's rules. `status` is the final status after the fetcher followed up to
    five redirects (a 3xx here means it gave up), or None when the server was unreachable."""
    fresh = now + timedelta(seconds=ttl_s)
    if status is None:
        return RobotsFetchOutcome("disallow_all", "robots.txt unreachable", now + timedelta(seconds=error_retry_s))
    if 200 <= status < 300:
        return RobotsFetchOutcome("parse", f"robots.txt fetched ({status})", fresh)
    if 300 <= status < 400:
        return RobotsFetchOutcome("allow_all", f"robots.txt unavailable: too many redirects ({status})", fresh)
    if status == 429 or 500 <= status < 600:
        until = _retry_at(retry_after, now, error_retry_s)
        return RobotsFetchOutcome("disallow_all", f"robots.txt answered {status}: disallow all until retried", until)
    if 400 <= status < 500:
        return RobotsFetchOutcome("allow_all", f"robots.txt unavailable ({status})", fresh)
    return RobotsFetchOutcome(
        "disallow_all", f"robots.txt answered an unexpected status {status}", now + timedelta(seconds=error_retry_s)
    )


def _retry_at(retry_after: str | None, now: datetime, default_s: float) -> datetime:
    """Retry-After as delta-seconds or an HTTP date, held between a second and a day."""
    wait_s = default_s
    value = (retry_after or "").strip()[:64]
    if value.isascii() and value.isdigit():
        wait_s = float(value[:9])
    elif value:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None:
            when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
            wait_s = (when - now).total_seconds()
    return now + timedelta(seconds=min(max(wait_s, MIN_RETRY_S), MAX_INTERVAL_S))
