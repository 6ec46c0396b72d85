"""Generated grant-opportunity documents (PDF, DOCX, plain text) for tests and the bench.

Each document is the guidance for one funding round of an invented funder: a title, headed
sections (about the programme, amounts, who can apply, deadlines, how to apply), a ruled table
of grant amounts and closing dates, and on every PDF page the furniture a real one has (a
running header and a "Page n of N" footer). Document i depends only on i and its page count,
and the PDF's metadata dates are fixed, so the bytes are the same on every run.

Licence: the text was written for this project and is dedicated to the public domain (CC0
1.0). All funders and numbers are fictional."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ccn_jobs.pdf_reading import pymupdf_module

FUNDERS = (
    "Northbridge Foundation",
    "Harrow Vale Community Trust",
    "Kestrel Charitable Trust",
    "Ashworth Family Foundation",
    "Lindenmoor Fund",
)
PROGRAMMES = (
    ("Community Arts Fund", "community arts projects that bring music, theatre and visual art to neighbourhoods"),
    ("Green Neighbourhoods Programme", "local projects that restore habitats, cut waste and help people adapt"),
    ("Learning Futures Grants", "after-school learning, adult literacy and mentoring for young people"),
    ("Digital Inclusion Grants", "digital skills training and affordable access to devices and connectivity"),
)
MONTHS = ("January", "March", "May", "July", "September", "November")
PARAGRAPHS = (
    "The {funder} invites applications to the {programme}, which supports {purpose}. We are keen to hear "
    "from organisations led by the communities they serve, and from groups working in places that have "
    "received little funding in the past.",
    "Projects may last up to {months} months. We fund staff time, volunteer expenses, equipment, venue hire "
    "and the cost of evaluating what you have learned. Capital costs may make up no more than a quarter of "
    "the budget you ask us for.",
    "Registered charities, community interest companies with an asset lock and constituted voluntary groups "
    "with a bank account in the name of the group may apply. Schools may apply in partnership with a local "
    "community organisation.",
    "We will not fund individuals, religious or party political activity, or costs incurred before a "
    "decision is made. Applicants who received a grant in the last twelve months should wait before they "
    "apply again.",
    "Read these notes carefully, then complete the online application form. If you are unsure whether your "
    "project fits, email the grants team before you apply; we are happy to talk through ideas at an early "
    "stage. Every applicant hears the outcome within twelve weeks of the closing date.",
)
HEADINGS = (
    "About the programme",
    "What we fund",
    "Who can apply",
    "What we will not fund",
    "How to apply",
)


@dataclass(frozen=True, slots=True)
class GrantDocument:
    """What a document says: extraction should find the title, the headings and the rounds."""

    title: str
    funder: str
    headings: tuple[str, ...]
    paragraphs: tuple[str, ...]
    rounds: tuple[tuple[str, str, str], ...]  # (round, maximum grant, closing date)


def grant_document(index: int) -> GrantDocument:
    funder = FUNDERS[index % len(FUNDERS)]
    programme, purpose = PROGRAMMES[index % len(PROGRAMMES)]
    year = 2027 + index % 3
    rounds = tuple(
        (f"Round {n + 1}", f"£{(n + 1) * 5 + index % 7},000", f"{1 + (index + n) % 27} {MONTHS[n]} {year}")
        for n in range(4)
    )
    paragraphs = tuple(
        text.format(funder=funder, programme=programme, purpose=purpose, months=12 + 6 * (index % 3))
        for text in PARAGRAPHS
    )
    return GrantDocument(
        title=f"{programme} {year}: guidance for applicants",
        funder=funder,
        headings=HEADINGS,
        paragraphs=paragraphs,
        rounds=rounds,
    )


def grant_text(index: int) -> str:
    document = grant_document(index)
    lines = [document.title, ""]
    for heading, paragraph in zip(document.headings, document.paragraphs, strict=True):
        lines += [heading, paragraph, ""]
    lines += ["Rounds and closing dates", *(" | ".join(row) for row in document.rounds)]
    return "\n".join(lines) + "\n"


def grant_pdf(index: int, pages: int = 4) -> bytes:
    """A PDF of `pages` pages: the title and the table on page 1, then the sections in turn."""
    pymupdf = pymupdf_module()
    document = grant_document(index)
    pdf = pymupdf.open()
    for number in range(1, pages + 1):
        page = pdf.new_page(width=595, height=842)
        page.insert_text((50, 40), f"{document.funder} · Guidance for applicants", fontsize=8, fontname="helv")
        page.insert_text((270, 815), f"Page {number} of {pages}", fontsize=8, fontname="helv")
        y = 90.0
        if number == 1:
            page.insert_textbox(pymupdf.Rect(50, y, 545, y + 80), document.title, fontsize=18, fontname="hebo")
            y += 70
            y = _table(page, y, ("Round", "Maximum grant", "Closing date"), document.rounds)
        for part in range(2):
            which = ((number - 1) * 2 + part) % len(document.headings)
            page.insert_text((50, y + 14), document.headings[which], fontsize=14, fontname="hebo")
            y += 26
            box = pymupdf.Rect(50, y, 545, y + 130)
            page.insert_textbox(box, document.paragraphs[which], fontsize=10.5, fontname="helv")
            y += 140
    pdf.set_metadata(
        {
            "title": document.title,
            "author": document.funder,
            "subject": "Funding guidance",
            "creationDate": "D:20261101090000+00'00'",
            "modDate": "D:20261102100000+01'00'",
            "producer": "ccn demo_documents",
            "creator": "ccn demo_documents",
        }
    )
    data: bytes = pdf.tobytes(garbage=1, deflate=True, no_new_id=True)
    pdf.close()
    return data


def _table(page: Any, top: float, header: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> float:
    pymupdf = pymupdf_module()
    widths = (120.0, 150.0, 180.0)
    left, height = 50.0, 20.0
    for r, row in enumerate((header, *rows)):
        y = top + r * height
        x = left
        for c, cell in enumerate(row):
            page.draw_rect(pymupdf.Rect(x, y, x + widths[c], y + height), color=(0, 0, 0), width=0.6)
            page.insert_text((x + 4, y + 14), cell, fontsize=10, fontname="hebo" if r == 0 else "helv")
            x += widths[c]
    return top + (len(rows) + 1) * height + 20


def grant_docx(index: int) -> bytes:
    import docx

    document = grant_document(index)
    word = docx.Document()
    word.core_properties.title = document.title
    word.core_properties.author = document.funder
    word.sections[0].header.paragraphs[0].text = f"{document.funder} · Guidance for applicants"
    word.sections[0].footer.paragraphs[0].text = "Registered charity, for illustration only"
    word.add_heading(document.title, level=0)
    for heading, paragraph in zip(document.headings, document.paragraphs, strict=True):
        word.add_heading(heading, level=1)
        word.add_paragraph(paragraph)
    table = word.add_table(rows=1, cols=3)
    for cell, label in zip(table.rows[0].cells, ("Round", "Maximum grant", "Closing date"), strict=True):
        cell.text = label
    for row in document.rounds:
        for cell, value in zip(table.add_row().cells, row, strict=True):
            cell.text = value
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()
