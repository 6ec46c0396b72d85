# ruff: noqa: RUF001  (text in many scripts is the point: Greek and CJK punctuation are meant)
"""Documents as job input (inline, by reference, checked against their magic) and extract_text
on PDF, DOCX and plain text: furniture goes, text, title, language and page count stay, and
the same document gives the same bytes everywhere."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys

import msgspec
import pytest

from ccn_jobs.demo_documents import grant_document, grant_docx, grant_pdf, grant_text
from ccn_jobs.documents import Deadline, checked_body, fetch_bodies, references, resolve_references, sniff_media_type
from ccn_jobs.errors import DocumentRefused, InvalidPayload
from ccn_jobs.extract_text import VERSION, extract_text
from ccn_jobs.registry import decode_payload, decode_result, run_job
from ccn_jobs.text_decoding import decode_text
from ccn_proto.documents import (
    DOCX,
    HTML,
    MAX_INLINE_BYTES,
    PDF,
    PLAIN_TEXT,
    DocumentRef,
    ExtractTextPayload,
    ExtractTextResult,
    InlineDocument,
    InlineText,
)
from tests.support.documents import inline, reference

PDF_BYTES = grant_pdf(3, pages=5)
DOCX_BYTES = grant_docx(3)
GRANT = grant_document(3)


def extract(data: bytes, media_type: str, charset: str | None = None) -> ExtractTextResult:
    result = run_job("extract_text", {"document": inline(data, media_type, charset)})
    assert isinstance(result, ExtractTextResult)
    return result


def refusal(job_type: str, payload: dict[str, object]) -> DocumentRefused:
    with pytest.raises(DocumentRefused) as caught:
        run_job(job_type, payload)
    return caught.value


# --- input ---------------------------------------------------------------------------------


def test_inline_bytes_travel_base64_with_their_size() -> None:
    encoded = msgspec.json.encode({"document": inline(b"%PDF-1.7 ...%%EOF", PDF)})
    assert b'"data":"JVBERi0xLjcgLi4uJSVFT0Y="' in encoded
    payload = decode_payload("extract_text", encoded)
    assert isinstance(payload, ExtractTextPayload) and isinstance(payload.document, InlineDocument)
    assert payload.document.data == b"%PDF-1.7 ...%%EOF"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"kind": "inline", "media_type": PDF, "data": "JVBERg==", "size": 5}, "document"),
        ({"kind": "inline", "media_type": PDF, "data": "not base64!", "size": 4}, "document.data"),
        ({"kind": "inline", "media_type": "image/png", "data": "JVBERg==", "size": 4}, "document.media_type"),
        ({"kind": "ref", "sha256": "ab" * 32, "size": 2**40, "media_type": PDF}, "document.size"),
        ({"kind": "ref", "sha256": "XYZ", "size": 10, "media_type": PDF}, "document.sha256"),
        ({"kind": "url", "href": "https://example.org/a.pdf"}, "document"),
        ({"kind": "text", "media_type": PDF, "text": "%PDF"}, "document.media_type"),
    ],
    ids=[
        "size-lies",
        "bad-base64",
        "unsupported-type",
        "ref-too-large",
        "ref-bad-digest",
        "unknown-kind",
        "pdf-as-text",
    ],
)
def test_payloads_that_violate_their_schema_are_refused_naming_the_field(
    document: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("extract_text", {"document": document})
    assert (caught.value.field or "document").startswith(field)


def test_inline_bytes_are_bounded_when_decoded() -> None:
    too_big = b"x" * (MAX_INLINE_BYTES + 1)
    with pytest.raises(InvalidPayload):
        decode_payload("extract_text", msgspec.json.encode({"document": inline(too_big, PLAIN_TEXT)}))


def test_html_and_document_together_or_neither_are_refused() -> None:
    with pytest.raises(InvalidPayload, match="not both"):
        decode_payload("extract_text", {"html": "<p>x</p>", "document": inline(b"x", PLAIN_TEXT)})
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("extract_text", {})
    assert caught.value.field == "html"


@pytest.mark.parametrize(
    ("data", "sniffed"),
    [
        (b"%PDF-1.4\n", PDF),
        (b"junk before the header %PDF-1.4\n", PDF),
        (b"PK\x03\x04rest", "application/zip"),
        (b"\x89PNG\r\n\x1a\nrest", "image/png"),
        (b"<html><body>hi</body></html>", None),
        ("Grüße".encode(), None),
    ],
)
def test_magic_bytes_are_sniffed(data: bytes, sniffed: str | None) -> None:
    assert sniff_media_type(data) == sniffed


@pytest.mark.parametrize(
    ("data", "declared"),
    [(PDF_BYTES, HTML), (PDF_BYTES, PLAIN_TEXT), (PDF_BYTES, DOCX), (DOCX_BYTES, PDF), (b"<html></html>", PDF)],
    ids=["pdf-as-html", "pdf-as-text", "pdf-as-docx", "docx-as-pdf", "html-as-pdf"],
)
def test_a_document_declared_as_something_else_is_refused(data: bytes, declared: str) -> None:
    refused = refusal("extract_text", {"document": inline(data, declared)})
    assert refused.code == "media_type_mismatch"
    assert str(refused).startswith("media_type_mismatch: extract_text: declared ")


def test_a_reference_is_resolved_into_the_payload_before_the_handler_runs() -> None:
    ref = reference(PDF_BYTES)
    payload = ExtractTextPayload(document=ref)
    assert references(payload) == (ref,)
    resolved = resolve_references(payload, {ref.sha256: PDF_BYTES})
    assert isinstance(resolved.document, InlineDocument) and resolved.document.data == PDF_BYTES
    assert resolve_references(payload, {}) is payload
    by_ref = run_job("extract_text", msgspec.to_builtins(payload), bodies={ref.sha256: PDF_BYTES})
    assert by_ref == extract(PDF_BYTES, PDF)


def test_an_unresolved_reference_fails_typed_and_does_no_io() -> None:
    refused = refusal("extract_text", {"document": msgspec.to_builtins(reference(PDF_BYTES))})
    assert refused.code == "not_resolved"


class _Store:
    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies
        self.reads: list[tuple[str, int]] = []

    async def read(self, sha256: str, size: int) -> bytes:
        self.reads.append((sha256, size))
        if sha256 not in self.bodies:
            raise LookupError(f"no body {sha256}")
        return self.bodies[sha256]


def test_fetch_bodies_reads_each_reference_once_and_checks_it() -> None:
    ref = reference(PDF_BYTES)
    store = _Store({ref.sha256: PDF_BYTES})
    bodies = asyncio.run(fetch_bodies(ExtractTextPayload(document=ref), store, "extract_text"))
    assert bodies == {ref.sha256: PDF_BYTES}
    assert store.reads == [(ref.sha256, len(PDF_BYTES))]


@pytest.mark.parametrize(
    ("stored", "code"),
    [(None, "body_missing"), (PDF_BYTES[:-1], "body_mismatch"), (PDF_BYTES[:-1] + b"!", "body_mismatch")],
    ids=["absent", "short", "other-bytes-same-size"],
)
def test_fetch_bodies_refuses_a_body_that_is_not_the_reference(stored: bytes | None, code: str) -> None:
    ref = reference(PDF_BYTES)
    store = _Store({} if stored is None else {ref.sha256: stored})
    with pytest.raises(DocumentRefused) as caught:
        asyncio.run(fetch_bodies(ExtractTextPayload(document=ref), store, "extract_text"))
    assert caught.value.code == code


def test_checked_body_gives_inline_text_as_text() -> None:
    body = checked_body(InlineText(media_type=HTML, text="<p>x</p>"), "extract_text", frozenset({HTML}))
    assert body.text == "<p>x</p>" and body.data is None


def test_the_deadline_fails_the_job_between_pages() -> None:
    now = [0.0]
    deadline = Deadline(5.0, "parse_pdf", clock=lambda: now[0])
    deadline.check("page 1")
    now[0] = 5.5
    with pytest.raises(DocumentRefused, match=r"^deadline_exceeded: parse_pdf: over the time limit of 5 s at page 2"):
        deadline.check("page 2")


# --- decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "declared", "text", "codec"),
    [
        ("Fördermittel für Vereine".encode(), None, "Fördermittel für Vereine", "utf-8"),
        ("Fördermittel".encode("cp1252"), "windows-1252", "Fördermittel", "cp1252"),
        ("Fördermittel für Vereine".encode(), "iso-8859-1", "Fördermittel für Vereine", "utf-8"),
        ("\ufeffGrant".encode(), None, "Grant", "utf-8-sig"),
        ("Grant notes".encode("utf-16"), None, "Grant notes", "utf-16"),
        (b"Subvenciones", "no-such-charset", "Subvenciones", "utf-8"),
        ("补助金申请指南，截止日期为三月。".encode("gb18030"), "utf-8", "补助金申请指南，截止日期为三月。", None),
    ],
    ids=[
        "utf8",
        "declared-cp1252",
        "utf8-beats-a-wrong-declaration",
        "bom",
        "utf16-bom",
        "unknown-charset",
        "wrong-declared-gb18030",
    ],
)
def test_text_bytes_are_decoded_whatever_was_declared(
    data: bytes, declared: str | None, text: str, codec: str | None
) -> None:
    decoded, used = decode_text(data, declared)
    assert decoded == text
    if codec is not None:
        assert used == codec


def test_undecodable_bytes_decode_with_replacement_never_an_error() -> None:
    decoded, _ = decode_text(bytes(range(256)) * 4, "utf-8")
    assert isinstance(decoded, str) and decoded


# --- extract_text by format ----------------------------------------------------------------


def test_pdf_text_keeps_the_content_and_drops_running_headers_and_footers() -> None:
    result = extract(PDF_BYTES, PDF)
    assert result.media_type == PDF and result.pages == 5 and result.extractor_version == VERSION
    assert result.title == GRANT.title
    assert result.language == "en" and result.confidence >= 0.95
    for heading in GRANT.headings:
        assert heading in result.text.split("\n")
    assert GRANT.paragraphs[0] in result.text  # wrapped lines joined into their paragraph
    assert "Guidance for applicants" not in result.text and "Page 2 of 5" not in result.text
    assert all(date in result.text for _, _, date in GRANT.rounds)


def test_docx_text_keeps_body_and_tables_and_drops_headers_and_footers() -> None:
    result = extract(DOCX_BYTES, DOCX)
    assert result.media_type == DOCX and result.pages is None
    assert result.title == GRANT.title and result.language == "en"
    assert "Round 1 | " + GRANT.rounds[0][1] + " | " + GRANT.rounds[0][2] in result.text
    assert all(paragraph in result.text for paragraph in GRANT.paragraphs)
    assert "Guidance for applicants" not in result.text and "for illustration only" not in result.text


def test_plain_text_is_normalised() -> None:
    messy = "  " + grant_text(3).replace("\n", "\r\n").replace(" ", " \t ") + "\x00\x07"
    result = extract(messy.encode(), PLAIN_TEXT)
    assert result.media_type == PLAIN_TEXT and result.title is None and result.language == "en"
    assert result.text.split("\n")[0] == GRANT.title
    assert all(line == " ".join(line.split()) and line for line in result.text.split("\n"))


def test_html_given_as_bytes_with_a_wrong_declared_charset_is_still_read() -> None:
    body = "<html><body><article><h1>Förderprogramm</h1><p>" + "Gemeinnützige Vereine können Anträge stellen. " * 10
    html = (body + "</p></article></body></html>").encode("cp1252")
    result = extract(html, HTML, charset="utf-8")
    assert "Gemeinnützige Vereine" in result.text and result.language == "de"


@pytest.mark.parametrize(
    ("sentence", "language"),
    [
        ("The foundation funds community groups that run projects for local people in the valley.", "en"),
        ("Die Stiftung fördert gemeinnützige Vereine, die Projekte für Menschen in der Nachbarschaft anbieten.", "de"),
        ("La fondation soutient les associations qui mènent des projets pour les habitants du quartier.", "fr"),
        ("Фонд поддерживает некоммерческие организации, которые реализуют проекты для местных жителей.", "ru"),
        ("يدعم الصندوق المنظمات غير الربحية التي تنفذ مشاريع لسكان الأحياء المحلية في المنطقة.", "ar"),
        ("基金会资助为当地居民开展项目的社区团体和非营利组织，申请截止日期为三月底。", "zh"),
        ("財団は地域住民のためのプロジェクトを行う非営利団体に助成金を交付します。締め切りは三月です。", "ja"),
        ("फाउंडेशन उन सामुदायिक समूहों को अनुदान देता है जो स्थानीय लोगों के लिए परियोजनाएं चलाते हैं।", "hi"),
        ("Το ίδρυμα χρηματοδοτεί μη κερδοσκοπικές οργανώσεις που υλοποιούν έργα για τους κατοίκους.", "el"),
    ],
)
def test_text_in_many_languages_and_scripts(sentence: str, language: str) -> None:
    result = extract((sentence + "\n").encode() * 5, PLAIN_TEXT)
    assert result.language == language
    assert sentence in result.text


def test_results_satisfy_their_own_schema_and_carry_the_version() -> None:
    for result in (extract(PDF_BYTES, PDF), extract(DOCX_BYTES, DOCX), extract(grant_text(1).encode(), PLAIN_TEXT)):
        assert decode_result("extract_text", msgspec.json.encode(result)) == result
        assert result.extractor_version == VERSION


def test_a_result_written_before_the_new_fields_still_decodes() -> None:
    old = {"text": "Grant", "title": None, "language": None, "confidence": 0.0, "chars": 5}
    result = decode_result("extract_text", old)
    assert isinstance(result, ExtractTextResult)
    assert (result.media_type, result.pages, result.extractor_version) == (HTML, None, "1")


def digest() -> str:
    results = [extract(PDF_BYTES, PDF), extract(DOCX_BYTES, DOCX), extract(grant_text(3).encode(), PLAIN_TEXT)]
    return hashlib.sha256(msgspec.json.encode(results)).hexdigest()


def test_same_document_same_bytes_in_another_process_with_another_hash_seed() -> None:
    """extract_text on PDF, DOCX and TXT, and parse_pdf, in one other process (one start-up)."""
    script = (
        "from tests.unit import test_jobs_documents as documents, test_jobs_parse_pdf as pdf\n"
        "print(documents.digest(), pdf.digest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "777"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    from tests.unit.test_jobs_parse_pdf import digest as parse_pdf_digest

    assert out.stdout.split() == [digest(), parse_pdf_digest()]


def test_extract_text_direct_call_matches_run_job() -> None:
    payload = ExtractTextPayload(document=InlineDocument(media_type=PDF, data=PDF_BYTES, size=len(PDF_BYTES)))
    assert extract_text(payload) == extract(PDF_BYTES, PDF)


def test_documents_are_refs_of_the_right_shape() -> None:
    ref = DocumentRef(sha256="0" * 64, size=1, media_type=PDF)
    assert msgspec.to_builtins(ref) == {
        "kind": "ref",
        "sha256": "0" * 64,
        "size": 1,
        "media_type": PDF,
        "charset": None,
    }
