"""Payloads and results of the document job types (extract_text, parse_pdf), and the ways a
payload carries a document: inline text, inline bytes (base64 in JSON, with their declared
size) or a reference to a content-addressed body (sha256) in the JetStream object store that
the fetch proxy fills. A node resolves a reference before the handler runs; handlers only
ever see bytes or text.

Every field is bounded here, so a payload or result off these bounds is refused when it is
decoded (by the scheduler, the node and the validation service alike). Results are bounded
to fit in one command (768 KiB) however the document was given."""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from ccn_proto.constraints import END, MULTI_LINE_PATTERN, SINGLE_LINE_PATTERN, Sha256Hex, Version

HTML: Final = "text/html"
PLAIN_TEXT: Final = "text/plain"
PDF: Final = "application/pdf"
DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MediaType = Literal[
    "text/html",
    "text/plain",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
]
TextMediaType = Literal["text/html", "text/plain"]

# Inline bytes travel base64 in a job of at most 768 KiB (4/3 of this, plus the rest).
MAX_INLINE_BYTES = 512 * 1024
# A body named by reference: the hard cap whatever its reference declares.
MAX_REFERENCED_BYTES = 64 * 1024 * 1024
MAX_HTML_CHARS = 2 * 1024 * 1024
MAX_URL_CHARS = 2048
# Pages a handler reads at most: a payload may ask for fewer, never more.
MAX_PAGES_CAP = 2_000
DEFAULT_MAX_PAGES = 500
# Seconds a handler may spend, checked between pages: a payload may ask for less.
MAX_TIME_LIMIT_S = 120.0
DEFAULT_TIME_LIMIT_S = 30.0

MAX_TEXT_CHARS = 200_000
MAX_TITLE_CHARS = 1_000
MAX_META_CHARS = 1_000
MAX_PAGE_TEXT_CHARS = 100_000
# parse_pdf's page text and table cells in all: even at four UTF-8 bytes a character, with the
# pages' and tables' framing, a result stays within one 768 KiB command.
MAX_PDF_TEXT_CHARS = 120_000
MAX_TABLE_CHARS = 40_000
MAX_TABLES = 100
MAX_TABLE_ROWS = 500
MAX_TABLE_COLUMNS = 50
MAX_CELL_CHARS = 1_000
MAX_SECTIONS = 500

Charset = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=40,
        pattern=rf"^[A-Za-z0-9._:-]+{END}",
        description="the charset the sender declared (an IANA name); a hint, checked against the bytes",
    ),
]
Html = Annotated[str, msgspec.Meta(max_length=MAX_HTML_CHARS, description="the page's HTML source")]
Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=MAX_URL_CHARS, pattern=rf"^https?://\S+{END}", description="where the page was"
    ),
]
InlineBytes = Annotated[bytes, msgspec.Meta(max_length=MAX_INLINE_BYTES, description="the document, base64")]
InlineSize = Annotated[int, msgspec.Meta(ge=0, le=MAX_INLINE_BYTES)]
ReferencedSize = Annotated[int, msgspec.Meta(ge=0, le=MAX_REFERENCED_BYTES)]
PageLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGES_CAP)]
TimeLimit = Annotated[float, msgspec.Meta(gt=0.0, le=MAX_TIME_LIMIT_S)]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]
PageText = Annotated[str, msgspec.Meta(max_length=MAX_PAGE_TEXT_CHARS)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_CHARS)]
MetaText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_META_CHARS, pattern=SINGLE_LINE_PATTERN)]
Cell = Annotated[str, msgspec.Meta(max_length=MAX_CELL_CHARS, pattern=MULTI_LINE_PATTERN)]
LanguageCode = Annotated[str, msgspec.Meta(pattern=rf"^[a-z]{{2,3}}{END}")]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
CharCount = Annotated[int, msgspec.Meta(ge=0, le=MAX_TEXT_CHARS)]
PageCount = Annotated[int, msgspec.Meta(ge=0)]
PageNumber = Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGES_CAP)]
IsoDateTime = Annotated[
    str,
    msgspec.Meta(
        pattern=rf"^\d{{4}}-\d{{2}}-\d{{2}}(T\d{{2}}:\d{{2}}:\d{{2}}([+-]\d{{2}}:\d{{2}}|Z)?)?{END}",
        description="ISO 8601; with its UTC offset when the document gave one",
    ),
]


class InlineText(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="text", tag_field="kind"):
    """An HTML or plain-text document given as text."""

    media_type: TextMediaType
    text: Html


class InlineDocument(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="inline", tag_field="kind"
):
    """A document's bytes, base64 in JSON. `size` is the decoded length, stated by the sender
    and checked; `media_type` is checked against the bytes' magic before any parser sees them."""

    media_type: MediaType
    data: InlineBytes
    size: InlineSize
    charset: Charset | None = None

    def __post_init__(self) -> None:
        if self.size != len(self.data):
            raise ValueError(f"size is {self.size} but data has {len(self.data)} bytes")


class DocumentRef(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="ref", tag_field="kind"):
    """A body in the document object store, named by the sha256 of its bytes. The node fetches
    it and checks size and digest before the handler runs."""

    sha256: Sha256Hex
    size: ReferencedSize
    media_type: MediaType
    charset: Charset | None = None


DocumentInput = InlineText | InlineDocument | DocumentRef


class ExtractTextPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `html` (the original form: a page's HTML inline) and `document`."""

    html: Html | None = None
    url: Url | None = None
    document: DocumentInput | None = None
    max_pages: PageLimit = DEFAULT_MAX_PAGES
    time_limit_s: TimeLimit = DEFAULT_TIME_LIMIT_S

    def __post_init__(self) -> None:
        # worded as msgspec words a missing field, so the refusal names `html` (InvalidJobData)
        if self.html is None and self.document is None:
            raise ValueError("Object missing required field `html` (or give `document`)")
        if self.html is not None and self.document is not None:
            raise ValueError("give one of `html` and `document`, not both")


class ExtractTextResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`text` is the main content, one paragraph or heading per line. `language` is an ISO 639
    code, None when the text is empty or no language is likely enough. `chars` == len(text).
    `pages` is the page count of a paged format (PDF), None otherwise. Results written before
    `media_type`, `pages` and `extractor_version` existed decode with the values they had."""

    text: Text
    title: Title | None
    language: LanguageCode | None
    confidence: Confidence
    chars: CharCount
    media_type: MediaType = "text/html"
    pages: PageCount | None = None
    extractor_version: Version = "1"

    def __post_init__(self) -> None:
        # Checked on decode too, so the validation service rejects a result that misreports it.
        if self.chars != len(self.text):
            raise ValueError(f"chars is {self.chars} but text has {len(self.text)} characters")


class ParsePdfPayload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A PDF, inline or by reference. `ocr` asks for scanned pages to be read by OCR where the
    node has the engine (docs/adr/0014-ocr-for-scanned-pdfs.md); without it they are reported."""

    document: InlineDocument | DocumentRef
    max_pages: PageLimit = DEFAULT_MAX_PAGES
    time_limit_s: TimeLimit = DEFAULT_TIME_LIMIT_S
    tables: bool = True
    ocr: bool = False


class PdfMetadata(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    title: MetaText | None = None
    author: MetaText | None = None
    subject: MetaText | None = None
    keywords: MetaText | None = None
    creator: MetaText | None = None
    producer: MetaText | None = None
    created_at: IsoDateTime | None = None
    modified_at: IsoDateTime | None = None


class PdfPage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One page. `needs_ocr`: it shows images and has (almost) no text layer, and no OCR ran;
    `ocr`: its text came from OCR."""

    number: PageNumber
    text: PageText
    chars: Annotated[int, msgspec.Meta(ge=0, le=MAX_PAGE_TEXT_CHARS)]
    images: Annotated[int, msgspec.Meta(ge=0)]
    needs_ocr: bool
    ocr: bool = False


class PdfTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A table as rows of cells: whitespace collapsed, empty cells "", every row as wide as the
    widest. `header` is the first row when PyMuPDF found it to be a header."""

    page: PageNumber
    header: Annotated[list[Cell], msgspec.Meta(max_length=MAX_TABLE_COLUMNS)] | None
    rows: Annotated[
        list[Annotated[list[Cell], msgspec.Meta(max_length=MAX_TABLE_COLUMNS)]], msgspec.Meta(max_length=MAX_TABLE_ROWS)
    ]


class PdfSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A heading found by font size and weight; level 1 is the largest."""

    heading: MetaText
    level: Annotated[int, msgspec.Meta(ge=1, le=3)]
    page: PageNumber


class ParsePdfResult(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`page_count` is the document's; `pages` are those read (all of them: more than the
    payload's `max_pages` is a refusal, not a cut). `text_truncated`: page text was cut to keep
    the result within its bounds (MAX_PDF_TEXT_CHARS in all); `tables_truncated`: tables were
    left out for the same reason (MAX_TABLES, MAX_TABLE_CHARS). `needs_ocr` lists the scanned
    pages no OCR read."""

    parser_version: Version
    engine: Annotated[str, msgspec.Meta(max_length=64, pattern=SINGLE_LINE_PATTERN)]
    page_count: PageCount
    metadata: PdfMetadata
    pages: Annotated[list[PdfPage], msgspec.Meta(max_length=MAX_PAGES_CAP)]
    tables: Annotated[list[PdfTable], msgspec.Meta(max_length=MAX_TABLES)]
    sections: Annotated[list[PdfSection], msgspec.Meta(max_length=MAX_SECTIONS)]
    needs_ocr: Annotated[list[PageNumber], msgspec.Meta(max_length=MAX_PAGES_CAP)]
    text_truncated: bool
    tables_truncated: bool
    language: LanguageCode | None
