"""Text as every document job returns it: NFC, no control characters, whitespace runs
collapsed, one block per line, long repeated lines kept once; and its language.

The language comes from py3langid's bundled model, loaded once per process from the wheel:
nothing is downloaded. Its probability, a float32 computation, is rounded before it is used,
so results are byte-identical between nodes."""

from __future__ import annotations

import functools
import unicodedata
from typing import Protocol, cast

REPEATED_LINE_MIN_CHARS = 30  # a repeated line this long is duplicate content; short ones ("Deadline") may recur
LANGUAGE_SAMPLE_CHARS = 10_000
MIN_LANGUAGE_PROBABILITY = 0.5
CONFIDENCE_DIGITS = 4

# py3langid labels for "no linguistic content" and "undetermined".
_NOT_A_LANGUAGE = frozenset({"zxx", "und"})
# C0 and C1 control characters except newline and tab, which the whitespace pass handles.
_CONTROL_CHARS = dict.fromkeys([*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)])


def valid_unicode(text: str) -> str:
    # A string built in-process (not decoded from JSON) may hold lone surrogates, which lxml
    # and the UTF-8 encoder of the result both reject.
    return text.encode("utf-8", "replace").decode("utf-8")


def clean_line(line: str) -> str:
    return " ".join(line.translate(_CONTROL_CHARS).split())


def clean_text(raw: str) -> str:
    """NFC, whitespace runs collapsed, blank lines dropped, long lines kept once."""
    lines: list[str] = []
    seen: set[str] = set()
    for raw_line in unicodedata.normalize("NFC", valid_unicode(raw)).splitlines():
        line = clean_line(raw_line)
        if not line:
            continue
        if len(line) >= REPEATED_LINE_MIN_CHARS:
            if line in seen:
                continue
            seen.add(line)
        lines.append(line)
    return "\n".join(lines)


class _LanguageIdentifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]: ...


@functools.cache
def _language_identifier() -> _LanguageIdentifier:
    # The model (about 4.5 MB, in the py3langid wheel) takes ~0.5 s to load: once per process.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    return cast(_LanguageIdentifier, LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True))


def identify_language(text: str) -> tuple[str | None, float]:
    """(ISO 639 code, probability rounded to 4 digits) of the text's first
    LANGUAGE_SAMPLE_CHARS characters, or (None, 0.0) when unsure or there is no text."""
    if not text.strip():
        return None, 0.0
    code, probability = _language_identifier().classify(text[:LANGUAGE_SAMPLE_CHARS])
    rounded = round(float(probability), CONFIDENCE_DIGITS)
    if code in _NOT_A_LANGUAGE or rounded < MIN_LANGUAGE_PROBABILITY:
        return None, 0.0
    return str(code), rounded
