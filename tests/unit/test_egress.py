"""The egress decision as tables: SSRF attempts gathered from public payload lists (the OWASP SSRF
prevention cheat sheet, PayloadsAllTheThings, bug-bounty cheat sheets) and the IANA
special-purpose registries, every one refused with the reason named; ordinary public URLs allowed
with the addresses to connect to. The development allowance is never on here except in the tests
that are about it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from ccn_core.canonical_url import canonical_url
from ccn_core.egress import (
    MAX_ANSWERS,
    Allowed,
    EgressPolicy,
    Refused,
    check_url,
    decide_egress,
)
from ccn_core.errors import BadInput

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"

ZONE: dict[str, list[str]] = {
    "example.com": [PUBLIC_V4, PUBLIC_V6],
    "www.example.org": [PUBLIC_V4],
    "grants.example.net": ["8.8.4.4", "2001:4860:4860::8844"],
    "xn--bcher-kva.example.com": [PUBLIC_V4],
    "nat64.example.com": ["64:ff9b::808:808"],
    "sixtofour.example.com": ["2002:808:808::1"],
    "mapped.example.com": ["::ffff:8.8.8.8", "8.8.8.8"],
    "under_score.example.com": [PUBLIC_V4],
    # names an attacker controls, pointing inside
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "localtest.me": ["127.0.0.1", "::1"],
    "spoofed.burpcollaborator.example": ["169.254.169.254"],
    "mixed.example.com": [PUBLIC_V4, "10.0.0.7"],
    "mixed6.example.com": [PUBLIC_V6, "fd00::1"],
    "cgnat.example.com": ["100.64.0.1"],
    "alibaba.example.com": ["100.100.100.200"],
    "zero.example.com": ["0.0.0.0"],
    "unspecified6.example.com": ["::"],
    "mapped-meta.example.com": ["::ffff:169.254.169.254"],
    "nat64-private.example.com": ["64:ff9b::c0a8:101"],
    "ula.example.com": ["fc00::5"],
    "aws6.example.com": ["fd00:ec2::254"],
    "linklocal6.example.com": ["fe80::1"],
    "multicast.example.com": ["224.0.0.251"],
    "multicast6.example.com": ["ff02::1"],
    "broadcast.example.com": ["255.255.255.255"],
    "reserved.example.com": ["240.0.0.1"],
    "doc.example.com": ["198.51.100.7"],
    "bench.example.com": ["198.18.0.1"],
    "teredo.example.com": ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
    "siit.example.com": ["::ffff:0:7f00:1"],
    "garbage.example.com": ["not-an-address"],
    "scoped.example.com": ["fe80::1%eth0"],
    "nothing.example.com": [],
}


def fullwidth(text: str) -> str:
    """The same characters in their full-width forms (U+FF01..U+FF5E), except the ASCII dot."""
    return "".join(c if c == "." else chr(ord(c) + 0xFEE0) for c in text)


class NoSuchName(Exception):
    pass


def resolve(host: str) -> list[str]:
    if host not in ZONE:
        raise NoSuchName(f"NXDOMAIN {host}")
    return ZONE[host]


def never_resolve(host: str) -> list[str]:
    raise AssertionError(f"an IP literal or refused URL must not be resolved ({host})")


ALLOWED: list[tuple[str, str, tuple[str, ...]]] = [
    ("http://example.com/", "http://example.com/", (PUBLIC_V4, PUBLIC_V6)),
    ("https://www.example.org/funders?page=2#top", "https://www.example.org/funders?page=2", (PUBLIC_V4,)),
    ("HTTPS://WWW.EXAMPLE.ORG", "https://www.example.org/", (PUBLIC_V4,)),
    ("https://www.example.org:443/a", "https://www.example.org/a", (PUBLIC_V4,)),
    ("http://www.example.org:80/a", "http://www.example.org/a", (PUBLIC_V4,)),
    ("https://www.example.org./trailing-dot", "https://www.example.org/trailing-dot", (PUBLIC_V4,)),
    ("https://grants.example.net/", "https://grants.example.net/", ("8.8.4.4", "2001:4860:4860::8844")),
    ("https://bücher.example.com/über", "https://xn--bcher-kva.example.com/%C3%BCber", (PUBLIC_V4,)),
    ("https://xn--bcher-kva.example.com/", "https://xn--bcher-kva.example.com/", (PUBLIC_V4,)),
    ("https://nat64.example.com/", "https://nat64.example.com/", ("64:ff9b::808:808",)),
    ("https://sixtofour.example.com/", "https://sixtofour.example.com/", ("2002:808:808::1",)),
    ("https://mapped.example.com/", "https://mapped.example.com/", ("8.8.8.8",)),
    ("https://under_score.example.com/x?y=1&y=2", "https://under_score.example.com/x?y=1&y=2", (PUBLIC_V4,)),
    ("https://www.example.org/a%20b?q=%2F", "https://www.example.org/a%20b?q=%2F", (PUBLIC_V4,)),
    ("https://www.example.org/@user", "https://www.example.org/@user", (PUBLIC_V4,)),
    # the fragment ends the authority, as in every browser: the request goes to example.com
    ("http://example.com#@127.0.0.1/", "http://example.com/", (PUBLIC_V4, PUBLIC_V6)),
    ("http://example.com?@127.0.0.1/", "http://example.com/?@127.0.0.1/", (PUBLIC_V4, PUBLIC_V6)),
]


@pytest.mark.parametrize(("url", "target_url", "addresses"), ALLOWED, ids=[c[0] for c in ALLOWED])
def test_ordinary_public_urls_are_allowed(url: str, target_url: str, addresses: tuple[str, ...]) -> None:
    decision = decide_egress(url, resolve)
    assert isinstance(decision, Allowed), decision
    assert decision.target.url == target_url
    assert decision.addresses == addresses


REFUSED: list[tuple[str, str, str]] = [
    # non-HTTP schemes
    ("file:///etc/passwd", "scheme_not_allowed", "'file'"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme_not_allowed", "'gopher'"),
    ("dict://127.0.0.1:11211/stat", "scheme_not_allowed", "'dict'"),
    ("ftp://example.com/", "scheme_not_allowed", "'ftp'"),
    ("ldap://example.com/", "scheme_not_allowed", "'ldap'"),
    ("jar:http://example.com/x.jar!/", "scheme_not_allowed", "'jar'"),
    ("javascript:alert(1)", "scheme_not_allowed", "'javascript'"),
    ("data:text/html,hi", "scheme_not_allowed", "'data'"),
    ("ws://example.com/", "scheme_not_allowed", "'ws'"),
    ("//example.com/", "malformed_url", "no scheme"),
    ("example.com", "malformed_url", "no scheme"),
    ("", "malformed_url", "empty"),
    # parser confusion
    ("http:example.com/", "malformed_url", "'//'"),
    ("http:/example.com/", "malformed_url", "'//'"),
    ("http:\\\\127.0.0.1\\", "malformed_url", "'\\\\'"),
    ("http://127.0.0.1\\@example.com/", "malformed_url", "'\\\\'"),
    ("http://example.com\t.127.0.0.1.nip.io/", "malformed_url", "'\\t'"),
    ("http://exam\nple.com/", "malformed_url", "'\\n'"),
    (" http://example.com/", "malformed_url", "' '"),
    ("http://example.com /", "malformed_url", "' '"),
    ("http://example.com\x00.evil/", "malformed_url", "'\\x00'"),
    ("http://" + "a" * 9000 + ".com/", "malformed_url", "longer than"),
    # userinfo tricks
    ("http://example.com@127.0.0.1/", "userinfo", "userinfo"),
    ("http://expected:pass@evil.example/", "userinfo", "userinfo"),
    ("http://example.com:80@169.254.169.254/", "userinfo", "userinfo"),
    ("http://127.0.0.1%23@example.com/", "userinfo", "userinfo"),
    ("http://@example.com/", "userinfo", "userinfo"),
    ("http://a@b@127.0.0.1/", "userinfo", "userinfo"),
    ("http://localhost#@example.com/admin", "special_use_name", "single-label"),
    # ports
    ("http://example.com:22/", "port_not_allowed", "22"),
    ("http://example.com:6379/", "port_not_allowed", "6379"),
    ("http://example.com:0/", "malformed_url", "port"),
    ("http://example.com:65536/", "malformed_url", "port"),
    ("http://example.com:+80/", "malformed_url", "port"),
    ("http://example.com:80:80/", "malformed_url", "port"),
    ("http://example.com:/", "malformed_url", "port"),
    ("http://example.com:8o/", "malformed_url", "port"),
    # loopback, every numeric spelling
    ("http://127.0.0.1/", "non_global_address", "loopback 127.0.0.1"),
    ("http://127.1/", "non_global_address", "loopback 127.0.0.1"),
    ("http://127.0.1/", "non_global_address", "loopback 127.0.0.1"),
    ("http://127.255.255.254/", "non_global_address", "loopback"),
    ("http://2130706433/", "non_global_address", "loopback 127.0.0.1"),
    ("http://0x7f000001/", "non_global_address", "loopback 127.0.0.1"),
    ("http://0X7F000001/", "non_global_address", "loopback 127.0.0.1"),
    ("http://017700000001/", "non_global_address", "loopback 127.0.0.1"),
    ("http://0177.1/", "non_global_address", "loopback 127.0.0.1"),
    ("http://0177.0.0.01/", "non_global_address", "loopback 127.0.0.1"),
    ("http://0x7f.1/", "non_global_address", "loopback 127.0.0.1"),
    ("http://0x7f.0x0.0.01/", "non_global_address", "loopback 127.0.0.1"),
    ("http://0x7f.0.0.0x1/", "non_global_address", "loopback 127.0.0.1"),
    (
        "http://0x000000000007f.0x0000000000000000000000.0x0000.0x00000000000000000000001/",
        "non_global_address",
        "loopback 127.0.0.1",
    ),
    ("http://0000000177.0.0.1/", "non_global_address", "loopback 127.0.0.1"),
    ("http://127.0.0.1./", "non_global_address", "loopback 127.0.0.1"),
    ("http://127.000.000.001/", "non_global_address", "loopback 127.0.0.1"),
    ("http://127.0.0.1:80/", "non_global_address", "loopback"),
    ("http://127.0.0.1:8080/", "port_not_allowed", "8080"),
    ("http://" + fullwidth("127") + "." + fullwidth("0.0.1") + "/", "non_global_address", "loopback 127.0.0.1"),
    ("http://127。0。0。1/", "non_global_address", "loopback 127.0.0.1"),
    ("http://①②⑦.⓪.⓪.①/", "non_global_address", "loopback 127.0.0.1"),
    ("http://" + fullwidth("0x7f.1") + "/", "non_global_address", "loopback 127.0.0.1"),
    # unspecified
    ("http://0/", "non_global_address", "unspecified"),
    ("http://00000/", "non_global_address", "unspecified"),
    ("http://0.0.0.0/", "non_global_address", "unspecified"),
    ("http://0x0/", "non_global_address", "unspecified"),
    ("http://0x/", "non_global_address", "unspecified"),
    ("http://[::]/", "non_global_address", "unspecified"),
    ("http://[0:0:0:0:0:0:0:0]/", "non_global_address", "unspecified"),
    # IPv6 loopback and its embeddings
    ("http://[::1]/", "non_global_address", "loopback ::1"),
    ("http://[0:0:0:0:0:0:0:1]/", "non_global_address", "loopback ::1"),
    ("http://[0000::0001]:80/", "non_global_address", "loopback ::1"),
    ("http://[::ffff:127.0.0.1]/", "non_global_address", "IPv4-mapped"),
    ("http://[::ffff:7f00:1]/", "non_global_address", "IPv4-mapped"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "non_global_address", "IPv4-mapped"),
    ("http://[::127.0.0.1]/", "non_global_address", "IPv4-compatible"),
    ("http://[::7f00:1]/", "non_global_address", "IPv4-compatible"),
    ("http://[::8.8.8.8]/", "non_global_address", "IPv4-compatible"),
    ("http://[::ffff:0:127.0.0.1]/", "non_global_address", "not global unicast"),
    ("http://[64:ff9b::127.0.0.1]/", "non_global_address", "NAT64"),
    ("http://[64:ff9b::7f00:1]/", "non_global_address", "NAT64"),
    ("http://[64:ff9b:1::a00:1]/", "non_global_address", "local-use NAT64"),
    ("http://[2002:7f00:1::]/", "non_global_address", "6to4"),
    ("http://[2002:a9fe:a9fe::1]/", "non_global_address", "6to4"),
    ("http://[2002:c0a8:101::1]/", "non_global_address", "6to4"),
    ("http://[2001:0:7f00:1::1]/", "non_global_address", "Teredo (server)"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "non_global_address", "Teredo (client)"),
    ("http://[::1%25eth0]/", "bad_host", "not an address"),
    ("http://[fe80::1%25en0]/", "bad_host", "not an address"),
    ("http://[::1/", "bad_host", "closing bracket"),
    ("http://[::1]x/", "bad_host", "after the IPv6 host"),
    ("http://[v1.fe80::a+en1]/", "bad_host", "not an address"),
    ("http://[127.0.0.1]/", "bad_host", "not an address"),
    ("http://::1/", "malformed_url", "port"),
    # cloud metadata
    ("http://169.254.169.254/latest/meta-data/", "non_global_address", "cloud metadata"),
    ("http://169.254.169.254.xip.io.localhost/", "special_use_name", ".localhost"),
    ("http://2852039166/", "non_global_address", "cloud metadata"),
    ("http://0xa9fea9fe/", "non_global_address", "cloud metadata"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "non_global_address", "cloud metadata"),
    ("http://0251.0376.0251.0376/", "non_global_address", "cloud metadata"),
    ("http://0251.00376.000251.0000376/", "non_global_address", "cloud metadata"),
    ("http://169.254.43518/", "non_global_address", "cloud metadata"),
    ("http://169.16689662/", "non_global_address", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/", "non_global_address", "cloud metadata"),
    ("http://[::ffff:a9fe:a9fe]/", "non_global_address", "cloud metadata"),
    ("http://[64:ff9b::169.254.169.254]/", "non_global_address", "cloud metadata"),
    ("http://169.254.170.2/v2/credentials", "non_global_address", "ECS"),
    ("http://100.100.100.200/latest/meta-data/", "non_global_address", "Alibaba"),
    ("http://192.0.0.192/opc/v1/instance/", "non_global_address", "Oracle"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "non_global_address", "AWS IPv6"),
    ("http://metadata.google.internal/computeMetadata/v1/", "special_use_name", ".internal"),
    ("http://metadata/computeMetadata/v1/", "special_use_name", "single-label"),
    ("http://instance-data/latest/", "special_use_name", "single-label"),
    # private, link-local, CGNAT, multicast, reserved, broadcast, documentation
    ("http://10.0.0.1/", "non_global_address", "private 10.0.0.1"),
    ("http://012.0.0.1/", "non_global_address", "private 10.0.0.1"),
    ("http://167772161/", "non_global_address", "private 10.0.0.1"),
    ("http://172.16.0.1/", "non_global_address", "private"),
    ("http://172.31.255.255/", "non_global_address", "private"),
    ("http://192.168.0.1/", "non_global_address", "private"),
    ("http://0xc0.0xa8.1/", "non_global_address", "private 192.168.0.1"),
    ("http://3232235777/", "non_global_address", "private 192.168.1.1"),
    ("http://169.254.1.1/", "non_global_address", "link-local"),
    ("http://100.64.0.1/", "non_global_address", "carrier-grade NAT"),
    ("http://100.127.255.254/", "non_global_address", "carrier-grade NAT"),
    ("http://224.0.0.1/", "non_global_address", "multicast"),
    ("http://239.255.255.250/", "non_global_address", "multicast"),
    ("http://240.0.0.1/", "non_global_address", "reserved"),
    ("http://255.255.255.255/", "non_global_address", "broadcast"),
    ("http://4294967295/", "non_global_address", "broadcast"),
    ("http://192.0.2.1/", "non_global_address", "TEST-NET-1"),
    ("http://198.51.100.1/", "non_global_address", "TEST-NET-2"),
    ("http://203.0.113.1/", "non_global_address", "TEST-NET-3"),
    ("http://198.18.0.1/", "non_global_address", "benchmarking"),
    ("http://192.0.0.1/", "non_global_address", "IETF protocol"),
    ("http://192.88.99.1/", "non_global_address", "6to4 relay"),
    ("http://[fc00::1]/", "non_global_address", "unique-local"),
    ("http://[fd12:3456::1]/", "non_global_address", "unique-local"),
    ("http://[fe80::1]/", "non_global_address", "link-local"),
    ("http://[fec0::1]/", "non_global_address", "site-local"),
    ("http://[ff02::1]/", "non_global_address", "multicast"),
    ("http://[2001:db8::1]/", "non_global_address", "documentation"),
    ("http://[3fff::1]/", "non_global_address", "documentation"),
    ("http://[100::1]/", "non_global_address", "discard-only"),
    ("http://[2001:2::1]/", "non_global_address", "benchmarking"),
    ("http://[2001:10::1]/", "non_global_address", "IETF protocol"),
    ("http://[5f00::1]/", "non_global_address", "not global unicast"),
    # public IP literals are not domains
    ("http://8.8.8.8/", "ip_literal", "8.8.8.8"),
    ("http://134744072/", "ip_literal", "8.8.8.8"),
    ("http://[2001:4860:4860::8888]/", "ip_literal", "2001:4860:4860::8888"),
    ("http://[::ffff:8.8.8.8]/", "ip_literal", "::ffff:808:808"),
    # numbers that are not addresses are not names either
    ("http://4294967296/", "bad_host", "out of range"),
    ("http://256.0.0.1/", "bad_host", "out of range"),
    ("http://1.2.3.4.5/", "bad_host", "not an IPv4 address"),
    ("http://1.256.1/", "bad_host", "out of range"),
    ("http://08.0.0.1/", "bad_host", "not a number"),
    ("http://0x7g.1/", "bad_host", "not a number"),
    ("http://example.1/", "bad_host", "not a number"),
    ("http://127.0.0.1.2/", "bad_host", "not an IPv4 address"),
    ("http://1..1/", "bad_host", "empty label"),
    ("http://" + "0" * 60 + "/", "bad_host", "overlong"),
    # names that are never public, and names that resolve inside
    ("http://localhost/", "special_use_name", "single-label"),
    ("http://LOCALHOST./", "special_use_name", "single-label"),
    ("http://" + fullwidth("localhost") + "/", "special_use_name", "single-label"),
    ("http://foo.localhost/", "special_use_name", ".localhost"),
    ("http://printer.local/", "special_use_name", ".local"),
    ("http://router.home.arpa/", "special_use_name", ".home.arpa"),
    ("http://1.0.0.127.in-addr.arpa/", "special_use_name", ".arpa"),
    ("http://example.onion/", "special_use_name", ".onion"),
    ("http://site.test/", "special_use_name", ".test"),
    ("http://site.invalid/", "special_use_name", ".invalid"),
    ("http://127.0.0.1.nip.io/", "non_global_address", "loopback 127.0.0.1"),
    ("http://localtest.me/", "non_global_address", "loopback"),
    ("http://spoofed.burpcollaborator.example/", "non_global_address", "cloud metadata"),
    ("http://mixed.example.com/", "non_global_address", "private 10.0.0.7"),
    ("http://mixed6.example.com/", "non_global_address", "unique-local fd00::1"),
    ("http://cgnat.example.com/", "non_global_address", "carrier-grade NAT"),
    ("http://alibaba.example.com/", "non_global_address", "Alibaba"),
    ("http://zero.example.com/", "non_global_address", "unspecified"),
    ("http://unspecified6.example.com/", "non_global_address", "unspecified ::"),
    ("http://mapped-meta.example.com/", "non_global_address", "IPv4-mapped"),
    ("http://nat64-private.example.com/", "non_global_address", "NAT64"),
    ("http://ula.example.com/", "non_global_address", "unique-local"),
    ("http://aws6.example.com/", "non_global_address", "AWS IPv6"),
    ("http://linklocal6.example.com/", "non_global_address", "link-local"),
    ("http://multicast.example.com/", "non_global_address", "multicast"),
    ("http://multicast6.example.com/", "non_global_address", "multicast"),
    ("http://broadcast.example.com/", "non_global_address", "broadcast"),
    ("http://reserved.example.com/", "non_global_address", "reserved"),
    ("http://doc.example.com/", "non_global_address", "documentation"),
    ("http://bench.example.com/", "non_global_address", "benchmarking"),
    ("http://teredo.example.com/", "non_global_address", "Teredo (client)"),
    ("http://siit.example.com/", "non_global_address", "not global unicast"),
    # resolution failures
    ("http://nxdomain.example.com/", "resolution_failed", "NXDOMAIN"),
    ("http://nothing.example.com/", "resolution_failed", "no address"),
    ("http://garbage.example.com/", "resolution_failed", "not an address"),
    ("http://scoped.example.com/", "resolution_failed", "not an address"),
    # host syntax
    ("http:///path", "bad_host", "no host"),
    ("http://?x", "bad_host", "no host"),
    ("http://127%2E0%2E0%2E1/", "bad_host", "percent-encoding"),
    ("http://%6c%6f%63%61%6c%68%6f%73%74/", "bad_host", "percent-encoding"),
    ("http://exa*mple.com/", "bad_host", "invalid label"),
    ("http://-example.com/", "bad_host", "invalid label"),
    ("http://example-.com/", "bad_host", "invalid label"),
    ("http://" + "a" * 64 + ".com/", "bad_host", "invalid label"),
    ("http://" + "a." * 130 + "com/", "bad_host", "longer than"),
    ("http://xn--zz.example.com/", "bad_host", "punycode"),
    ("http://ex\u00e4mple\u2488.com/", "bad_host", "internationalised"),
    ("http://example.com\u3002\u3002/", "bad_host", "Empty Label"),
]


@pytest.mark.parametrize(("url", "code", "reason"), REFUSED, ids=[c[0][:80] for c in REFUSED])
def test_hostile_urls_are_refused_with_the_reason(url: str, code: str, reason: str) -> None:
    decision = decide_egress(url, resolve)
    assert isinstance(decision, Refused), decision
    assert decision.code == code, decision
    assert reason in decision.reason, decision


@pytest.mark.parametrize("url", [c[0] for c in REFUSED + ALLOWED], ids=[c[0][:80] for c in REFUSED + ALLOWED])
def test_only_names_that_passed_every_other_check_are_resolved(url: str) -> None:
    asked: list[str] = []

    def recording(host: str) -> list[str]:
        asked.append(host)
        return resolve(host)

    decide_egress(url, recording)
    checked = check_url(url)
    should_resolve = not isinstance(checked, Refused) and checked.host.address is None
    assert asked == ([checked.host.name] if should_resolve else [])  # type: ignore[union-attr]


def test_a_resolver_that_fails_in_any_way_is_a_refusal_not_a_crash() -> None:
    def broken(host: str) -> list[str]:
        raise OSError(-2, "Name or service not known")

    def returns_junk(host: str) -> list[object]:
        return [None, 7]

    def endless(host: str) -> Iterator[str]:
        while True:
            yield PUBLIC_V4

    refused = decide_egress("https://example.com/", broken)
    assert refused == Refused(
        "resolution_failed", "example.com did not resolve: OSError: [Errno -2] Name or service not known"
    )
    junk = decide_egress("https://example.com/", returns_junk)  # type: ignore[arg-type]
    assert isinstance(junk, Refused) and junk.code == "resolution_failed"
    too_many = decide_egress("https://example.com/", endless)
    assert isinstance(too_many, Refused) and f"more than {MAX_ANSWERS}" in too_many.reason


def test_the_decision_says_where_to_connect_so_nothing_resolves_twice() -> None:
    calls: list[str] = []

    def counting(host: str) -> Iterable[str]:
        calls.append(host)
        return [PUBLIC_V4, PUBLIC_V4, "::ffff:" + PUBLIC_V4]

    decision = decide_egress("https://Example.COM:443/p?q=1", counting)
    assert calls == ["example.com"]
    assert isinstance(decision, Allowed)
    assert decision.addresses == (PUBLIC_V4,)
    assert decision.target.authority == "example.com"
    assert decision.target.request_target == "/p?q=1"


def test_ports_are_a_policy() -> None:
    policy = EgressPolicy(allowed_ports=frozenset({443, 8443}))
    assert isinstance(decide_egress("https://example.com:8443/", resolve, policy), Allowed)
    refused = decide_egress("http://example.com/", resolve, policy)
    assert isinstance(refused, Refused) and refused.code == "port_not_allowed"


def test_public_ip_literals_can_be_allowed_but_never_internal_ones() -> None:
    policy = EgressPolicy(allow_ip_literals=True)
    allowed = decide_egress("http://134744072/", never_resolve, policy)
    assert isinstance(allowed, Allowed) and allowed.addresses == ("8.8.8.8",)
    mapped = decide_egress("http://[::ffff:8.8.8.8]/", never_resolve, policy)
    assert isinstance(mapped, Allowed) and mapped.addresses == ("8.8.8.8",)
    for url in ("http://127.1/", "http://[::1]/", "http://0xa9fea9fe/"):
        assert isinstance(decide_egress(url, never_resolve, policy), Refused)


DEV = EgressPolicy(loopback_allowance=frozenset({("grants.localhost", 8089), ("127.0.0.1", 8090)}))


def test_the_development_allowance_admits_only_its_named_pairs_and_only_loopback() -> None:
    def local(host: str) -> list[str]:
        return {"grants.localhost": ["127.0.0.1", "::1"], "other.localhost": ["127.0.0.1"]}.get(host, ["10.0.0.1"])

    allowed = decide_egress("http://grants.localhost:8089/funders", local, DEV)
    assert isinstance(allowed, Allowed) and allowed.addresses == ("127.0.0.1", "::1")
    literal = decide_egress("http://127.0.0.1:8090/", never_resolve, DEV)
    assert isinstance(literal, Allowed) and literal.addresses == ("127.0.0.1",)
    # another port, another name, another spelling of the address, or a non-loopback answer: refused
    for url in (
        "http://grants.localhost:8090/",
        "http://grants.localhost/",
        "http://other.localhost:8089/",
        "http://127.0.0.1:8089/",
        "http://127.1:8091/",
        "http://localhost:8090/",
    ):
        assert isinstance(decide_egress(url, local, DEV), Refused), url

    def private(host: str) -> list[str]:
        return ["127.0.0.1", "10.0.0.1"]

    refused = decide_egress("http://grants.localhost:8089/", private, DEV)
    assert isinstance(refused, Refused) and "private 10.0.0.1" in refused.reason


def test_the_request_target_is_ascii_and_drops_the_fragment() -> None:
    target = check_url("https://example.com/ä ö?q=ü#frag".replace(" ", "%20"))
    assert not isinstance(target, Refused)
    assert target.request_target == "/%C3%A4%20%C3%B6?q=%C3%BC"
    assert check_url("https://example.com?x=1").request_target == "/?x=1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "//0xa9fea9fe/latest/meta-data/",
        "/\\169.254.169.254/latest/",
        "\\\\169.254.169.254\\latest",
        "http://[::ffff:a9fe:a9fe]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://127.0.0.1.nip.io/admin",
        "http://mixed.example.com/",
        "https://0251.0376.0251.0376:443/",
        "file:///etc/passwd",
        "gopher://example.com/_x",
    ],
)
def test_every_redirect_hop_is_decided_afresh(location: str) -> None:
    """A redirect's Location, resolved against the page it came from as a browser would
    (the frontier's canonicaliser), gets the same decision as a URL asked for directly."""
    assert isinstance(decide_egress("https://www.example.org/start", resolve), Allowed)
    try:
        next_hop = canonical_url(location, base="https://www.example.org/start")
    except BadInput:
        return  # not even a crawlable URL: the hop is refused before any decision
    assert isinstance(decide_egress(next_hop, resolve), Refused), next_hop
