"""Documents as job input: from a payload's document field to bytes a handler can trust.

Handlers stay pure. A payload names its document inline (text, or bytes with their size) or
by reference (sha256, size, media type) to a body in the document object store. The node
resolves references before it runs the handler: `references` lists them, a `BodyReader` (the
node's way to the store; `ccn_core.document_bodies` reads a JetStream object store) fetches
each, checked against the reference's size and digest, and `resolve_references` puts the
bytes in their place as an `InlineDocument`. A reference that reaches a handler unresolved is
refused (`not_resolved`); it never triggers I/O there.

The declared media type is checked against the bytes' magic (`checked_body`) before a parser
sees them: a PDF declared as HTML, or a ZIP declared as a PDF, is refused as
`media_type_mismatch`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import msgspec

from ccn_jobs.errors import DocumentRefused
from ccn_proto.documents import (
    DOCX,
    HTML,
    MAX_REFERENCED_BYTES,
    PDF,
    PLAIN_TEXT,
    DocumentInput,
    DocumentRef,
    InlineDocument,
    InlineText,
)

P = TypeVar("P", bound=msgspec.Struct)

# The PDF header may follow some junk (the spec lets readers look within the first KiB).
_PDF_MAGIC_WINDOW = 1024
# Magic of formats no document job reads: declared as text, they are refused, not parsed.
_BINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
)


@dataclass(frozen=True, slots=True)
class Body:
    """A document's bytes (or text, for inline HTML and plain text) and what was declared."""

    media_type: str
    data: bytes | None
    text: str | None
    charset: str | None = None


def sniff_media_type(data: bytes) -> str | None:
    """What the bytes' magic says they are, or None when they carry no magic (text)."""
    if b"%PDF-" in data[:_PDF_MAGIC_WINDOW]:
        return PDF
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "application/zip"
    for magic, media_type in _BINARY_MAGIC:
        if data.startswith(magic):
            return media_type
    return None


def checked_body(document: DocumentInput, job_type: str, accepted: frozenset[str]) -> Body:
    """The document's body, once its declared type is one `accepted` and its bytes agree."""
    if isinstance(document, DocumentRef):
        raise DocumentRefused(job_type, "not_resolved", f"the body {document.sha256} was not fetched")
    if document.media_type not in accepted:
        raise DocumentRefused(
            job_type, "media_type_mismatch", f"{document.media_type} is not one of {sorted(accepted)}"
        )
    if isinstance(document, InlineText):
        return Body(media_type=document.media_type, data=None, text=document.text)
    data = document.data
    if not data:
        raise DocumentRefused(job_type, "empty", "the document has no bytes")
    sniffed = sniff_media_type(data)
    declared = document.media_type
    agrees = (
        sniffed == PDF
        if declared == PDF
        else sniffed == "application/zip"
        if declared == DOCX
        else sniffed is None and declared in (HTML, PLAIN_TEXT)
    )
    if not agrees:
        raise DocumentRefused(
            job_type, "media_type_mismatch", f"declared {declared}, but the bytes are {sniffed or 'text'}"
        )
    return Body(media_type=declared, data=data, text=None, charset=document.charset)


def references(payload: msgspec.Struct) -> tuple[DocumentRef, ...]:
    """The references among a payload's top-level fields, in field order."""
    return tuple(
        value for name in payload.__struct_fields__ if isinstance(value := getattr(payload, name), DocumentRef)
    )


def resolve_references(payload: P, bodies: Mapping[str, bytes]) -> P:
    """The payload with each reference replaced by its body, inline. `bodies` maps sha256 to
    bytes already checked against the reference (`fetch_bodies` does); a body missing from it
    leaves its reference in place, which the handler then refuses."""
    changes: dict[str, InlineDocument] = {}
    for name in payload.__struct_fields__:
        ref = getattr(payload, name)
        if isinstance(ref, DocumentRef) and (data := bodies.get(ref.sha256)) is not None:
            # Built in-process, so the inline size bound (a decode-time check) does not apply:
            # the reference's own bound, checked when it was fetched, does.
            changes[name] = InlineDocument(media_type=ref.media_type, data=data, size=len(data), charset=ref.charset)
    return msgspec.structs.replace(payload, **changes) if changes else payload


class BodyReader(Protocol):
    """The node's way to a content-addressed body: its bytes, if it has `size` of them;
    LookupError when there is no such body (ccn_core.document_bodies.ObjectStoreBodies)."""

    async def read(self, sha256: str, size: int) -> bytes: ...


def checked_reference_body(ref: DocumentRef, data: bytes, job_type: str) -> bytes:
    """The fetched bytes, if they are the reference's: its size and its sha256."""
    if len(data) != ref.size or len(data) > MAX_REFERENCED_BYTES:
        raise DocumentRefused(job_type, "body_mismatch", f"the body has {len(data)} bytes, the reference {ref.size}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256:
        raise DocumentRefused(job_type, "body_mismatch", f"the body's sha256 is {digest}, not {ref.sha256}")
    return data


async def fetch_bodies(payload: msgspec.Struct, reader: BodyReader, job_type: str) -> dict[str, bytes]:
    """Every body the payload names, fetched through `reader` and checked."""
    bodies: dict[str, bytes] = {}
    for ref in references(payload):
        if ref.sha256 not in bodies:
            try:
                data = await reader.read(ref.sha256, ref.size)
            except LookupError as exc:
                raise DocumentRefused(job_type, "body_missing", str(exc)) from None
            bodies[ref.sha256] = checked_reference_body(ref, data, job_type)
    return bodies


class Deadline:
    """A handler's time budget, checked between pages. The clock is injected so tests can run
    out of time at a chosen page; running out fails the job, it never changes a result."""

    def __init__(self, seconds: float, job_type: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._job_type = job_type
        self._seconds = seconds
        self._until = clock() + seconds

    def check(self, where: str) -> None:
        if self._clock() > self._until:
            raise DocumentRefused(
                self._job_type, "deadline_exceeded", f"over the time limit of {self._seconds:g} s at {where}"
            )
