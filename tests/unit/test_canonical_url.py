"""URL canonicalisation for the crawl frontier, as tables: spellings of one page that must become
one URL, pages that must stay apart, relative links, and URLs that are refused."""

from __future__ import annotations

import pytest

from ccn_core.canonical_url import MAX_URL_LENGTH, canonical_url, remove_dot_segments
from ccn_core.errors import BadInput

SAME: list[tuple[str, str]] = [
    ("http://example.com", "http://example.com/"),
    ("HTTP://Example.COM/", "http://example.com/"),
    ("http://example.com:80/", "http://example.com/"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:0080/", "http://example.com/"),
    ("http://example.com:/", "http://example.com/"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("http://example.com:443/", "http://example.com:443/"),
    ("http://example.com./a", "http://example.com/a"),
    ("http://example.com/a#section", "http://example.com/a"),
    ("http://example.com/a?#", "http://example.com/a"),
    ("http://example.com/a?", "http://example.com/a"),
    ("http://example.com/%7Euser/%41%42", "http://example.com/~user/AB"),
    ("http://example.com/a%2fb", "http://example.com/a%2Fb"),
    ("http://example.com/a%2Fb", "http://example.com/a%2Fb"),
    ("http://example.com/caf%c3%a9", "http://example.com/caf%C3%A9"),
    ("http://example.com/café", "http://example.com/caf%C3%A9"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/a%20b", "http://example.com/a%20b"),
    ("http://example.com/100%", "http://example.com/100%25"),
    ("http://example.com/%zz", "http://example.com/%25zz"),
    ('http://example.com/a"<>`{}|^', "http://example.com/a%22%3C%3E%60%7B%7D%7C%5E"),
    ("http://example.com/a/./b/../c", "http://example.com/a/c"),
    ("http://example.com/a/b/..", "http://example.com/a/"),
    ("http://example.com/a/b/.", "http://example.com/a/b/"),
    ("http://example.com/../../a", "http://example.com/a"),
    ("http://example.com/a/%2e%2E/b", "http://example.com/b"),
    ("http://example.com/a/%2E/b", "http://example.com/a/b"),
    ("http://example.com/a//b", "http://example.com/a//b"),
    ("http://example.com\\a\\b?x=\\", "http://example.com/a/b?x=%5C"),
    ("  http://example.com/a  ", "http://example.com/a"),
    ("http://exa\tmple.com/a\n/b", "http://example.com/a/b"),
    ("http://example.com/p?b=2&a=1&b=1", "http://example.com/p?b=2&a=1&b=1"),
    ("http://example.com/p?q=a+b&r=a%20b", "http://example.com/p?q=a+b&r=a%20b"),
    ("http://example.com/p?q=%7e%2f%3d", "http://example.com/p?q=~%2F%3D"),
    ("http://example.com/p?q=é", "http://example.com/p?q=%C3%A9"),
    ("http://example.com/p?a?b/c", "http://example.com/p?a?b/c"),
    ("http://example.com/p?x=1#frag?y", "http://example.com/p?x=1"),
    ("http://Bücher.Example/", "http://xn--bcher-kva.example/"),
    ("http://xn--bcher-kva.example/", "http://xn--bcher-kva.example/"),
    ("http://0x7f.1/", "http://127.0.0.1/"),
    ("http://2130706433:8080/x", "http://127.0.0.1:8080/x"),
    ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"),
    ("http://[::FFFF:127.0.0.1]:80/", "http://[::ffff:7f00:1]/"),
]


@pytest.mark.parametrize(("url", "expected"), SAME, ids=[c[0] for c in SAME])
def test_spellings_of_one_page_become_one_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected  # canonical forms are fixed points


DIFFERENT: list[tuple[str, str]] = [
    ("http://example.com/a", "https://example.com/a"),
    ("http://example.com/a", "http://example.com/A"),
    ("http://example.com/a/", "http://example.com/a"),
    ("http://example.com/a%2Fb", "http://example.com/a/b"),
    ("http://example.com/?a=1&b=2", "http://example.com/?b=2&a=1"),
    ("http://example.com/?q=a%26b", "http://example.com/?q=a&b"),
    ("http://example.com:8080/", "http://example.com/"),
    ("http://www.example.com/", "http://example.com/"),
]


@pytest.mark.parametrize(("first", "second"), DIFFERENT, ids=[f"{a} vs {b}" for a, b in DIFFERENT])
def test_different_pages_stay_apart(first: str, second: str) -> None:
    assert canonical_url(first) != canonical_url(second)


RELATIVE: list[tuple[str, str, str]] = [
    ("http://example.com/a/b/page.html", "other.html", "http://example.com/a/b/other.html"),
    ("http://example.com/a/b/page.html", "../c", "http://example.com/a/c"),
    ("http://example.com/a/b/page.html", "/root", "http://example.com/root"),
    ("http://example.com/a/b/page.html", "?q=1", "http://example.com/a/b/page.html?q=1"),
    ("http://example.com/a/b/page.html", "#top", "http://example.com/a/b/page.html"),
    ("https://example.com/a", "//cdn.example.net/x", "https://cdn.example.net/x"),
    ("http://example.com/a/", "HTTPS://Other.example/X", "https://other.example/X"),
    ("http://example.com/a/b", "\\c\\d", "http://example.com/c/d"),
    ("http://example.com/a/b", "../../../../x", "http://example.com/x"),
    ("http://example.com/a/b", "", "http://example.com/a/b"),
]


@pytest.mark.parametrize(("base", "link", "expected"), RELATIVE, ids=[c[1] or "(empty)" for c in RELATIVE])
def test_relative_links_resolve_against_their_page(base: str, link: str, expected: str) -> None:
    assert canonical_url(link, base=base) == expected


REFUSED: list[tuple[str, str]] = [
    ("mailto:grants@example.com", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("ftp://example.com/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("/relative/without/base", "not absolute"),
    ("http:example.com", "'//'"),
    ("http://user:pw@example.com/", "userinfo"),
    ("http://example.com:99999/", "port"),
    ("http://example.com:8o/", "port"),
    ("http:///nohost", "no host"),
    ("http://exa mple.com/", "invalid label"),
    ("http://256.1.1.1/", "out of range"),
    ("http://[::1/", "closing bracket"),
    ("http://[::1]junk/", "after the IPv6 host"),
    ("http://%6c%6f%63%61%6c%68%6f%73%74/", "percent-encoding"),
    ("http://example.com/" + "a" * MAX_URL_LENGTH, "longer than"),
    ("http://example.com/" + "\u00e9" * 3000, "canonical URL is longer"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED, ids=[c[0][:60] for c in REFUSED])
def test_urls_that_are_not_crawlable_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(BadInput) as raised:
        canonical_url(url)
    assert reason in raised.value.message
    assert raised.value.field == "url"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/..", "/"),
        ("/.", "/"),
        ("/a/..", "/"),
        ("/a/../..", "/"),
        ("/a//../b", "/a/b"),
        ("/a/.../b", "/a/.../b"),
        ("/a/..b/c", "/a/..b/c"),
    ],
)
def test_dot_segments_are_removed_as_rfc_3986_says(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected
