"""The consent documents a node may agree to, by version, with the SHA-256 each must quote.

A version is the file's name; its hash is of the file's bytes, so the text a volunteer read is
the text the hash proves. Published documents are never edited: a change is a new version.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources


@cache
def consent_catalogue() -> dict[str, str]:
    """version → sha256 hex of the document."""
    catalogue: dict[str, str] = {}
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".md"):
            catalogue[entry.name.removesuffix(".md")] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return catalogue


def consent_document(version: str) -> str:
    if version not in consent_catalogue():
        raise KeyError(version)
    return resources.files(__name__).joinpath(f"{version}.md").read_text(encoding="utf-8")


def current_consent_version() -> str:
    return max(consent_catalogue())
