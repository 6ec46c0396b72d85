"""The demo's second batch (`make run`): every registered job type at work on the demo corpus,
so that each kind of result can be looked at (`ccn jobs result JOB_ID`).

- extract_text on a PDF, a DOCX and a plain-text document (ccn_jobs.demo_documents), beside
  the first batch's HTML pages;
- parse_pdf on two of those PDFs;
- classify_document and extract_entities on the text and title of the first demo pages, as
  extract_text gives them (computed here, as the step before would in a pipeline);
- every other registered type (link_entities, enrich_opportunity, score_opportunity, and any
  added with `ccn new-job-type`) on its own sample payloads.

The same jobs on every run, in the same order (the DOCX's ZIP carries the time it was written)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ccn_jobs.classify_document import ClassifyDocumentPayload
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.demo_documents import grant_docx, grant_pdf, grant_text
from ccn_jobs.extract_entities import ExtractEntitiesPayload
from ccn_jobs.extract_text import ExtractTextPayload, extract_text
from ccn_jobs.registry import JOB_TYPES
from ccn_proto.documents import DOCX, PDF, PLAIN_TEXT, InlineDocument, InlineText, ParsePdfPayload

TEXT_PAGES = 3
PDFS = 2
REFERENCE_DATE = "2026-01-15"  # the demo corpus's deadlines are read against this date


class _JobLine(msgspec.Struct, frozen=True):
    job_type: str
    payload: msgspec.Struct


def job_type_examples(text_pages: int = TEXT_PAGES) -> list[tuple[str, msgspec.Struct]]:
    """(job type, payload) pairs, in a fixed order: every registered type at least once, but for
    the crawl types, which fetch through the fetch proxy: the demo's campaign runs those against
    the local fixture web (a sample's URL is on no allow-list, so its fetch would be refused)."""
    examples: list[tuple[str, msgspec.Struct]] = []
    pdfs = [grant_pdf(index) for index in range(PDFS)]
    docx = grant_docx(0)
    examples += [
        ("extract_text", ExtractTextPayload(document=InlineDocument(media_type=PDF, data=pdfs[0], size=len(pdfs[0])))),
        ("extract_text", ExtractTextPayload(document=InlineDocument(media_type=DOCX, data=docx, size=len(docx)))),
        ("extract_text", ExtractTextPayload(document=InlineText(media_type=PLAIN_TEXT, text=grant_text(1)))),
    ]
    examples += [
        ("parse_pdf", ParsePdfPayload(document=InlineDocument(media_type=PDF, data=pdf, size=len(pdf)))) for pdf in pdfs
    ]
    for page in grant_pages(text_pages):
        extracted = extract_text(ExtractTextPayload(html=page.html, url=page.url))
        examples += [
            ("classify_document", ClassifyDocumentPayload(text=extracted.text, title=extracted.title, url=page.url)),
            ("extract_entities", ExtractEntitiesPayload(text=extracted.text, reference_date=REFERENCE_DATE)),
        ]
    covered = {name for name, _ in examples}
    for name, job in JOB_TYPES.items():
        if name not in covered and job.crawl is None:
            examples += [(name, payload) for payload in job.sample_payloads]
    return examples


def as_jsonl(examples: Sequence[tuple[str, msgspec.Struct]]) -> bytes:
    """One `{"job_type": ..., "payload": ...}` per line, as `POST /jobs/batch` takes them."""
    encoder = msgspec.json.Encoder()
    return b"".join(encoder.encode(_JobLine(name, payload)) + b"\n" for name, payload in examples)
