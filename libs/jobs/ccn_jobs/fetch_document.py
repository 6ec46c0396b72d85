"""Job type `fetch_document` (CC-62): one document (a PDF, a DOCX, plain text or HTML) fetched
through the fetch proxy and checked, so that a later job can read it by reference.

The crawl fetches exactly the job's `url`. The proxy has already bounded the transfer, refused
content types it does not allow and stored the body content-addressed (the node read it back
through the edge, checked against its reference). The handler then decides whether the
document is one the payload accepts:
- the declared media type is one of `media_types`;
- the bytes' magic agrees with it (ccn_jobs.documents.checked_body: a ZIP served as a PDF, an
  executable or an image served as text are refused as `media_type_mismatch`);
- it is at most `max_bytes` long;
- its sha256, computed here, is the one the proxy stored it under and, when the payload names
  one (`expected_sha256`), that one too.
An accepted document comes back as `document`, a DocumentRef to the stored body that an
extract_text or parse_pdf job can take as it is. A refused one comes back with `reason` and no
reference; a fetch the proxy refused or that failed comes back with its outcome in `fetch`.
None of these raise: the result says what happened."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import msgspec

from ccn_jobs.crawl import CrawledPage
from ccn_jobs.crawled_pages import CrawlUrl, PageFetch, Pages, is_success, page_fetch, single_url_crawl, the_page
from ccn_jobs.documents import checked_body, sniff_media_type
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.job_type import JobType
from ccn_jobs.result_rules import Allowed, Format, Mandatory, ResultRules, When
from ccn_proto.constraints import Sha256Hex, Version
from ccn_proto.documents import (
    DOCX,
    HTML,
    MAX_REFERENCED_BYTES,
    PDF,
    PLAIN_TEXT,
    DocumentRef,
    InlineDocument,
    MediaType,
)
from ccn_proto.fetch import FetchedPage

NAME = "fetch_document"
VERSION = "1"

DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024
Refusal = Literal[
    "not_fetched",  # the proxy refused or failed the fetch (see `fetch`), or it was not made
    "not_success",  # the site answered with a status other than 2xx
    "body_missing",  # a 2xx without a body the node could read
    "media_type_not_allowed",  # declared as a type the payload does not accept
    "media_type_mismatch",  # the bytes' magic contradicts the declared type
    "too_large",  # over the payload's max_bytes
    "body_mismatch",  # the bytes are not the body the proxy stored
    "checksum_mismatch",  # the bytes are not the payload's expected_sha256
]
SniffedType = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[a-z0-9.+/-]+$")]


class FetchDocumentPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: CrawlUrl
    media_types: Annotated[list[MediaType], msgspec.Meta(min_length=1, max_length=4)] = msgspec.field(
        default_factory=lambda: [PDF, DOCX, PLAIN_TEXT]
    )
    max_bytes: Annotated[int, msgspec.Meta(ge=1, le=MAX_REFERENCED_BYTES)] = DEFAULT_MAX_BYTES
    expected_sha256: Sha256Hex | None = None
    pages: Pages = msgspec.field(default_factory=list)


class FetchDocumentResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`accepted` with `document` (the stored body by reference) when every check passed;
    otherwise `reason`. `sha256`, `size` and `sniffed` (what the bytes' magic says: `text` when
    they carry none) describe the bytes whenever there were some."""

    fetch: PageFetch
    accepted: bool
    reason: Refusal | None = None
    detail: Annotated[str, msgspec.Meta(max_length=300)] = ""
    document: DocumentRef | None = None
    sha256: Sha256Hex | None = None
    size: Annotated[int, msgspec.Meta(ge=0, le=MAX_REFERENCED_BYTES)] | None = None
    sniffed: SniffedType | None = None
    fetcher_version: Version

    def __post_init__(self) -> None:
        if self.accepted != (self.document is not None) or self.accepted == (self.reason is not None):
            raise ValueError("an accepted document has a reference and no reason; a refused one the reverse")


def fetch_document(payload: FetchDocumentPayload) -> FetchDocumentResult:
    page = the_page(payload.pages, payload.url)
    fetch = page_fetch(payload.url, page)
    if page is None or not isinstance(page.outcome, FetchedPage):
        return _refused(fetch, "not_fetched", "the proxy gave no page")
    if not is_success(page):
        return _refused(fetch, "not_success", f"the site answered {page.outcome.status}")
    stored = page.outcome.body
    if stored is not None and stored.size > payload.max_bytes:
        return _refused(fetch, "too_large", f"{stored.size} bytes; at most {payload.max_bytes}")
    document = page.document
    if document is None or not document.data:
        return _refused(fetch, "body_missing", "no body was read")
    data = document.data
    digest = hashlib.sha256(data).hexdigest()
    sniffed = sniff_media_type(data) or "text"
    facts = (digest, len(data), sniffed)
    if document.media_type not in payload.media_types:
        return _refused(fetch, "media_type_not_allowed", f"{document.media_type} is not asked for", facts)
    try:
        checked_body(document, NAME, frozenset(payload.media_types))
    except DocumentRefused as refused:
        return _refused(fetch, "media_type_mismatch", refused.detail[:300], facts)
    if len(data) > payload.max_bytes:
        return _refused(fetch, "too_large", f"{len(data)} bytes; at most {payload.max_bytes}", facts)
    if stored is not None and stored.sha256 != digest:
        return _refused(fetch, "body_mismatch", f"stored as {stored.sha256}", facts)
    if payload.expected_sha256 is not None and payload.expected_sha256 != digest:
        return _refused(fetch, "checksum_mismatch", f"expected {payload.expected_sha256}", facts)
    reference = DocumentRef(sha256=digest, size=len(data), media_type=document.media_type, charset=document.charset)
    return FetchDocumentResult(
        fetch=fetch, accepted=True, document=reference, sha256=digest, size=len(data), sniffed=sniffed,
        fetcher_version=VERSION,
    )  # fmt: skip


def _refused(
    fetch: PageFetch,
    reason: Refusal,
    detail: str,
    facts: tuple[str, int, str] | None = None,
) -> FetchDocumentResult:
    """`facts`: the bytes' sha256, size and sniffed type, when there were bytes."""
    sha256, size, sniffed = facts if facts is not None else (None, None, None)
    return FetchDocumentResult(
        fetch=fetch,
        accepted=False,
        reason=reason,
        detail=detail,
        sha256=sha256,
        size=size,
        sniffed=sniffed,
        fetcher_version=VERSION,
    )


def sample_document(url: str, data: bytes, media_type: MediaType, *, stored: bool = True) -> CrawledPage:
    """A fetched document as the node's loop hands it over, for samples and tests."""
    digest = hashlib.sha256(data).hexdigest()
    return CrawledPage(
        url=url,
        outcome=FetchedPage(
            fetch_id=f"sample-{digest[:12]}",
            url=url,
            final_url=url,
            status=200,
            content_type=media_type,
            body=DocumentRef(sha256=digest, size=len(data), media_type=media_type) if stored else None,
            fetched_at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
        ),
        document=InlineDocument(media_type=media_type, data=data, size=len(data)),
    )


_SAMPLE_URL = "https://funder.example/guidance.txt"
_SAMPLE_TEXT = b"Guidance for applicants\nApplications close on 31 March 2027.\n"

# What a result must hold beyond its schema (ccn_jobs.result_rules); bump `version` with any change.
RESULT_RULES = ResultRules(
    version="1",
    rules=(
        Allowed(path="fetcher_version", values=(VERSION,), note="results of another fetcher are not comparable"),
        Format(path="fetch.url", format="url"),
        Mandatory(path="document", when=When(field="accepted", is_in=(True,))),
        Mandatory(path="sha256", when=When(field="accepted", is_in=(True,)), note="an accepted body has a digest"),
        Format(path="sha256", format="sha256"),
        Format(path="document.sha256", format="sha256"),
        Allowed(path="document.media_type", values=(PDF, DOCX, PLAIN_TEXT, HTML)),
        Mandatory(path="reason", when=When(field="accepted", is_in=(False,)), note="a refusal says why"),
    ),
)

FETCH_DOCUMENT: JobType[FetchDocumentPayload, FetchDocumentResult] = JobType(
    name=NAME,
    version=VERSION,
    payload_type=FetchDocumentPayload,
    result_type=FetchDocumentResult,
    result_rules=RESULT_RULES,
    handler=fetch_document,
    consent_scope="crawl",
    description="One document through the fetch proxy: MIME sniffed, size-limited, checksummed (CC-62)",
    sample_payloads=(
        FetchDocumentPayload(url=_SAMPLE_URL, pages=[sample_document(_SAMPLE_URL, _SAMPLE_TEXT, PLAIN_TEXT)]),
        FetchDocumentPayload(
            url="https://funder.example/form.pdf",
            pages=[sample_document("https://funder.example/form.pdf", b"PK\x03\x04 not a pdf", PDF)],
        ),
        FetchDocumentPayload(url="https://funder.example/page", media_types=[HTML]),
    ),
    crawl=single_url_crawl(),
)
