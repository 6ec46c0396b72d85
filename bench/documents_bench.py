"""Documents: parse_pdf pages/s and extract_text documents/s per format, on one core.

The corpus is generated (ccn_jobs.demo_documents): grant-opportunity guidance with a title,
headed sections, a ruled table of amounts and closing dates, running headers and footers,
several pages each. Every job goes through `run_job` as a node runs it (the payload decoded
from the dict a JSON event carries, the handler, the result Struct), in this one process and
thread: PyMuPDF, python-docx and trafilatura each use one core. A first run of each format
loads the models and libraries before the clock starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from bench.measure import Figure, absolute_target, figure
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.demo_documents import grant_docx, grant_pdf, grant_text
from ccn_jobs.registry import run_job
from ccn_proto.documents import DOCX, PDF, PLAIN_TEXT, InlineDocument

GROUP = "documents"
PDF_PAGES_TARGET = 100.0  # issue #18: PDF parsing >= 100 pages/s per core


def _inline(data: bytes, media_type: str) -> dict[str, Any]:
    document = InlineDocument(media_type=media_type, data=data, size=len(data))  # type: ignore[arg-type]
    return {"document": msgspec.to_builtins(document)}


def _timed(name: str, payloads: list[tuple[str, dict[str, Any]]], units: Callable[[Any], int], notes: str) -> Figure:
    job_type, first = payloads[0]
    run_job(job_type, first)  # warm: imports, the language model
    latencies: list[float] = []
    count = 0
    started = time.perf_counter()
    for job_type, payload in payloads:
        begun = time.perf_counter()
        count += units(run_job(job_type, payload))
        latencies.append(time.perf_counter() - begun)
    return figure(name, GROUP, count, time.perf_counter() - started, latencies, notes)


def document_figures(*, quick: bool) -> list[Figure]:
    documents, pages = (6, 8) if quick else (40, 12)
    pdfs = [grant_pdf(index, pages=pages) for index in range(documents)]
    parse = _timed(
        "parse_pdf (pages/s, tables + sections)",
        [("parse_pdf", _inline(pdf, PDF)) for pdf in pdfs],
        lambda result: int(result.page_count),
        f"{documents} PDFs of {pages} pages; latency per document",
    )
    figures = [absolute_target(parse, PDF_PAGES_TARGET, "pages")]
    formats: list[tuple[str, list[dict[str, Any]], str]] = [
        ("PDF", [_inline(pdf, PDF) for pdf in pdfs], f"{pages} pages each"),
        ("DOCX", [_inline(grant_docx(index), DOCX) for index in range(documents)], "python-docx"),
        ("TXT", [_inline(grant_text(index).encode(), PLAIN_TEXT) for index in range(documents)], "decoded, normalised"),
        (
            "HTML",
            [{"html": page.html, "url": page.url} for page in grant_pages(documents)],
            "demo corpus pages, trafilatura",
        ),
    ]
    for label, payloads, notes in formats:
        figures.append(
            _timed(
                f"extract_text {label} (documents/s)",
                [("extract_text", payload) for payload in payloads],
                lambda _result: 1,
                notes,
            )
        )
    return figures
