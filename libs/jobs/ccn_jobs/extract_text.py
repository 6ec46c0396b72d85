"""Job type `extract_text` (CC-70, HTML given inline): clean main text, title and language.

Boilerplate (navigation, footers, cookie banners, sidebars, comments) is dropped by
trafilatura in precision mode; key-facts tables are kept, since grant pages often put the
amount and the deadline there. The language comes from py3langid's bundled model, loaded once
per process from the wheel: nothing is downloaded.

Determinism: several nodes run the same job and their results are compared by checksum, so
the output depends on the payload alone. trafilatura's cross-document deduplication cache is
off, dates (which htmldate judges against today's date) are not part of the result, and the
language probability, a float32 computation, is rounded before it enters `confidence`. Results
are comparable between nodes with the same pinned trafilatura and py3langid (uv.lock); a change
of either that alters output must bump `VERSION`.

Bounds: the HTML is at most `MAX_HTML_CHARS` characters (checked when the payload is decoded),
the text kept at most `MAX_TEXT_CHARS`, the title at most `MAX_TITLE_CHARS`, and language
identification reads the first `LANGUAGE_SAMPLE_CHARS` characters of the text."""

from __future__ import annotations

import functools
import unicodedata
from typing import TYPE_CHECKING, Annotated, Protocol, cast

import msgspec

from ccn_jobs.job_type import JobType
from ccn_proto.constraints import END

if TYPE_CHECKING:
    from trafilatura.settings import Document

NAME = "extract_text"
VERSION = "1"

MAX_HTML_CHARS = 2 * 1024 * 1024
MAX_URL_CHARS = 2048
MAX_TEXT_CHARS = 200_000
MAX_TITLE_CHARS = 1_000
LANGUAGE_SAMPLE_CHARS = 10_000
MIN_LANGUAGE_PROBABILITY = 0.5
FULL_CONFIDENCE_CHARS = 250  # trafilatura's own MIN_EXTRACTED_SIZE: below it, a page is thin
REPEATED_LINE_MIN_CHARS = 30  # a repeated line this long is duplicate content; short ones ("Deadline") may recur
CONFIDENCE_DIGITS = 4

# py3langid labels for "no linguistic content" and "undetermined".
_NOT_A_LANGUAGE = frozenset({"zxx", "und"})
# C0 and C1 control characters except newline and tab, which the whitespace pass handles.
_CONTROL_CHARS = dict.fromkeys([*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)])

Html = Annotated[str, msgspec.Meta(max_length=MAX_HTML_CHARS, description="the page's HTML source")]
Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=MAX_URL_CHARS, pattern=rf"^https?://\S+{END}", description="where the page was"
    ),
]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_CHARS)]
LanguageCode = Annotated[str, msgspec.Meta(pattern=rf"^[a-z]{{2,3}}{END}")]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
CharCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_TEXT_CHARS)]


class ExtractTextPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    html: Html
    url: Url | None = None


class ExtractTextResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`text` is the main content, one paragraph or heading per line. `language` is an ISO 639
    code, None when the text is empty or no language is likely enough. `chars` == len(text)."""

    text: Text
    title: Title | None
    language: LanguageCode | None
    confidence: Confidence
    chars: CharCount

    def __post_init__(self) -> None:
        # Checked on decode too, so the validation service rejects a result that misreports it.
        if self.chars != len(self.text):
            raise ValueError(f"chars is {self.chars} but text has {len(self.text)} characters")


EMPTY_RESULT = ExtractTextResult(text="", title=None, language=None, confidence=0.0, chars=0)


def extract_text(payload: ExtractTextPayload) -> ExtractTextResult:
    """Extract a page's main text, title and language. Never raises: HTML that yields nothing
    (empty, garbage, all boilerplate) gives empty text and confidence 0.

    confidence = extraction x (0.5 + 0.5 x language), rounded to 4 digits, where
      extraction = min(1, chars / 250): how much main text was found (0 when none);
      language   = the identifier's normalised probability for the chosen language, or 0 when
                   no language was chosen (probability below 0.5, or not language at all).
    So a long page in a clearly identified language scores near 1, a long page whose language is
    unclear at most 0.5, and a thin page proportionally less."""
    document = _extract_document(_valid_unicode(payload.html), payload.url)
    if document is None:
        return EMPTY_RESULT
    text = _clean_text(document.text or "")[:MAX_TEXT_CHARS].rstrip()
    title = _clean_line(document.title or "")[:MAX_TITLE_CHARS].rstrip() or None
    if not text:
        return ExtractTextResult(text="", title=title, language=None, confidence=0.0, chars=0)
    language, probability = _identify_language(text[:LANGUAGE_SAMPLE_CHARS])
    extraction = min(1.0, len(text) / FULL_CONFIDENCE_CHARS)
    confidence = round(extraction * (0.5 + 0.5 * probability), CONFIDENCE_DIGITS)
    return ExtractTextResult(text=text, title=title, language=language, confidence=confidence, chars=len(text))


def _extract_document(html: str, url: str | None) -> Document | None:
    # Imported here, like the language model below, so that a scheduler validating payloads
    # never loads lxml and the extractors.
    import trafilatura
    from trafilatura.settings import Document

    if not html.strip():
        return None
    try:
        document = trafilatura.bare_extraction(
            html,
            url=url,
            favor_precision=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            include_formatting=False,
            deduplicate=False,
            with_metadata=True,
            # The date is not in the result; a shallow search keeps its cost down.
            date_extraction_params={"extensive_search": False},
        )
    # Untrusted input meets a parser stack (lxml, trafilatura, justext, htmldate) whose failure
    # modes are not all typed or documented; any failure means "nothing extracted".
    except Exception:
        return None
    return document if isinstance(document, Document) else None


def _valid_unicode(html: str) -> str:
    # A payload built from a dict (not decoded from JSON) may hold lone surrogates, which lxml
    # and the UTF-8 encoder of the result both reject.
    return html.encode("utf-8", "replace").decode("utf-8")


def _clean_line(line: str) -> str:
    return " ".join(line.translate(_CONTROL_CHARS).split())


def _clean_text(raw: str) -> str:
    """NFC, whitespace runs collapsed, blank lines dropped, long lines kept once."""
    lines: list[str] = []
    seen: set[str] = set()
    for raw_line in unicodedata.normalize("NFC", raw).splitlines():
        line = _clean_line(raw_line)
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


def _identify_language(text: str) -> tuple[str | None, float]:
    """(ISO 639 code, probability rounded to 4 digits), or (None, 0.0) when unsure."""
    code, probability = _language_identifier().classify(text)
    rounded = round(float(probability), CONFIDENCE_DIGITS)
    if code in _NOT_A_LANGUAGE or rounded < MIN_LANGUAGE_PROBABILITY:
        return None, 0.0
    return str(code), rounded


EXTRACT_TEXT: JobType[ExtractTextPayload, ExtractTextResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=ExtractTextPayload,
    result_type=ExtractTextResult,
    handler=extract_text,
    description="Main text, title and language of an HTML page given inline (CC-70)",
    sample_payloads=(
        ExtractTextPayload(
            html="<html><head><title>Seed grants</title></head><body><nav>Home | About</nav><article>"
            "<h1>Community seed grants</h1><p>Grants of up to $5,000 for volunteer-led groups planting "
            "orchards and community gardens. Applications close on 31 March.</p></article></body></html>",
            url="https://funder.example/grants/seed",
        ),
        ExtractTextPayload(html=""),
    ),
)
