"""Reading a PDF with PyMuPDF, bounded and typed: what extract_text and parse_pdf share.

`open_pdf` refuses, before any page is read, what cannot or must not be read: zero bytes, no
`%%EOF` (truncated), a file MuPDF cannot open (corrupt), a password (encrypted), no pages, or
more pages than the payload allows (a page bomb is refused by its page count, never iterated).
`read_pages` then reads page by page, checking the deadline between pages, and returns each
page's lines with their position, size and weight (from `page.get_text("dict")`, without image
data), the page's image count and whether it looks scanned. No page is rendered to pixels.

Repeated page furniture (running headers, footers, page numbers) is found across pages by
`furniture`: a line in the top or bottom margin whose text, with digits masked, recurs on at
least half the pages (and on two at least) is boilerplate.

MuPDF's own messages are switched off: it reports repairs of broken files on stderr, which a
node must not spill, and the typed refusal says what matters."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ccn_jobs.documents import Deadline
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.text_normalisation import clean_line

# A page with images and fewer characters than this in its text layer is taken as scanned.
SCANNED_MAX_CHARS = 20
# Top and bottom share of the page height where running headers and footers live.
MARGIN_SHARE = 0.1
FURNITURE_MIN_PAGES = 2
FURNITURE_PAGE_SHARE = 0.5
_EOF_MARKER = b"%%EOF"
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    top: float
    bottom: float
    size: float  # the largest font size on the line, rounded to 0.1 pt
    bold: bool  # every span on the line is bold
    alone: bool  # the only line of its block
    block: int  # the index of its block on the page: a block's lines make one paragraph


@dataclass(frozen=True, slots=True)
class PageLines:
    number: int  # 1-based
    height: float
    lines: tuple[Line, ...]
    images: int

    @property
    def chars(self) -> int:
        return sum(len(line.text) for line in self.lines)

    @property
    def scanned(self) -> bool:
        return self.images > 0 and self.chars < SCANNED_MAX_CHARS


@functools.cache
def pymupdf_module() -> Any:
    """PyMuPDF, imported on first use so that a scheduler validating payloads never loads MuPDF.
    Any: its API is only partly annotated, so every object from it is treated as Any."""
    import importlib

    pymupdf: Any = importlib.import_module("pymupdf")
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    pymupdf.no_recommend_layout()  # it would print to stdout
    return pymupdf


def engine_version() -> str:
    return f"pymupdf {pymupdf_module().VersionBind}"


def open_pdf(data: bytes, job_type: str, max_pages: int) -> Any:
    """The document, open and checked; DocumentRefused otherwise. The caller closes it."""
    pymupdf = pymupdf_module()
    if not data:
        raise DocumentRefused(job_type, "empty", "the PDF has no bytes")
    if data.rfind(_EOF_MARKER) == -1:
        raise DocumentRefused(job_type, "truncated", "the PDF has no %%EOF marker: it ends before its end")
    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # MuPDF's errors are not all typed (FileDataError, RuntimeError, ...)
        raise DocumentRefused(job_type, "corrupt", f"MuPDF cannot open it: {_short(exc)}") from None
    try:
        if document.needs_pass:
            raise DocumentRefused(job_type, "encrypted", "the PDF needs a password")
        pages = _page_count(document, job_type)
        if pages == 0 and document.is_repaired:
            raise DocumentRefused(job_type, "corrupt", "its cross-reference table is broken and no page was recovered")
        if pages == 0:
            raise DocumentRefused(job_type, "empty", "the PDF has no pages")
        if pages > max_pages:
            raise DocumentRefused(job_type, "too_many_pages", f"the PDF has {pages} pages; the limit is {max_pages}")
    except BaseException:
        document.close()
        raise
    return document


def _page_count(document: Any, job_type: str) -> int:
    try:
        return int(document.page_count)
    except Exception as exc:  # a page tree MuPDF cannot count (cycles, lies, garbage)
        raise DocumentRefused(job_type, "corrupt", f"its page tree cannot be read: {_short(exc)}") from None


def read_pages(document: Any, job_type: str, deadline: Deadline) -> Iterator[tuple[Any, PageLines]]:
    """(page, its lines) for every page in order, the deadline checked before each. A page
    MuPDF cannot read makes the document corrupt."""
    flags = _text_flags()
    for index in range(_page_count(document, job_type)):
        deadline.check(f"page {index + 1}")
        try:
            page = document.load_page(index)
            content = page.get_text("dict", flags=flags, sort=True)
            images = len(page.get_images(full=False))
            height = float(page.rect.height)
        except DocumentRefused:
            raise
        except Exception as exc:
            raise DocumentRefused(job_type, "corrupt", f"page {index + 1} cannot be read: {_short(exc)}") from None
        yield page, PageLines(number=index + 1, height=height, lines=_lines(content), images=images)


def _text_flags() -> int:
    pymupdf = pymupdf_module()
    # The dict without image blocks (their bytes would be copied out), ligatures and whitespace
    # as MuPDF normalises them, and text clipped to the page.
    return int(pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES | pymupdf.TEXT_MEDIABOX_CLIP)


def _lines(content: dict[str, Any]) -> tuple[Line, ...]:
    lines: list[Line] = []
    for index, block in enumerate(content.get("blocks", ())):
        if block.get("type") != 0:
            continue
        block_lines = block.get("lines", ())
        for raw in block_lines:
            spans = [span for span in raw.get("spans", ()) if span.get("text", "").strip()]
            if not spans:
                continue
            text = clean_line("".join(span["text"] for span in raw.get("spans", ())))
            if not text:
                continue
            top, bottom = float(raw["bbox"][1]), float(raw["bbox"][3])
            lines.append(
                Line(
                    text=text,
                    top=top,
                    bottom=bottom,
                    size=round(max(float(span["size"]) for span in spans), 1),
                    bold=all(_is_bold(span) for span in spans),
                    alone=len(block_lines) == 1,
                    block=index,
                )
            )
    return tuple(lines)


def _is_bold(span: dict[str, Any]) -> bool:
    # flag bit 4 is "bold" in MuPDF's span flags; some fonts only say it in their name
    return bool(int(span.get("flags", 0)) & 16) or "bold" in str(span.get("font", "")).lower()


def _furniture_key(text: str) -> str:
    return _DIGITS.sub("#", text.casefold())


def furniture(pages: list[PageLines]) -> frozenset[str]:
    """Keys (see `is_furniture`) of lines that repeat in the margins of many pages."""
    counts: Counter[str] = Counter()
    for page in pages:
        keys = {
            _furniture_key(line.text)
            for line in page.lines
            if line.bottom <= page.height * MARGIN_SHARE or line.top >= page.height * (1 - MARGIN_SHARE)
        }
        counts.update(keys)
    needed = max(FURNITURE_MIN_PAGES, int(len(pages) * FURNITURE_PAGE_SHARE + 0.5))
    return frozenset(key for key, count in counts.items() if count >= needed)


def is_furniture(line: Line, page: PageLines, keys: frozenset[str]) -> bool:
    in_margin = line.bottom <= page.height * MARGIN_SHARE or line.top >= page.height * (1 - MARGIN_SHARE)
    return in_margin and _furniture_key(line.text) in keys


def paragraphs(page: PageLines, keys: frozenset[str]) -> list[str]:
    """The page's text blocks as paragraphs (a block's lines joined by spaces), furniture left out."""
    out: list[str] = []
    block = -1
    for line in page.lines:
        if is_furniture(line, page, keys):
            continue
        if line.block == block and out:
            out[-1] = f"{out[-1]} {line.text}"
        else:
            out.append(line.text)
        block = line.block
    return out


def _short(exc: BaseException) -> str:
    text = clean_line(str(exc)) or type(exc).__name__
    return text[:200]
