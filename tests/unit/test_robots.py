"""robots.txt per RFC 9309, as tables: groups, user-agent matching, wildcards and `$`, longest
match, allow/disallow ties, percent-encoding, BOM, line ends, odd whitespace and case, huge
files and lines; and the status rules. Where a row closes a gap in Protego the test says so by
asking Protego alone the same question."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from protego import Protego

from ccn_core.robots import (
    MAX_INTERVAL_S,
    MAX_LINE_CHARS,
    MAX_ROBOTS_BYTES,
    RobotsDecision,
    RobotsFetchOutcome,
    RobotsRules,
    product_token,
    robots_decision,
    robots_fetch_outcome,
)

UA = "CCNBot/1.0 (+https://grants.example.org/bot)"
SITE = "https://www.example.com"

CASES: list[tuple[str, str, str, bool]] = [
    ("no file content allows all", "", "/anything", True),
    ("disallow all for everyone", "User-agent: *\nDisallow: /\n", "/x", False),
    ("robots.txt itself is always allowed", "User-agent: *\nDisallow: /\n", "/robots.txt", True),
    ("empty disallow allows all", "User-agent: *\nDisallow:\n", "/x", True),
    ("a prefix disallows below it", "User-agent: *\nDisallow: /private\n", "/private/report.pdf", False),
    ("a prefix matches as a string, not as a segment", "User-agent: *\nDisallow: /private\n", "/privateer", False),
    ("outside the prefix is allowed", "User-agent: *\nDisallow: /private/\n", "/public/x", True),
    ("our group overrides the star group", "User-agent: *\nDisallow: /\n\nUser-agent: CCNBot\nAllow: /\n", "/x", True),
    (
        "our group alone binds us",
        "User-agent: *\nAllow: /\n\nUser-agent: ccnbot\nDisallow: /grants\n",
        "/grants",
        False,
    ),
    ("another crawler's group does not bind us", "User-agent: OtherBot\nDisallow: /\n", "/x", True),
    (
        "our name matched case-insensitively",
        "User-agent: cCnBoT\nDisallow: /secret\n",
        "/secret",
        False,
    ),
    ("a version after the product token is ignored", "User-agent: CCNBot/2.1\nDisallow: /\n", "/x", False),
    ("a group for a prefix of our name is not ours", "User-agent: CCN\nDisallow: /\n", "/x", True),
    ("a group for a longer name is not ours", "User-agent: CCNBot-Images\nDisallow: /\n", "/x", True),
    ("a group naming us inside a longer string is not ours", "User-agent: MyCCNBot\nDisallow: /\n", "/x", True),
    (
        "groups for us are merged wherever they are",
        "User-agent: ccnbot\nDisallow: /a\n\nUser-agent: other\nDisallow: /\n\nUser-agent: CCNBot\nDisallow: /b\n",
        "/b/1",
        False,
    ),
    (
        "several user agents share one group",
        "User-agent: other\nUser-agent: CCNBot\nDisallow: /shared\n",
        "/shared",
        False,
    ),
    (
        "a user-agent line after rules starts a new group",
        "User-agent: CCNBot\nDisallow: /a\nUser-agent: other\nDisallow: /b\n",
        "/b",
        True,
    ),
    (
        "blank lines between user-agent lines do not split the group",
        "User-agent: CCNBot\n\nUser-agent: *\nDisallow: /\n",
        "/x",
        False,
    ),
    ("a star inside a name is not a wildcard", "User-agent: CCN*\nDisallow: /\n", "/x", True),
    ("rules before any user agent are ignored", "Disallow: /\nUser-agent: *\nAllow: /x\n", "/y", True),
    ("longest match wins: allow", "User-agent: *\nDisallow: /folder\nAllow: /folder/page\n", "/folder/page", True),
    ("longest match wins: disallow", "User-agent: *\nAllow: /folder\nDisallow: /folder/page\n", "/folder/page", False),
    ("equal length: allow wins the tie", "User-agent: *\nDisallow: /page\nAllow: /page\n", "/page", True),
    ("equal length the other way round", "User-agent: *\nAllow: /page\nDisallow: /page\n", "/page", True),
    ("wildcard in the middle", "User-agent: *\nDisallow: /*.pdf\n", "/docs/annual.pdf", False),
    ("wildcard matches the query too", "User-agent: *\nDisallow: /*?session=\n", "/p?session=2", False),
    ("dollar anchors the end", "User-agent: *\nDisallow: /*.pdf$\n", "/docs/annual.pdf?x=1", True),
    ("dollar anchors: exact end", "User-agent: *\nDisallow: /*.pdf$\n", "/docs/annual.pdf", False),
    ("only the root, anchored", "User-agent: *\nDisallow: /$\nAllow: /\n", "/", False),
    ("only the root, anchored: below is allowed", "User-agent: *\nDisallow: /$\n", "/page", True),
    ("a dollar inside a rule is literal", "User-agent: *\nDisallow: /a$b\n", "/a$b/c", False),
    ("consecutive wildcards are one", "User-agent: *\nDisallow: /a**b\n", "/a/x/b", False),
    (
        "longest match counts wildcards as written",
        "User-agent: *\nAllow: /*/public\nDisallow: /a/\n",
        "/a/public",
        True,
    ),
    ("paths are case-sensitive", "User-agent: *\nDisallow: /Private\n", "/private", True),
    ("field names are case-insensitive", "USER-AGENT: *\nDISALLOW: /x\n", "/x", False),
    ("whitespace around fields and values", "  User-agent :  *  \n\t Disallow  :   /x  \n", "/x/1", False),
    ("comments are ignored", "User-agent: * # everyone\nDisallow: /x # not x\n# Disallow: /y\n", "/y", True),
    ("comment after value", "User-agent: * # everyone\nDisallow: /x # not x\n", "/x", False),
    ("tolerated misspelling", "User-agent: *\nDissallow: /old\n", "/old", False),
    ("unknown fields are ignored", "User-agent: *\nNoindex: /x\nDisallow: /y\n", "/x", True),
    ("blank lines do not end a group", "User-agent: *\n\n\nDisallow: /x\n", "/x", False),
    ("CRLF line ends", "User-agent: *\r\nDisallow: /x\r\n", "/x", False),
    ("CR line ends", "User-agent: *\rDisallow: /x\r", "/x", False),
    ("mixed line ends", "User-agent: other\r\nDisallow: /\rUser-agent: *\nDisallow: /x\r\n", "/x", False),
    ("no final line end", "User-agent: *\nDisallow: /x", "/x", False),
    ("percent-encoded unreserved in the URL", "User-agent: *\nDisallow: /baz\n", "/%62%61%7A", False),
    ("percent-encoded unreserved in the rule", "User-agent: *\nDisallow: /%62%61%7A\n", "/baz", False),
    ("non-ASCII rule matches its UTF-8 escapes", "User-agent: *\nDisallow: /foo/bar/ツ\n", "/foo/bar/%E3%83%84", False),
    ("escapes match non-ASCII", "User-agent: *\nDisallow: /foo/bar/%E3%83%84\n", "/foo/bar/ツ", False),
    ("lowercase escapes match uppercase", "User-agent: *\nDisallow: /a%e3%83%84\n", "/a%E3%83%84", False),
    (
        "RFC 9309's example: an unescaped URL in a rule matches its escapes",
        "User-agent: *\nDisallow: /foo/bar?baz=https://foo.bar\n",
        "/foo/bar?baz=https%3A%2F%2Ffoo.bar",
        False,
    ),
    ("an escaped slash is a slash", "User-agent: *\nDisallow: /a/b\n", "/a%2Fb", False),
    ("an escaped slash in a rule is a slash", "User-agent: *\nDisallow: /a%2fb\n", "/a/b", False),
    ("an escaped star is not a wildcard", "User-agent: *\nDisallow: /a%2Ab\n", "/a-anything-b", True),
    ("the fragment is dropped before matching", "User-agent: *\nDisallow: /page$\n", "/page#frag", False),
    ("'#' in a rule starts a comment", "User-agent: *\nDisallow: /page#frag\n", "/page/x", False),
    ("a path starting with two slashes is a path", "User-agent: *\nDisallow: //x\n", "//x/y", False),
    ("an empty query still counts", "User-agent: *\nDisallow: /p?\n", "/p?", False),
    ("an empty query: without it", "User-agent: *\nDisallow: /p?\n", "/p", True),
    ("index.html allowed allows the directory", "User-agent: *\nDisallow: /d/\nAllow: /d/index.html\n", "/d/", True),
    ("sitemap lines do not end a group", "User-agent: *\nSitemap: https://x/s.xml\nDisallow: /x\n", "/x", False),
    ("a BOM does not hide the first group", "\ufeffUser-agent: *\nDisallow: /x\n", "/x", False),
    ("a form feed does not end a line", "User-agent: *\x0cDisallow: /\n", "/x", True),
    ("U+2028 does not end a line", "User-agent: *\nDisallow: /a\u2028b\n", "/a", True),
    ("U+2028 stays part of the rule", "User-agent: *\nDisallow: /a\u2028b\n", "/a%E2%80%A8b", False),
    ("invalid UTF-8 is replaced, not fatal", "User-agent: *\nDisallow: /\udcff\nDisallow: /x\n", "/x", False),
]


@pytest.mark.parametrize(("robots_txt", "path", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_robots_rules(robots_txt: str, path: str, allowed: bool) -> None:
    body = robots_txt.encode("utf-8", "surrogateescape")
    assert robots_decision(body, UA, SITE + path).allowed is allowed


GAPS_IN_PROTEGO = [
    "a version after the product token is ignored",
    "a group for a prefix of our name is not ours",
    "RFC 9309's example: an unescaped URL in a rule matches its escapes",
    "an escaped slash is a slash",
    "a BOM does not hide the first group",
    "a form feed does not end a line",
]


@pytest.mark.parametrize("name", GAPS_IN_PROTEGO)
def test_each_gap_closed_is_one_protego_alone_gets_wrong(name: str) -> None:
    _, robots_txt, path, allowed = next(c for c in CASES if c[0] == name)
    assert Protego.parse(robots_txt).can_fetch(SITE + path, "ccnbot") is not allowed


def test_product_token_is_the_leading_name_lowercased() -> None:
    assert product_token(UA) == "ccnbot"
    assert product_token("  Grant_Crawler-X/2 ") == "grant_crawler-x"
    for bad in ("", "/1.0", "*", "  "):
        with pytest.raises(ValueError):
            product_token(bad)


def test_a_huge_file_is_read_to_the_limit_and_no_further() -> None:
    head = b"User-agent: *\nDisallow: /early\n"
    filler = b"# " + b"x" * 1000 + b"\n"
    body = head + filler * (MAX_ROBOTS_BYTES // len(filler) + 1) + b"Disallow: /late\n" + filler * 10_000
    assert len(body) > 10 * 1024 * 1024
    started = time.perf_counter()
    rules = RobotsRules.parse(body, UA)
    elapsed = time.perf_counter() - started
    assert rules.decide(SITE + "/early").allowed is False
    assert rules.decide(SITE + "/late").allowed is True  # past 512 KiB: not read
    assert elapsed < 1.0


def test_a_rule_cut_by_the_limit_is_dropped_not_shortened() -> None:
    head = b"User-agent: *\n"
    padding = b"#" * (MAX_ROBOTS_BYTES - len(head) - 8) + b"\n"
    body = head + padding + b"Disallow: /abcdef\n"
    # the last line straddles the limit: "Disallow: /" must not survive as a disallow-all
    assert robots_decision(body, UA, SITE + "/other").allowed is True


def test_at_least_500_kib_are_read() -> None:
    filler = b"# " + b"y" * 200 + b"\n"
    body = b"User-agent: *\n" + filler * (500 * 1024 // len(filler)) + b"Disallow: /deep\n"
    assert len(body) <= MAX_ROBOTS_BYTES
    assert robots_decision(body, UA, SITE + "/deep").allowed is False


def test_long_lines_are_bounded_and_can_only_disallow_more() -> None:
    long_disallow = "Disallow: /a" + "b" * (2 * MAX_LINE_CHARS) + "\n"
    cut = robots_decision("User-agent: *\n" + long_disallow, UA, SITE + "/a" + "b" * (2 * MAX_LINE_CHARS))
    assert cut.allowed is False  # cut to a shorter prefix: what it disallowed is still disallowed
    long_allow = "Allow: /private/" + "c" * (2 * MAX_LINE_CHARS) + "\n"
    dropped = robots_decision("User-agent: *\nDisallow: /private/\n" + long_allow, UA, SITE + "/private/c")
    assert dropped.allowed is False  # an over-long allow is dropped, never shortened into a wider allow


def test_pathological_wildcards_cost_bounded_time() -> None:
    rule = "Disallow: /" + "*a" * 4000 + "$\n"
    body = "User-agent: *\n" + rule * 20
    url = SITE + "/" + "a" * 8000 + "b"
    started = time.perf_counter()
    decision = robots_decision(body, UA, url)
    assert decision.allowed is True
    assert time.perf_counter() - started < 2.0


def test_crawl_delay_and_request_rate_are_one_minimum_interval() -> None:
    def interval(robots_txt: str) -> float | None:
        return robots_decision(robots_txt, UA, SITE + "/").min_interval_s

    assert interval("User-agent: *\nCrawl-delay: 2.5\n") == 2.5
    assert interval("User-agent: *\nRequest-rate: 1/10s\n") == 10.0
    assert interval("User-agent: *\nRequest-rate: 6/1m\nCrawl-delay: 3\n") == 10.0
    assert interval("User-agent: *\nCrawl-delay: 30\n\nUser-agent: CCNBot\nCrawl-delay: 1\n") == 1.0
    assert interval("User-agent: *\nDisallow: /x\n") is None
    assert interval("User-agent: *\nCrawl-delay: soon\n") is None
    assert interval("User-agent: *\nCrawl-delay: -4\n") is None
    assert interval("User-agent: *\nCrawl-delay: nan\n") is None
    assert interval("User-agent: *\nCrawl-delay: 1e300\n") == MAX_INTERVAL_S


def test_allow_all_and_disallow_all() -> None:
    assert RobotsRules.allow_all(UA).decide(SITE + "/x") == RobotsDecision(allowed=True)
    assert RobotsRules.disallow_all(UA).decide(SITE + "/x") == RobotsDecision(allowed=False)


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DAY = NOW + timedelta(days=1)
TEN_MINUTES = NOW + timedelta(minutes=10)

STATUS_CASES: list[tuple[str, int | None, str | None, str, datetime]] = [
    ("200 is parsed, for a day", 200, None, "parse", DAY),
    ("204 is parsed (an empty file allows all)", 204, None, "parse", DAY),
    ("too many redirects: unavailable", 301, None, "allow_all", DAY),
    ("404 allows all", 404, None, "allow_all", DAY),
    ("401 allows all", 401, None, "allow_all", DAY),
    ("403 allows all", 403, None, "allow_all", DAY),
    ("410 allows all", 410, None, "allow_all", DAY),
    ("500 disallows all", 500, None, "disallow_all", TEN_MINUTES),
    ("502 disallows all", 502, None, "disallow_all", TEN_MINUTES),
    ("unreachable disallows all", None, None, "disallow_all", TEN_MINUTES),
    ("429 disallows all until Retry-After", 429, "120", "disallow_all", NOW + timedelta(seconds=120)),
    ("429 without Retry-After", 429, None, "disallow_all", TEN_MINUTES),
    ("503 with Retry-After seconds", 503, "30", "disallow_all", NOW + timedelta(seconds=30)),
    (
        "503 with Retry-After as a date",
        503,
        "Sun, 06 Dec 2026 13:00:00 GMT",
        "disallow_all",
        NOW + timedelta(hours=1),
    ),
    (
        "Retry-After in the past waits a second",
        503,
        "Sun, 06 Dec 2026 11:00:00 GMT",
        "disallow_all",
        NOW + timedelta(seconds=1),
    ),
    ("Retry-After beyond a day waits a day", 503, "99999999", "disallow_all", DAY),
    ("Retry-After too long to be a number", 503, "9" * 400, "disallow_all", DAY),
    ("Retry-After nonsense falls back", 503, "tomorrow-ish", "disallow_all", TEN_MINUTES),
    ("Retry-After negative falls back", 503, "-5", "disallow_all", TEN_MINUTES),
    ("a 1xx final status fails closed", 100, None, "disallow_all", TEN_MINUTES),
    ("an impossible status fails closed", 999, None, "disallow_all", TEN_MINUTES),
]


@pytest.mark.parametrize(
    ("status", "retry_after", "kind", "until"), [c[1:] for c in STATUS_CASES], ids=[c[0] for c in STATUS_CASES]
)
def test_status_rules(status: int | None, retry_after: str | None, kind: str, until: datetime) -> None:
    outcome = robots_fetch_outcome(status, NOW, retry_after=retry_after)
    assert isinstance(outcome, RobotsFetchOutcome)
    assert (outcome.kind, outcome.valid_until) == (kind, until)
    assert outcome.reason
