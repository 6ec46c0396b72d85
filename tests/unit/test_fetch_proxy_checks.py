"""The fetch proxy's pure parts: the checks in their order, request headers, body decoding
bounds, content types, the development allowance and the robots.txt cache's status rules."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from ccn_core.egress import DEFAULT_POLICY, EgressPolicy, Target, check_url
from ccn_core.robots import RobotsRules
from ccn_core.settings import SettingsError
from ccn_fetch_proxy.body_decoding import BodyDecoder, BodyTooLarge, DecompressionBomb, UnsupportedEncoding
from ccn_fetch_proxy.content_types import body_type
from ccn_fetch_proxy.dev_allowance import parse_loopback_allowance
from ccn_fetch_proxy.domain_gate import retry_after_seconds
from ccn_fetch_proxy.fetch_checks import (
    UNKNOWN_DOMAIN_ID,
    allow_list_refusal,
    as_redirect,
    domain_record_id,
    fetch_budget_refusal,
    job_max_fetches,
    job_refusal,
    record_domain_id,
    robots_refusal,
    url_check,
)
from ccn_fetch_proxy.request_headers import USER_AGENT, request_headers
from ccn_fetch_proxy.robots_cache import CachedRobots, FetchCause, RobotsCache, RobotsFetch
from tests.support.fetch_fixtures import TEST_JOB_TYPES, allowed, blocked, job_view

SITE = "https://grants.example.org/"
CAUSE = FetchCause(fetch_id="fetch-1", job_id="job-1", node_id="node-1", correlation_id="test")


def target(url: str) -> Target:
    checked = check_url(url)
    assert isinstance(checked, Target)
    return checked


# ---- the job ----


def test_a_url_of_the_nodes_claimed_job_passes() -> None:
    view = job_view("j1", holder="n1", prefix=SITE)
    assert job_refusal(view, "n1", SITE + "funds/1", TEST_JOB_TYPES) is None
    assert job_max_fetches(view, TEST_JOB_TYPES) == 50


@pytest.mark.parametrize(
    ("view_args", "node", "url", "reason"),
    [
        ({"holder": "n2"}, "n1", SITE, "not_job_holder"),
        ({"holder": None, "status": "queued"}, "n1", SITE, "not_job_holder"),
        ({"holder": "n1", "status": "completed"}, "n1", SITE, "not_job_holder"),
        ({"holder": "n1"}, "n1", "https://elsewhere.example.com/", "url_not_in_job"),
        ({"holder": "n1"}, "n1", "https://grants.example.org.evil.example/", "url_not_in_job"),
        ({"holder": "n1", "job_type": "test_no_fetch"}, "n1", SITE, "job_does_not_fetch"),
        ({"holder": "n1", "job_type": "extract_text"}, "n1", SITE, "job_does_not_fetch"),
    ],
)
def test_a_url_outside_the_nodes_job_is_refused_at_stage_job(
    view_args: dict[str, str | None], node: str, url: str, reason: str
) -> None:
    view = job_view("j1", prefix=SITE, **view_args)  # type: ignore[arg-type]
    refusal = job_refusal(view, node, url, TEST_JOB_TYPES)
    assert refusal is not None and (refusal.stage, refusal.reason) == ("job", reason)


def test_a_payload_that_does_not_decode_is_refused_not_raised() -> None:
    view = job_view("j1", holder="n1", prefix=SITE)
    broken = view.__class__(**{**{f: getattr(view, f) for f in view.__struct_fields__}, "payload": {"prefix": 3}})
    refusal = job_refusal(broken, "n1", SITE, TEST_JOB_TYPES)
    assert refusal is not None and refusal.reason == "payload_unreadable"


def test_the_fetch_budget_refuses_past_the_cap() -> None:
    assert fetch_budget_refusal(0, 2) is None
    assert fetch_budget_refusal(1, 2) is None
    refusal = fetch_budget_refusal(2, 2)
    assert refusal is not None and (refusal.stage, refusal.reason) == ("job", "too_many_fetches")


# ---- the scheme, the allow-list ----


@pytest.mark.parametrize(
    ("url", "stage", "reason"),
    [
        ("ftp://grants.example.org/", "scheme", "scheme_not_allowed"),
        ("file:///etc/passwd", "scheme", "scheme_not_allowed"),
        ("gopher://grants.example.org:70/", "scheme", "scheme_not_allowed"),
        ("https://user:pw@grants.example.org/", "scheme", "userinfo"),
        ("https:grants.example.org", "scheme", "malformed_url"),
        ("http://127.0.0.1/", "egress", "non_global_address"),
        ("http://2130706433/", "egress", "non_global_address"),
        ("http://grants.example.org:22/", "egress", "port_not_allowed"),
        ("http://grants.localhost:8421/", "egress", "port_not_allowed"),
        ("http://intranet/", "egress", "special_use_name"),
    ],
)
def test_url_check_refuses_by_scheme_and_form(url: str, stage: str, reason: str) -> None:
    refusal = url_check(url, DEFAULT_POLICY)
    assert not isinstance(refusal, Target)
    assert (refusal.stage, refusal.reason) == (stage, reason)


def test_the_allow_list_refuses_unknown_blocked_and_paths_outside() -> None:
    page = target("https://grants.example.org/funds/1?x=1")
    assert allow_list_refusal(page, allowed("grants.example.org")) is None
    assert allow_list_refusal(page, allowed("grants.example.org", allowed_paths=("/funds/",))) is None
    assert allow_list_refusal(page, allowed("grants.example.org", allowed_patterns=("/funds/*?x=1$",))) is None
    cases = {
        "domain_not_allowed": None,
        "domain_blocked": blocked("grants.example.org"),
        "path_not_allowed": allowed("grants.example.org", allowed_paths=("/news/",)),
    }
    for reason, policy in cases.items():
        refusal = allow_list_refusal(page, policy)
        assert refusal is not None and (refusal.stage, refusal.reason) == ("allow_list", reason)


def test_a_redirect_hops_refusal_is_the_redirects() -> None:
    refusal = url_check("http://169.254.169.254/latest/", DEFAULT_POLICY)
    assert not isinstance(refusal, Target)
    hop = as_redirect(refusal, "http://169.254.169.254/latest/")
    assert (hop.stage, hop.reason) == ("redirect", "non_global_address")
    assert "169.254.169.254" in hop.detail and "egress" in hop.detail


def test_records_are_filed_under_the_policy_or_the_host_or_unknown() -> None:
    policy = allowed("example.org")
    assert record_domain_id("https://www.example.org/", policy, DEFAULT_POLICY) == "example_org"
    assert record_domain_id("https://grants.example.org/", None, DEFAULT_POLICY) == "grants_example_org"
    assert record_domain_id("ftp://grants.example.org/", None, DEFAULT_POLICY) == UNKNOWN_DOMAIN_ID
    assert record_domain_id("http://[::1]/", None, DEFAULT_POLICY) == UNKNOWN_DOMAIN_ID
    too_long = "https://" + "a" * 60 + "." + "b" * 60 + "." + "c" * 60 + ".org/"
    assert record_domain_id(too_long, None, DEFAULT_POLICY) == UNKNOWN_DOMAIN_ID


# ---- request headers ----


def test_request_headers_are_ours_alone_and_validators_are_checked() -> None:
    headers = request_headers(if_none_match='"v1"', if_modified_since="Mon, 02 Nov 2026 09:00:00 GMT")
    assert headers["User-Agent"] == USER_AGENT and USER_AGENT.startswith("CCNBot/")
    assert headers["If-None-Match"] == '"v1"'
    assert set(headers) == {"User-Agent", "Accept", "Accept-Encoding"} | {
        "If-None-Match",
        "If-Modified-Since",
    }
    smuggled = request_headers(if_none_match='"v1"\r\nCookie: a=b', if_modified_since="x" * 300)
    assert "If-None-Match" not in smuggled and "If-Modified-Since" not in smuggled
    assert not any("\r" in value or "\n" in value for value in smuggled.values())


# ---- body decoding ----


def _feed_all(decoder: BodyDecoder, data: bytes, chunk: int = 4096) -> bytes:
    out = b"".join(decoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk))
    return out + decoder.finish()


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "deflate-raw", "identity", None])
def test_bodies_decode_in_every_accepted_coding(coding: str | None) -> None:
    page = b"<html>" + b"grant funding " * 5000 + b"</html>"
    encoded = {
        "gzip": gzip.compress(page),
        "x-gzip": gzip.compress(page),
        "deflate": zlib.compress(page),
        "deflate-raw": zlib.compress(page)[2:-4],
    }.get(coding or "", page)
    decoder = BodyDecoder("deflate" if coding == "deflate-raw" else coding, max_bytes=1 << 20)
    assert _feed_all(decoder, encoded) == page


def test_a_gzip_bomb_is_cut_at_the_output_bound_holding_no_more() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20))
    decoder = BodyDecoder("gzip", max_bytes=1 << 20, max_ratio=10_000)
    with pytest.raises(DecompressionBomb):
        _feed_all(decoder, bomb, chunk=65536)
    assert decoder.produced <= (1 << 20) + 1


def test_a_bomb_under_the_size_bound_is_cut_by_its_ratio() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20))
    decoder = BodyDecoder("gzip", max_bytes=64 << 20, max_ratio=100)
    with pytest.raises(DecompressionBomb, match="ratio"):
        _feed_all(decoder, bomb)
    assert decoder.produced < 4 << 20


def test_an_identity_body_over_the_bound_is_too_large_and_unknown_codings_are_refused() -> None:
    with pytest.raises(BodyTooLarge):
        _feed_all(BodyDecoder(None, max_bytes=10), b"x" * 11)
    assert _feed_all(BodyDecoder(None, max_bytes=10), b"x" * 10) == b"x" * 10
    for coding in ("br", "compress", "gzip, gzip", "zstd"):
        with pytest.raises(UnsupportedEncoding):
            BodyDecoder(coding, max_bytes=10)


def test_a_corrupt_compressed_body_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="corrupt"):
        _feed_all(BodyDecoder("gzip", max_bytes=1 << 20), b"\x1f\x8b\x08\x00garbage-garbage")


# ---- content types ----


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/html; charset=UTF-8", ("text/html", "utf-8")),
        ("TEXT/HTML", ("text/html", None)),
        ("application/xhtml+xml", ("text/html", None)),
        ("application/pdf", ("application/pdf", None)),
        ('text/plain;charset="iso-8859-1"', ("text/plain", "iso-8859-1")),
        ("application/octet-stream", None),
        ("image/svg+xml", None),
        ("text/htmlx", None),
        ("", None),
        (None, None),
    ],
)
def test_only_the_media_types_jobs_read_are_kept(header: str | None, expected: tuple[str, str | None] | None) -> None:
    kind = body_type(header)
    assert (None if kind is None else (kind.media_type, kind.charset)) == expected


# ---- the development allowance ----


def test_the_dev_allowance_is_off_by_default_and_read_strictly() -> None:
    assert parse_loopback_allowance("") == frozenset()
    assert parse_loopback_allowance("grants.localhost:8421, Foundation.Localhost:8421") == {
        ("grants.localhost", 8421),
        ("foundation.localhost", 8421),
    }
    for bad in ("grants.localhost", "grants.localhost:0", "grants.localhost:http", ":8421", "a b:1"):
        with pytest.raises(SettingsError):
            parse_loopback_allowance(bad)
    assert EgressPolicy().loopback_allowance == frozenset()


# ---- the robots.txt cache ----


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_robots_5xx_fails_closed_until_retry_after_then_a_success_allows() -> None:
    clock = Clock()
    answers = [RobotsFetch(503, retry_after="30"), RobotsFetch(200, b"User-agent: *\nDisallow: /private/\n")]
    cache = RobotsCache(lambda _target, _cause: _next(answers), USER_AGENT, clock=clock)
    page = target("https://grants.example.org/funds/1")
    first = await cache.robots_for(page, CAUSE)
    assert first.kind == "disallow_all" and not first.rules.decide(page.url).allowed
    clock.now += timedelta(seconds=10)
    assert (await cache.robots_for(page, CAUSE)).kind == "disallow_all" and cache.fetches == 1
    clock.now += timedelta(seconds=25)
    second = await cache.robots_for(page, CAUSE)
    assert second.kind == "parse" and second.rules.decide(page.url).allowed and cache.fetches == 2
    assert not second.rules.decide("https://grants.example.org/private/x").allowed


async def test_robots_4xx_allows_all_and_is_kept_a_day() -> None:
    clock = Clock()
    answers = [RobotsFetch(404), RobotsFetch(404)]
    cache = RobotsCache(lambda _target, _cause: _next(answers), USER_AGENT, clock=clock)
    page = target("https://grants.example.org/anything")
    assert (await cache.robots_for(page, CAUSE)).rules.decide(page.url).allowed
    clock.now += timedelta(hours=23)
    await cache.robots_for(page, CAUSE)
    assert cache.fetches == 1
    clock.now += timedelta(hours=2)
    await cache.robots_for(page, CAUSE)
    assert cache.fetches == 2


async def test_robots_unreachable_disallows_and_crawl_delay_is_exposed() -> None:
    answers = [RobotsFetch(None), RobotsFetch(200, b"User-agent: ccnbot\nCrawl-delay: 2\n")]
    clock = Clock()
    cache = RobotsCache(lambda _target, _cause: _next(answers), USER_AGENT, clock=clock, error_retry_s=5)
    page = target("https://grants.example.org/")
    assert not (await cache.robots_for(page, CAUSE)).rules.decide(page.url).allowed
    clock.now += timedelta(seconds=6)
    assert (await cache.robots_for(page, CAUSE)).rules.decide(page.url).min_interval_s == 2.0


async def _next(answers: list[RobotsFetch]) -> RobotsFetch:
    return answers.pop(0)


def test_a_disallow_cancels_but_an_unreadable_robots_txt_only_waits() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    page = target("https://grants.example.org/private/x")
    parsed = CachedRobots(
        rules=RobotsRules.parse(b"User-agent: *\nDisallow: /private/\n", USER_AGENT),
        kind="parse",
        reason="robots.txt fetched (200)",
        valid_until=now + timedelta(days=1),
    )
    disallowed = robots_refusal(parsed, page, now)
    assert disallowed is not None and (disallowed.stage, disallowed.reason) == ("robots", "robots_disallowed")
    assert robots_refusal(parsed, target("https://grants.example.org/funds/"), now) is None
    closed = CachedRobots(
        rules=RobotsRules.disallow_all(USER_AGENT),
        kind="disallow_all",
        reason="robots.txt answered 503",
        valid_until=now + timedelta(seconds=30),
    )
    waiting = robots_refusal(closed, target("https://grants.example.org/funds/"), now)
    assert waiting is not None and (waiting.reason, waiting.retry_after) == ("robots_unavailable", 30.0)


def test_retry_after_is_read_as_seconds_or_a_date_and_bounded() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Tue, 01 Dec 2026 12:05:00 GMT", now) == 300.0
    assert retry_after_seconds("Tue, 01 Dec 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("99999999999", now) == 86_400.0
    for unreadable in (None, "", "soon", "-5", "1e9"):
        assert retry_after_seconds(unreadable, now) is None


def test_gate_events_are_filed_under_their_domains_policy_id() -> None:
    assert domain_record_id("grants.example.org") == "grants_example_org"
    assert domain_record_id("my_site.example.org") == "myUsite_example_org"
    for unfit in ("", "a.b c", "x" * 200 + ".org", "*.example.org"):
        assert domain_record_id(unfit) == UNKNOWN_DOMAIN_ID


def test_what_was_decoded_within_the_bound_travels_with_the_cut() -> None:
    page = b"User-agent: *\nDisallow: /private/\n" * 40_000
    decoder = BodyDecoder("gzip", max_bytes=512 * 1024, max_ratio=10_000)
    kept = bytearray()
    with pytest.raises(DecompressionBomb) as cut:
        _feed_into(kept, decoder, gzip.compress(page))
    assert bytes(kept + cut.value.partial) == page[: 512 * 1024]


def _feed_into(kept: bytearray, decoder: BodyDecoder, data: bytes) -> None:
    for start in range(0, len(data), 8192):
        kept += decoder.feed(data[start : start + 8192])
