"""Hostile documents: each fails the job with a typed reason (DocumentRefused, a ValueError the
node sends back as the fail reason), within its limits: never a crash, a hang or an unbounded
expansion. Fixtures are made here, not committed."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest

from ccn_jobs.demo_documents import grant_docx, grant_pdf
from ccn_jobs.docx_reading import MAX_EXPANDED_BYTES
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.extract_text import EMPTY_RESULT
from ccn_jobs.registry import run_job
from ccn_proto.documents import DOCX, HTML, MAX_HTML_CHARS, PDF, PLAIN_TEXT, ExtractTextResult, ParsePdfResult
from tests.support.documents import (
    docx_bomb,
    encrypted_pdf,
    inline,
    lying_zip_docx,
    many_pages_pdf,
    page_count_lie,
    raw_pdf,
    reference,
)

GOOD_PDF = grant_pdf(5, pages=3)
BOTH = ("extract_text", "parse_pdf")


def run_by_reference(job_type: str, data: bytes, media_type: str = PDF, **options: Any) -> msgspec.Struct:
    """Bodies too big to go inline come by reference, as the node resolves them."""
    ref = reference(data, media_type)
    return run_job(job_type, {"document": msgspec.to_builtins(ref), **options}, bodies={ref.sha256: data})


def refused(job_type: str, data: bytes, media_type: str = PDF, **options: Any) -> DocumentRefused:
    started = time.perf_counter()
    with pytest.raises(DocumentRefused) as caught:
        run_by_reference(job_type, data, media_type, **options)
    assert time.perf_counter() - started < 10, "a refusal must come quickly"
    assert str(caught.value).startswith(f"{caught.value.code}: {job_type}: ")
    return caught.value


def _malformed_xref(pdf: bytes, *, destroy_objects: bool) -> bytes:
    """The xref table's offsets overwritten with garbage; with `destroy_objects`, the object
    headers too, so that no repair can find them."""
    start = pdf.rindex(b"xref\n")
    broken = pdf[:start] + pdf[start:].replace(b" 00000 n ", b" 99999 n ").replace(b"0000000", b"9999999")
    if destroy_objects:
        broken = broken.replace(b" 0 obj", b" 0 jbo")
    return broken


@pytest.mark.parametrize("job_type", BOTH)
@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", "corrupt"),
        (lambda: encrypted_pdf(), "encrypted"),
        (lambda: GOOD_PDF[: len(GOOD_PDF) // 2], "truncated"),
        (lambda: GOOD_PDF[:-200], "truncated"),
        (lambda: page_count_lie(100_000), "corrupt"),
        (lambda: raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]), "empty"),
        (lambda: _malformed_xref(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>"]), destroy_objects=True), "corrupt"),
    ],
    ids=[
        "corrupt",
        "encrypted",
        "truncated-half",
        "truncated-tail",
        "declared-100k-pages",
        "no-pages",
        "malformed-xref",
    ],
)
def test_hostile_pdfs_fail_typed(job_type: str, make: Any, code: str) -> None:
    assert refused(job_type, make()).code == code


@pytest.mark.parametrize("job_type", BOTH)
def test_a_zero_byte_pdf_fails_typed(job_type: str) -> None:
    with pytest.raises(DocumentRefused) as caught:
        run_job(job_type, {"document": inline(b"")})
    assert caught.value.code == "empty"


@pytest.mark.parametrize("job_type", BOTH)
def test_a_page_bomb_of_100_000_real_pages_is_refused_by_its_count(job_type: str) -> None:
    bomb = many_pages_pdf(100_000)  # about 10 MB: it comes by reference
    assert refused(job_type, bomb).code == "too_many_pages"


def test_the_page_limit_is_the_payloads_within_the_cap() -> None:
    assert isinstance(run_by_reference("parse_pdf", GOOD_PDF, max_pages=3), ParsePdfResult)
    assert refused("parse_pdf", GOOD_PDF, max_pages=2).code == "too_many_pages"
    assert refused("extract_text", many_pages_pdf(2_001), max_pages=2_000).code == "too_many_pages"


def test_a_repairable_xref_is_repaired_and_read() -> None:
    result = run_by_reference("parse_pdf", grant_pdf_uncompressed())
    assert isinstance(result, ParsePdfResult) and result.page_count == 2
    repaired = run_by_reference("parse_pdf", _malformed_xref(grant_pdf_uncompressed(), destroy_objects=False))
    assert isinstance(repaired, ParsePdfResult)
    assert [page.text for page in repaired.pages] == [page.text for page in result.pages]


def grant_pdf_uncompressed() -> bytes:
    from ccn_jobs.pdf_reading import pymupdf_module

    document = pymupdf_module().open(stream=grant_pdf(6, pages=2), filetype="pdf")
    data: bytes = document.tobytes(garbage=0, deflate=False, use_objstms=0, expand=255)
    return data


def test_the_time_limit_is_checked_between_pages() -> None:
    many = many_pages_pdf(300)
    assert refused("parse_pdf", many, max_pages=2_000, time_limit_s=0.001).code == "deadline_exceeded"


@pytest.mark.parametrize("expanded", [256 << 20, pytest.param(1 << 30, marks=pytest.mark.slow)], ids=["256MiB", "1GiB"])
def test_a_docx_zip_bomb_is_refused_by_its_directory_before_any_expansion(expanded: int) -> None:
    bomb = docx_bomb(expanded)  # about 1 MB a GB-to-be, even at the fastest compression
    assert len(bomb) < expanded // 200
    error = refused("extract_text", bomb, DOCX)
    assert error.code == "too_large" and "expands to" in error.detail


def test_a_docx_that_lies_about_its_sizes_is_refused_having_expanded_at_most_the_lie() -> None:
    liar = lying_zip_docx(claimed=1_000, actual=MAX_EXPANDED_BYTES // 2)
    assert refused("extract_text", liar, DOCX).code in {"corrupt", "too_large"}


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"PK\x03\x04" + b"\x00" * 100, "corrupt"),
        (b"PK\x05\x06" + b"\x00" * 18, "media_type_mismatch"),  # an empty ZIP: no word/document.xml
    ],
    ids=["corrupt-zip", "zip-without-document"],
)
def test_broken_docx_fail_typed(data: bytes, code: str) -> None:
    assert refused("extract_text", data, DOCX).code == code


def test_a_docx_with_a_broken_document_part_fails_typed() -> None:
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(grant_docx(1)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as broken:
        for member in source.infolist():
            body = b"<w:document><unclosed>" if member.filename == "word/document.xml" else source.read(member)
            broken.writestr(member.filename, body)
    assert refused("extract_text", out.getvalue(), DOCX).code == "corrupt"


def _html(payload_html: str) -> ExtractTextResult:
    result = run_job("extract_text", {"html": payload_html})
    assert isinstance(result, ExtractTextResult)
    return result


def test_html_with_a_1_mb_single_line_is_read_within_bounds() -> None:
    line = "<p>" + "grant " * 200_000 + "</p>"  # 1.2 MB, no newline
    started = time.perf_counter()
    result = _html(f"<html><body><article>{line}</article></body></html>")
    assert time.perf_counter() - started < 20
    assert 0 < result.chars <= 200_000


def test_html_nested_100_000_deep_gives_an_empty_result() -> None:
    assert _html("<div>" * 100_000 + "deep" + "</div>" * 100_000) == EMPTY_RESULT


def test_html_bytes_declaring_a_wrong_encoding_in_meta_and_payload_are_read() -> None:
    html = (
        '<html><head><meta charset="utf-8"></head><body><article><h1>Subvenciones</h1><p>'
        + "Las asociaciones sin ánimo de lucro pueden solicitar ayudas para proyectos en su barrio. " * 8
        + "</p></article></body></html>"
    ).encode("latin-1")
    result = run_job("extract_text", {"document": inline(html, HTML, charset="shift_jis")})
    assert isinstance(result, ExtractTextResult)
    assert "ánimo de lucro" in result.text and result.language == "es"


def test_html_bytes_by_reference_are_bounded_like_inline_html() -> None:
    html = b"<p>" + b"a" * MAX_HTML_CHARS + b"</p>"
    assert refused("extract_text", html, HTML).code == "too_large"


def test_plain_text_by_reference_is_read_only_as_far_as_it_can_be_kept() -> None:
    text = ("Community grants are open to constituted groups in the valley. " * 40 + "\n") * 2_000  # 5 MB
    started = time.perf_counter()
    result = run_by_reference("extract_text", text.encode(), PLAIN_TEXT)
    assert time.perf_counter() - started < 10
    assert isinstance(result, ExtractTextResult) and result.language == "en" and result.chars > 0
