"""The crawler's reading of a crawl result, and its near-duplicate index (MinHash over shingles)."""

from __future__ import annotations

import random

from ccn_crawler.campaigns import page_report
from ccn_crawler.near_duplicates import NearDuplicateIndex, from_hex, signature_of, to_hex

_WORDS = [
    "grant",
    "fund",
    "school",
    "river",
    "arts",
    "youth",
    "award",
    "apply",
    "deadline",
    "march",
    "budget",
    "city",
    "health",
    "rural",
    "water",
]


def page_text(seed: int, words: int = 400) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_WORDS) for _ in range(words)]


def test_a_page_with_a_small_edit_is_a_near_duplicate_and_another_page_is_not() -> None:
    original = page_text(1)
    edited = original[:392] + ["footer"] * 8
    index = NearDuplicateIndex()
    first = signature_of(" ".join(original))
    assert first is not None
    index.add("https://a.example/", first)
    near = index.nearest("https://b.example/", signature_of(" ".join(edited)))  # type: ignore[arg-type]
    assert near is not None and near.url == "https://a.example/" and near.similarity >= 0.9
    assert index.nearest("https://c.example/", signature_of(" ".join(page_text(2)))) is None  # type: ignore[arg-type]
    # a page is never its own duplicate
    assert index.nearest("https://a.example/", first) is None


def test_a_signature_survives_its_hex_form() -> None:
    signature = signature_of(" ".join(page_text(3)))
    assert signature is not None
    restored = from_hex(to_hex(signature))
    assert restored is not None and restored.jaccard(signature) == 1.0
    assert from_hex("zz") is None and from_hex("00" * 3) is None


def test_too_little_text_has_no_signature() -> None:
    assert signature_of("four words only here") is None


def test_a_crawl_result_is_read_leniently() -> None:
    fetch = {"url": "https://a.example/", "outcome": "fetched", "status": 200, "etag": '"e"', "final_url": 5}
    report = page_report(
        {
            "fetch": fetch,
            "text_sha256": "abc",
            "links": ["https://a.example/x", 5, None],
            "fields_found": 2,
            "fields_asked": True,
        }
    )
    assert report.status == 200 and report.content_hash == "abc" and report.etag == '"e"'
    assert report.final_url is None and report.failure is None
    assert report.links == ("https://a.example/x",)
    assert (report.fields_found, report.fields_asked) == (2, 0)
    assert page_report({"fetch": {"outcome": "fetched", "status": 304}}).not_modified
    assert page_report({"fetch": {"outcome": "fetched", "status": 503}}).failure == "http_503"
    assert page_report({"fetch": "nope", "links": "nope"}).failure == "not_fetched"
    refused = page_report({"fetch": {"outcome": "refused", "reason": "robots_disallowed"}})
    assert refused.failure == "robots_disallowed"
