"""Reading a DOCX with python-docx, after its ZIP container has been proven small.

A DOCX is a ZIP, and a ZIP can claim anything: a few KiB may expand to gigabytes (a zip bomb),
and the sizes in its directory may lie. So before python-docx opens it, every member is
decompressed here in bounded chunks and counted: more than `MAX_MEMBERS` members, a member
over `MAX_MEMBER_BYTES`, more than `MAX_EXPANDED_BYTES` in all, or a member larger than its
directory entry says, and the document is refused (`too_large`) having expanded at most the
bound plus one chunk. Only then does python-docx read it (its XML parser resolves no entities).

The text is the body in document order, paragraphs and table rows (cells joined by " | ");
running headers and footers are page furniture and are left out. The title is the core
properties' title, else the first paragraph in the Title style."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from ccn_jobs.documents import Deadline
from ccn_jobs.errors import DocumentRefused
from ccn_jobs.text_normalisation import clean_line

MAX_MEMBERS = 2_000
MAX_MEMBER_BYTES = 32 * 1024 * 1024
MAX_EXPANDED_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 1024 * 1024
_MAIN_PART = "word/document.xml"


@dataclass(frozen=True, slots=True)
class DocxText:
    text: str
    title: str | None


def check_container(data: bytes, job_type: str) -> None:
    """Refuse a ZIP that is not a DOCX or would expand past the bounds."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DocumentRefused(job_type, "corrupt", f"not a readable ZIP: {exc}") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise DocumentRefused(job_type, "too_large", f"{len(members)} members; at most {MAX_MEMBERS}")
        if _MAIN_PART not in {member.filename for member in members}:
            raise DocumentRefused(job_type, "media_type_mismatch", f"a ZIP without {_MAIN_PART} is not a DOCX")
        declared = sum(member.file_size for member in members)
        if declared > MAX_EXPANDED_BYTES:
            raise DocumentRefused(
                job_type, "too_large", f"expands to {declared} bytes by its directory; at most {MAX_EXPANDED_BYTES}"
            )
        expanded = 0
        for member in members:
            if member.file_size > MAX_MEMBER_BYTES:
                raise DocumentRefused(
                    job_type, "too_large", f"{member.filename} is {member.file_size} bytes; at most {MAX_MEMBER_BYTES}"
                )
            expanded += _expanded_size(archive, member, MAX_EXPANDED_BYTES - expanded, job_type)


def _expanded_size(archive: zipfile.ZipFile, member: zipfile.ZipInfo, budget: int, job_type: str) -> int:
    size = 0
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                size += len(chunk)
                if size > member.file_size or size > budget:
                    raise DocumentRefused(
                        job_type, "too_large", f"{member.filename} expands past its declared size or the bound"
                    )
    except DocumentRefused:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, OSError, EOFError) as exc:
        # zlib.error is an Exception subclass of its own; BadZipFile covers CRC mismatches
        raise DocumentRefused(job_type, "corrupt", f"{member.filename} cannot be read: {exc}") from None
    except Exception as exc:  # zlib.error and friends from the decompressors
        raise DocumentRefused(job_type, "corrupt", f"{member.filename} cannot be decompressed: {exc}") from None
    return size


def read_docx(data: bytes, job_type: str, deadline: Deadline) -> DocxText:
    check_container(data, job_type)
    deadline.check("the container check")
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        title = clean_line(document.core_properties.title or "") or None
        for index, block in enumerate(document.iter_inner_content()):
            if index % 200 == 0:
                deadline.check(f"block {index}")
            if isinstance(block, Table):
                for row in block.rows:
                    cells = [clean_line(cell.text) for cell in row.cells]
                    lines.append(" | ".join(_unmerged(cells)))
                continue
            text = clean_line(block.text)
            if title is None and text and block.style is not None and block.style.name == "Title":
                title = text
            lines.append(text)
    except DocumentRefused:
        raise
    except Exception as exc:  # python-docx and lxml raise many kinds on malformed parts
        raise DocumentRefused(job_type, "corrupt", f"python-docx cannot read it: {type(exc).__name__}: {exc}") from None
    return DocxText(text="\n".join(lines), title=title)


def _unmerged(cells: list[str]) -> list[str]:
    # python-docx repeats a merged cell once per grid column it spans
    out: list[str] = []
    for cell in cells:
        if not out or cell != out[-1]:
            out.append(cell)
    return out
