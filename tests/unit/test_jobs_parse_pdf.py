"""parse_pdf on generated grant-funding PDFs: text per page without page furniture, the table of
amounts and deadlines as rows, metadata with ISO dates, sections by headings, scanned pages."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from ccn_jobs.demo_documents import grant_document, grant_pdf
from ccn_jobs.parse_pdf import VERSION, TableBudget, iso_date, ocr_tessdata, ruled_area
from ccn_jobs.pdf_reading import pymupdf_module
from ccn_jobs.registry import JOB_TYPES, decode_payload, decode_result, run_job
from ccn_proto.documents import (
    MAX_PDF_TEXT_CHARS,
    MAX_TABLE_CHARS,
    MAX_TABLES,
    ParsePdfPayload,
    ParsePdfResult,
    PdfTable,
)
from tests.support.documents import inline, scanned_pdf, with_text_page

PAGES = 4
PDF_BYTES = grant_pdf(2, pages=PAGES)
GRANT = grant_document(2)


def parse(data: bytes, **options: object) -> ParsePdfResult:
    result = run_job("parse_pdf", {"document": inline(data), **options})
    assert isinstance(result, ParsePdfResult)
    return result


@pytest.fixture(scope="module")
def parsed() -> ParsePdfResult:
    return parse(PDF_BYTES)


def test_parse_pdf_is_registered_with_its_version() -> None:
    job = JOB_TYPES["parse_pdf"]
    assert (job.name, job.version, job.payload_type, job.result_type) == (
        "parse_pdf",
        VERSION,
        ParsePdfPayload,
        ParsePdfResult,
    )


def test_every_page_has_its_text_without_running_header_or_footer(parsed: ParsePdfResult) -> None:
    assert parsed.page_count == PAGES and [page.number for page in parsed.pages] == list(range(1, PAGES + 1))
    for page in parsed.pages:
        assert page.chars == len(page.text) > 100
        assert "Guidance for applicants" not in page.text and f"of {PAGES}" not in page.text
        assert not page.needs_ocr and not page.ocr and page.images == 0
    assert parsed.pages[0].text.startswith(GRANT.title)
    assert GRANT.paragraphs[0] in parsed.pages[0].text
    assert parsed.needs_ocr == [] and not parsed.text_truncated and not parsed.tables_truncated
    assert parsed.language == "en"


def test_the_table_of_amounts_and_deadlines_comes_back_as_rows(parsed: ParsePdfResult) -> None:
    assert len(parsed.tables) == 1
    table = parsed.tables[0]
    assert table.page == 1
    assert table.header == ["Round", "Maximum grant", "Closing date"]
    assert table.rows == [["Round", "Maximum grant", "Closing date"], *[list(row) for row in GRANT.rounds]]


def test_tables_can_be_left_out() -> None:
    assert parse(PDF_BYTES, tables=False).tables == []


def test_metadata_with_iso_dates(parsed: ParsePdfResult) -> None:
    meta = parsed.metadata
    assert meta.title == GRANT.title and meta.author == GRANT.funder and meta.subject == "Funding guidance"
    assert meta.keywords is None
    assert meta.created_at == "2026-11-01T09:00:00+00:00"
    assert meta.modified_at == "2026-11-02T10:00:00+01:00"


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("D:20270315", "2027-03-15"),
        ("D:2027", "2027-01-01"),
        ("D:20270315143000Z", "2027-03-15T14:30:00Z"),
        ("D:20270315143000-05'30'", "2027-03-15T14:30:00-05:30"),
        ("D:20270315143000", "2027-03-15T14:30:00"),
        ("D:20270231", None),
        ("D:20271315", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_pdf_dates_become_iso(raw: str, iso: str | None) -> None:
    assert iso_date(raw) == iso


def test_sections_are_found_by_headings(parsed: ParsePdfResult) -> None:
    headings = [(section.heading, section.level) for section in parsed.sections]
    assert headings[0] == (GRANT.title.split(":")[0] + ": guidance for applicants", 1) or headings[0][1] == 1
    found = {heading for heading, _ in headings}
    assert set(GRANT.headings) <= found
    assert all(level == 2 for heading, level in headings if heading in GRANT.headings)
    assert next(section.page for section in parsed.sections if section.heading == GRANT.headings[0]) == 1
    assert not any("Round" in heading or "Page" in heading for heading in found)


def test_a_scanned_page_is_reported_not_read_without_ocr() -> None:
    result = parse(with_text_page(scanned_pdf(), "A page with a text layer about community grants."))
    assert [page.needs_ocr for page in result.pages] == [True, False]
    assert result.pages[0].images == 1 and result.pages[0].text == ""
    assert result.needs_ocr == [1]
    assert "tesseract" not in result.engine


def test_ocr_reads_a_scanned_page_where_the_engine_is_installed() -> None:
    """With the engine (Debian's tesseract-ocr-eng) the page is read; without it, it is reported."""
    result = parse(scanned_pdf("SCANNED GRANT NOTICE 2027"), ocr=True)
    page = result.pages[0]
    if ocr_tessdata() is None:
        assert page.needs_ocr and not page.ocr and result.needs_ocr == [1]
        assert "tesseract" not in result.engine
    else:
        assert page.ocr and not page.needs_ocr and result.needs_ocr == []
        assert "GRANT NOTICE" in page.text.upper()
        assert result.engine.endswith("+ tesseract eng")


def test_results_satisfy_their_own_schema(parsed: ParsePdfResult) -> None:
    assert decode_result("parse_pdf", msgspec.json.encode(parsed)) == parsed


def test_payload_limits_are_bounded_by_the_hard_caps() -> None:
    for bad in ({"max_pages": 0}, {"max_pages": 2001}, {"time_limit_s": 0}, {"time_limit_s": 121}, {"ocr": "yes"}):
        with pytest.raises(ValueError):
            decode_payload("parse_pdf", {"document": inline(b"%PDF"), **bad})
    with pytest.raises(ValueError):
        decode_payload("parse_pdf", {"document": {"kind": "text", "media_type": "text/html", "text": "<p>"}})


def digest() -> str:
    """For the cross-process check in test_jobs_documents."""
    return hashlib.sha256(msgspec.json.encode(parse(PDF_BYTES))).hexdigest()


def test_same_pdf_same_bytes_within_a_process(parsed: ParsePdfResult) -> None:
    assert msgspec.json.encode(parse(PDF_BYTES)) == msgspec.json.encode(parsed)


def _stroke(
    *items: tuple[object, ...], rect: tuple[float, float, float, float] = (0, 0, 100, 100)
) -> dict[str, object]:
    return {"type": "s", "items": list(items), "rect": rect}


def test_find_tables_runs_only_where_lines_could_rule_a_table() -> None:
    rule = _stroke(("l", (50, 100), (500, 100)), rect=(50, 100, 500, 100))
    logo = {"type": "f", "items": [("re", (0, 0, 40, 40), 1)] * 6, "rect": (0, 0, 40, 40)}
    assert ruled_area([rule]) is None
    assert ruled_area([logo]) is None
    cells = [
        _stroke(("re", (50, 100 + 20 * row, 150, 120 + 20 * row), 1), rect=(50, 100 + 20 * row, 150, 120 + 20 * row))
        for row in range(2)
    ]
    assert ruled_area(cells) == (48, 98, 152, 142)
    grid = [_stroke(("l", (50, y), (300, y)), rect=(50, y, 300, y)) for y in (10, 30, 50)]
    grid += [_stroke(("l", (x, 10), (x, 50)), rect=(x, 10, x, 50)) for x in (50, 300)]
    assert ruled_area(grid) == (48, 8, 302, 52)


def test_page_text_is_cut_at_the_documents_bound_and_says_so() -> None:
    pymupdf = pymupdf_module()
    document = pymupdf.open()
    line = "Grants for community groups across the region, paid in two instalments. "
    for _ in range(130):
        page = document.new_page()
        page.insert_textbox(pymupdf.Rect(40, 100, 560, 740), line * 14, fontsize=8)  # clear of the margins
    result = parse(document.tobytes(deflate=True))
    assert result.text_truncated and not result.tables_truncated
    assert sum(page.chars for page in result.pages) <= MAX_PDF_TEXT_CHARS
    assert result.pages[0].chars > 900 and result.pages[-1].chars == 0
    assert len(msgspec.json.encode(result)) < 768 * 1024


def test_tables_past_their_bound_are_left_out_and_say_so() -> None:
    budget = TableBudget()
    wide = PdfTable(page=1, header=None, rows=[["x" * 1000] * 10] * 3)  # 30,000 characters
    assert budget.take(wide) and not budget.exhausted
    assert not budget.take(wide) and budget.exhausted
    assert not budget.take(PdfTable(page=2, header=None, rows=[["small"]]))  # nothing after the first miss
    many = TableBudget()
    assert all(many.take(PdfTable(page=1, header=None, rows=[["a"]])) for _ in range(MAX_TABLES))
    assert not many.take(PdfTable(page=1, header=None, rows=[["a"]])) and many.exhausted
    assert MAX_TABLE_CHARS < 2 * 30_000
