"""Job type `parse_pdf` (CC-63): a PDF's text per page, its tables as rows, its metadata, the
sections its headings open, and which pages are scanned.

Reading is ccn_jobs.pdf_reading's: bounded in bytes (the payload's document), pages (the
payload's `max_pages`, at most MAX_PAGES_CAP) and time (`time_limit_s`, checked between pages);
encrypted, corrupt, truncated and over-long PDFs fail with a typed reason (DocumentRefused).

- Page text: the page's lines in reading order, running headers and footers removed.
- Tables: PyMuPDF's `find_tables` (ruled tables), run only on pages that draw vector graphics,
  where ruled tables live; the rest of the pages skip its cost. Cells are normalised (None to
  "", whitespace collapsed), rows padded to the widest.
- Sections: a line is a heading when it stands alone in its block, is short, and is set larger
  than the body text (the font size that carries the most characters) or bold at body size.
  Larger sizes get lower levels: the largest heading size is level 1, the next 2, the rest 3.
- Scanned pages: images and (almost) no text layer. With `ocr` asked for and an OCR engine
  present (Tesseract language data; docs/adr/0014-ocr-for-scanned-pdfs.md) such a page is read
  by OCR, the only place a page is rendered to pixels; otherwise it is listed in `needs_ocr`.
- Metadata: title, author, subject, keywords, creator, producer, and the creation and
  modification dates as ISO 8601 with their UTC offset.

Determinism: the result depends on the bytes and the payload's options alone (and, for OCR,
on the engine, which the result names in `engine`). Results are comparable between nodes with
the same pinned PyMuPDF (uv.lock) and the same `VERSION`; bounds keep the result within one
command: at most MAX_PDF_TEXT_CHARS characters of page text in all (`text_truncated` says
when cut), MAX_TABLES tables of MAX_TABLE_CHARS characters in all (`tables_truncated`),
MAX_SECTIONS sections."""

from __future__ import annotations

import base64
import functools
import os
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from ccn_jobs.documents import Deadline, checked_body
from ccn_jobs.job_type import JobType
from ccn_jobs.pdf_reading import (
    PageLines,
    engine_version,
    furniture,
    is_furniture,
    open_pdf,
    paragraphs,
    read_pages,
)
from ccn_jobs.result_rules import Allowed, Bounds, Format, Mandatory, ResultRules
from ccn_jobs.text_normalisation import clean_line, clean_text, identify_language
from ccn_proto.documents import (
    MAX_CELL_CHARS,
    MAX_META_CHARS,
    MAX_PAGE_TEXT_CHARS,
    MAX_PAGES_CAP,
    MAX_PDF_TEXT_CHARS,
    MAX_SECTIONS,
    MAX_TABLE_CHARS,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ROWS,
    MAX_TABLES,
    PDF,
    InlineDocument,
    ParsePdfPayload,
    ParsePdfResult,
    PdfMetadata,
    PdfPage,
    PdfSection,
    PdfTable,
)

NAME = "parse_pdf"
VERSION = "1"

HEADING_MIN_RATIO = 1.15  # a heading is set this much larger than the body text, or bold
HEADING_MAX_CHARS = 150
HEADING_MAX_WORDS = 16
OCR_LANGUAGE = "eng"
OCR_DPI = 200
# Where Debian's tesseract-ocr-eng puts the language data; TESSDATA_PREFIX overrides it.
_TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")
_PDF_DATE = re.compile(
    r"^D:(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:(?P<z>Z)|(?P<sign>[+-])(?P<oh>\d{2})'?(?P<om>\d{2})?'?)?"
)


def parse_pdf(payload: ParsePdfPayload) -> ParsePdfResult:
    deadline = Deadline(payload.time_limit_s, NAME)
    data = checked_body(payload.document, NAME, frozenset({PDF})).data
    assert data is not None  # a PDF is given as bytes
    tessdata = ocr_tessdata() if payload.ocr else None
    document = open_pdf(data, NAME, payload.max_pages)
    try:
        metadata = _metadata(document.metadata or {})
        read: list[tuple[PageLines, list[PdfTable], str | None]] = []
        table_budget = TableBudget()
        for page, lines in read_pages(document, NAME, deadline):
            tables = _tables(page, lines.number, table_budget) if payload.tables else []
            ocr_text = _ocr(page, tessdata) if tessdata is not None and lines.scanned else None
            read.append((lines, tables, ocr_text))
        page_count = document.page_count
    finally:
        document.close()
    pages_lines = [lines for lines, _, _ in read]
    keys = furniture(pages_lines)
    pages, budget, truncated = [], MAX_PDF_TEXT_CHARS, False
    for lines, _, ocr_text in read:
        body = ocr_text if ocr_text is not None else "\n".join(paragraphs(lines, keys))
        text = clean_text(body)
        kept = text[: min(budget, MAX_PAGE_TEXT_CHARS)].rstrip()
        truncated = truncated or len(kept) < len(text)
        budget -= len(kept)
        pages.append(
            PdfPage(
                number=lines.number,
                text=kept,
                chars=len(kept),
                images=lines.images,
                needs_ocr=lines.scanned and ocr_text is None,
                ocr=ocr_text is not None,
            )
        )
    language, _ = identify_language("\n".join(page.text for page in pages))
    return ParsePdfResult(
        parser_version=VERSION,
        engine=engine_version() + (f" + tesseract {OCR_LANGUAGE}" if tessdata is not None else ""),
        page_count=page_count,
        metadata=metadata,
        pages=pages,
        tables=[table for _, tables, _ in read for table in tables],
        sections=_sections(pages_lines, keys),
        needs_ocr=[page.number for page in pages if page.needs_ocr],
        text_truncated=truncated,
        tables_truncated=table_budget.exhausted,
        language=language,
    )


@functools.cache
def ocr_tessdata() -> str | None:
    """The Tesseract language data directory holding OCR_LANGUAGE, or None: no OCR here."""
    candidates = [os.environ.get("TESSDATA_PREFIX", ""), *_TESSDATA_DIRS]
    for candidate in candidates:
        if candidate and (Path(candidate) / f"{OCR_LANGUAGE}.traineddata").is_file():
            return candidate
    return None


def _ocr(page: Any, tessdata: str) -> str | None:
    try:
        textpage = page.get_textpage_ocr(language=OCR_LANGUAGE, dpi=OCR_DPI, full=True, tessdata=tessdata)
        return str(page.get_text("text", textpage=textpage, sort=True))
    except Exception:  # an engine that fails leaves the page as it was: reported, not read
        return None


def ruled_area(drawings: list[dict[str, Any]]) -> tuple[float, float, float, float] | None:
    """The box around a page's stroked lines and rectangles when they could rule a table (at
    least three horizontal and two vertical edges), else None: a logo or a single rule under a
    heading does not cost find_tables' run (tens of ms a page)."""
    horizontal = vertical = 0
    box: list[float] | None = None
    for path in drawings:
        if path.get("type") not in ("s", "fs"):
            continue  # fill only: shading, not rules
        for item in path.get("items", ()):
            if item[0] == "re":
                horizontal, vertical = horizontal + 2, vertical + 2
            elif item[0] == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                horizontal += abs(y1 - y0) < 1
                vertical += abs(x1 - x0) < 1
            else:
                continue
            x0, y0, x1, y1 = path["rect"]
            box = (
                [x0, y0, x1, y1]
                if box is None
                else [min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)]
            )
    if box is None or horizontal < 3 or vertical < 2:
        return None
    return box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2


class TableBudget:
    """What is left of MAX_TABLES and MAX_TABLE_CHARS; `exhausted` once a table did not fit."""

    def __init__(self) -> None:
        self.tables = MAX_TABLES
        self.chars = MAX_TABLE_CHARS
        self.exhausted = False

    def take(self, table: PdfTable) -> bool:
        chars = sum(len(cell) for row in table.rows for cell in row)
        if self.exhausted or self.tables == 0 or chars > self.chars:
            self.exhausted = True
            return False
        self.tables -= 1
        self.chars -= chars
        return True


def _tables(page: Any, number: int, budget: TableBudget) -> list[PdfTable]:
    if budget.exhausted:
        return []
    area = ruled_area(page.get_cdrawings())
    if area is None:
        return []
    try:
        found = page.find_tables(clip=area, strategy="lines_strict")
    except Exception:  # table finding is a heuristic over untrusted drawings: none found
        return []
    tables: list[PdfTable] = []
    for table in found.tables:
        rows = [_row(row) for row in table.extract()[:MAX_TABLE_ROWS]]
        width = max((len(row) for row in rows), default=0)
        rows = [row + [""] * (width - len(row)) for row in rows if any(row)]
        if not rows:
            continue
        header = None
        if not table.header.external and rows:
            header = rows[0]
        parsed = PdfTable(page=number, header=header, rows=rows)
        if not budget.take(parsed):
            break
        tables.append(parsed)
    return tables


def _row(cells: list[str | None]) -> list[str]:
    return [clean_line(cell or "")[:MAX_CELL_CHARS] for cell in cells[:MAX_TABLE_COLUMNS]]


def _sections(pages: list[PageLines], keys: frozenset[str]) -> list[PdfSection]:
    sizes: Counter[float] = Counter()
    for page in pages:
        for line in page.lines:
            sizes[line.size] += len(line.text)
    if not sizes:
        return []
    body = max(sizes.items(), key=lambda item: (item[1], -item[0]))[0]
    candidates = [
        (page.number, line)
        for page in pages
        for line in page.lines
        if line.alone
        and len(line.text) <= HEADING_MAX_CHARS
        and len(line.text.split()) <= HEADING_MAX_WORDS
        and any(char.isalpha() for char in line.text)
        and (line.size >= body * HEADING_MIN_RATIO or (line.bold and line.size >= body))
        and not is_furniture(line, page, keys)
    ]
    heading_sizes = sorted({line.size for _, line in candidates}, reverse=True)
    return [
        PdfSection(heading=line.text[:MAX_META_CHARS], level=min(3, heading_sizes.index(line.size) + 1), page=number)
        for number, line in candidates[:MAX_SECTIONS]
    ]


def _metadata(raw: dict[str, Any]) -> PdfMetadata:
    def text(key: str) -> str | None:
        return clean_line(str(raw.get(key) or ""))[:MAX_META_CHARS] or None

    return PdfMetadata(
        title=text("title"),
        author=text("author"),
        subject=text("subject"),
        keywords=text("keywords"),
        creator=text("creator"),
        producer=text("producer"),
        created_at=iso_date(str(raw.get("creationDate") or "")),
        modified_at=iso_date(str(raw.get("modDate") or "")),
    )


def iso_date(value: str) -> str | None:
    """A PDF date (`D:YYYYMMDDHHmmSS+HH'mm'`, any tail optional) as ISO 8601, or None when
    it is not one or names an impossible time."""
    match = _PDF_DATE.match(value.strip())
    if match is None:
        return None
    parts = match.groupdict()
    year, month, day = int(parts["y"]), int(parts["mo"] or 1), int(parts["d"] or 1)
    hour, minute, second = int(parts["h"] or 0), int(parts["mi"] or 0), int(parts["s"] or 0)
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if parts["h"] is None:
        return date
    clock = f"{date}T{hour:02d}:{minute:02d}:{second:02d}"
    if parts["z"]:
        return clock + "Z"
    if parts["sign"]:
        offset_hours, offset_minutes = int(parts["oh"]), int(parts["om"] or 0)
        if offset_hours > 23 or offset_minutes > 59:
            return None
        return f"{clock}{parts['sign']}{offset_hours:02d}:{offset_minutes:02d}"
    return clock


# a one-page grant notice (made with PyMuPDF), for the determinism harness
_SAMPLE_PDF = base64.b64decode(
    "JVBERi0xLjcKJcK1wrYKJSBXcml0dGVuIGJ5IE11UERGIDEuMjcuMgoKMSAwIG9iago8PC9UeXBlL0NhdGFsb2cvUGFnZXMgMiAw"
    "IFIvSW5mbzw8L1Byb2R1Y2VyKE11UERGIDEuMjcuMik+Pj4+CmVuZG9iagoKMiAwIG9iago8PC9UeXBlL1BhZ2VzL0NvdW50IDEv"
    "S2lkc1s0IDAgUl0+PgplbmRvYmoKCjMgMCBvYmoKPDwvRm9udDw8L2hlbHYgNSAwIFI+Pj4+CmVuZG9iagoKNCAwIG9iago8PC9U"
    "eXBlL1BhZ2UvTWVkaWFCb3hbMCAwIDMwMCAyMDBdL1JvdGF0ZSAwL1Jlc291cmNlcyAzIDAgUi9QYXJlbnQgMiAwIFIvQ29udGVu"
    "dHNbNiAwIFIgNyAwIFJdPj4KZW5kb2JqCgo1IDAgb2JqCjw8L1R5cGUvRm9udC9TdWJ0eXBlL1R5cGUxL0Jhc2VGb250L0hlbHZl"
    "dGljYS9FbmNvZGluZy9XaW5BbnNpRW5jb2Rpbmc+PgplbmRvYmoKCjYgMCBvYmoKPDwvTGVuZ3RoIDkwL0ZpbHRlci9GbGF0ZURl"
    "Y29kZT4+CnN0cmVhbQp4nA2IOwqAQAwF+5wiN3A/2RcEsRBs7IR0Yre7WGhh4/kNAwMz9NJiFDk4kZMLge2h4Wr358HW+Zgko6Oi"
    "akHDqKJjCiWjOJKCqCZENP95Pm2j1WinH4wFFEIKZW5kc3RyZWFtCmVuZG9iagoKNyAwIG9iago8PC9MZW5ndGggMTE4L0ZpbHRl"
    "ci9GbGF0ZURlY29kZT4+CnN0cmVhbQp42h2MMQoCUQxE+5wiNzCZ5CcuiMWCjZ3wO7GQ9S8WWth4frPymFfMwNCH5k7KUiijZML9"
    "TbvneH154r7y9eCaGZoIT4NkSyl7rBC4NSwmGxgQ92ih4bHEFCOa3SFmprU8/g8W+2pgWxLjeOtnOnW60A8D3R4RCmVuZHN0cmVh"
    "bQplbmRvYmoKCnhyZWYKMCA4CjAwMDAwMDAwMDAgNjU1MzUgZiAKMDAwMDAwMDA0MiAwMDAwMCBuIAowMDAwMDAwMTIwIDAwMDAw"
    "IG4gCjAwMDAwMDAxNzIgMDAwMDAgbiAKMDAwMDAwMDIxMyAwMDAwMCBuIAowMDAwMDAwMzI2IDAwMDAwIG4gCjAwMDAwMDA0MTUg"
    "MDAwMDAgbiAKMDAwMDAwMDU3MyAwMDAwMCBuIAoKdHJhaWxlcgo8PC9TaXplIDgvUm9vdCAxIDAgUj4+CnN0YXJ0eHJlZgo3NjAK"
    "JSVFT0YK"
)


# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="parser_version", values=(VERSION,), note="results of another parser are not comparable"),
        Mandatory(path="engine"),
        Bounds(path="page_count", ge=1, le=MAX_PAGES_CAP),
        Bounds(path="pages[].number", ge=1, le=MAX_PAGES_CAP),
        Bounds(path="pages[].chars", ge=0, le=MAX_PAGE_TEXT_CHARS),
        Bounds(path="sections[].level", ge=1, le=3),
        Mandatory(path="sections[].heading"),
        Bounds(path="needs_ocr[]", ge=1, le=MAX_PAGES_CAP),
        Format(path="language", format="language_code"),
    ),
)

PARSE_PDF: JobType[ParsePdfPayload, ParsePdfResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=ParsePdfPayload,
    result_type=ParsePdfResult,
    result_rules=RESULT_RULES,
    handler=parse_pdf,
    consent_scope="documents",
    description="Text per page, tables, metadata, sections and scanned pages of a PDF (CC-63)",
    sample_payloads=(
        ParsePdfPayload(document=InlineDocument(media_type=PDF, data=_SAMPLE_PDF, size=len(_SAMPLE_PDF))),
        ParsePdfPayload(
            document=InlineDocument(media_type=PDF, data=_SAMPLE_PDF, size=len(_SAMPLE_PDF)), tables=False, max_pages=1
        ),
    ),
)
