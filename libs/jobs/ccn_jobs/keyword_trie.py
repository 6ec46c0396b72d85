"""A regular expression for "any of these phrases" built as a trie, so that matching costs one
pass over the text with each character tested once per branch, rather than every phrase tried
at every position (Python's `re` does not merge the alternatives of `a|b|c` into a trie itself).

Where one phrase is a prefix of another, the longer is preferred, as in an alternation sorted
longest first."""

from __future__ import annotations

import re
from collections.abc import Iterable

_END = ""  # marks a node where a phrase ends

Trie = dict[str, "Trie"]


def trie_pattern(phrases: Iterable[str]) -> str:
    """The pattern (no anchors, no flags) matching exactly the given phrases."""
    root: Trie = {}
    for phrase in phrases:
        if not phrase:
            raise ValueError("a phrase may not be empty")
        node = root
        for char in phrase:
            node = node.setdefault(char, {})
        node[_END] = {}
    return _render(root)


def _render(node: Trie) -> str:
    branches = [re.escape(char) + _render(child) for char, child in sorted(node.items()) if char != _END]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if _END in node:
        return f"(?:{body})?"  # greedy: the longer phrase first
    return body
