"""Documents for tests, made here rather than committed: payloads, and hostile PDFs and DOCX."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

from ccn_jobs.demo_documents import grant_docx
from ccn_jobs.pdf_reading import pymupdf_module
from ccn_proto.documents import PDF, DocumentRef, InlineDocument


def inline(data: bytes, media_type: str = PDF, charset: str | None = None) -> dict[str, Any]:
    """A payload's `document` as JSON would carry it (bytes base64 after encoding)."""
    document = InlineDocument(media_type=media_type, data=data, size=len(data), charset=charset)  # type: ignore[arg-type]
    return {"kind": "inline", "media_type": media_type, "data": document.data, "size": len(data)} | (
        {"charset": charset} if charset else {}
    )


def reference(data: bytes, media_type: str = PDF) -> DocumentRef:
    return DocumentRef(sha256=hashlib.sha256(data).hexdigest(), size=len(data), media_type=media_type)  # type: ignore[arg-type]


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1, object 1 the catalog) with a correct xref."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def many_pages_pdf(pages: int) -> bytes:
    """A real PDF of `pages` blank pages (about 100 bytes a page): a page bomb when large."""
    kids = b" ".join(b"%d 0 R" % (number + 3) for number in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>"] * pages
    return raw_pdf(objects)


def page_count_lie(declared: int) -> bytes:
    """One page whose page tree claims `declared`."""
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % declared,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
        ]
    )


def encrypted_pdf(text: str = "Secret grant terms") -> bytes:
    pymupdf = pymupdf_module()
    document = pymupdf.open()
    document.new_page().insert_text((72, 72), text)
    data: bytes = document.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")
    return data


def scanned_pdf(text: str = "SCANNED GRANT NOTICE 2027") -> bytes:
    """One page that is only an image of text: what a scanner makes."""
    pymupdf = pymupdf_module()
    source = pymupdf.open()
    page = source.new_page(width=400, height=120)
    page.insert_text((20, 70), text, fontsize=24)
    image = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY).tobytes("png")
    scanned = pymupdf.open()
    scanned.new_page(width=400, height=120).insert_image(pymupdf.Rect(0, 0, 400, 120), stream=image)
    data: bytes = scanned.tobytes(deflate=True)
    return data


def with_text_page(pdf: bytes, text: str) -> bytes:
    pymupdf = pymupdf_module()
    document = pymupdf.open(stream=pdf, filetype="pdf")
    page = document.new_page()
    page.insert_text((72, 72), text)
    data: bytes = document.tobytes(deflate=True)
    return data


def docx_bomb(expanded_bytes: int) -> bytes:
    """A DOCX whose document.xml expands to `expanded_bytes` (mostly spaces) from a few KiB."""
    parts = zipfile.ZipFile(io.BytesIO(grant_docx(0)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for member in parts.infolist():
            if member.filename != "word/document.xml":
                bomb.writestr(member, parts.read(member))
        with bomb.open("word/document.xml", "w", force_zip64=True) as stream:
            chunk = b" " * (1024 * 1024)
            for _ in range(expanded_bytes // len(chunk)):
                stream.write(chunk)
    return out.getvalue()


def lying_zip_docx(claimed: int, actual: int) -> bytes:
    """A DOCX whose document.xml expands to `actual` bytes but says `claimed` in both its local
    header and its central directory entry."""
    parts = zipfile.ZipFile(io.BytesIO(grant_docx(0)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for member in parts.infolist():
            body = b" " * actual if member.filename == "word/document.xml" else parts.read(member)
            archive.writestr(member.filename, body)
    data = bytearray(out.getvalue())
    name = b"word/document.xml"
    position = 0
    while (position := data.find(name, position + 1)) != -1:
        if data[position - 30 : position - 26] == b"PK\x03\x04":
            data[position - 30 + 22 : position - 30 + 26] = claimed.to_bytes(4, "little")
        elif data[position - 46 : position - 42] == b"PK\x01\x02":
            data[position - 46 + 24 : position - 46 + 28] = claimed.to_bytes(4, "little")
    return bytes(data)
