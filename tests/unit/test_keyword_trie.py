"""The trie pattern matches exactly its phrases, the longest where one is a prefix of another."""

from __future__ import annotations

import re

import pytest

from ccn_jobs.keyword_trie import trie_pattern


def test_it_matches_exactly_the_phrases_longest_first() -> None:
    phrases = ["art", "arts", "artificial intelligence", "501(c)(3)", "in-kind", "x"]
    pattern = re.compile(rf"(?<![\w-])(?:{trie_pattern(phrases)})(?![\w-])")
    text = "arts, art; artificial intelligence 501(c)(3) in-kind x start artsy xx"
    assert [m.group(0) for m in pattern.finditer(text)] == [
        "arts",
        "art",
        "artificial intelligence",
        "501(c)(3)",
        "in-kind",
        "x",
    ]
    assert re.fullmatch(trie_pattern(phrases), "artificial") is None


def test_an_empty_phrase_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        trie_pattern(["a", ""])
