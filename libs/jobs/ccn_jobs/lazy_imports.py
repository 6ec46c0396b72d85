"""The libraries that job types import on first use, not at import time: they are large, and a
node runs few job types. A process that forks a child for each job loads them first, once, so
that every child shares them rather than loading (and paying memory for) its own.
tests/unit/test_jobs_lazy_imports.py checks that this list names every such import."""

from __future__ import annotations

import contextlib
import importlib
from typing import Final

LAZY_IMPORTS: Final = (
    "charset_normalizer",
    "cssselect",
    "dateparser",
    "docx",
    "iso3166",
    "lxml",
    "price_parser",
    "py3langid",
    "pymupdf",
    "re2",
    "rapidfuzz",
    "tldextract",
    "trafilatura",
    "usaddress",
)


def load_lazy_imports() -> None:
    """Import them all (a second call costs a dict look-up each); one that is missing fails the
    job that needs it, as it would have anyway."""
    for name in LAZY_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
