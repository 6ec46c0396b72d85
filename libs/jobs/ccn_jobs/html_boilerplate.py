"""What extract_text does to an HTML page around trafilatura, which finds the main content: the
page is prepared before it (so that markup trafilatura misreads is not lost) and its text is
corrected after it (so that what it keeps but is not main text goes).

Before, on the parsed tree:
- a layout table (a table used for page layout, whose cells hold headings, paragraphs, lists or
  other tables) becomes plain blocks, so that the page's main text is not read as one table
  cell together with the menu column beside it;
- a button inside a heading, an FAQ question (`summary`, `dt`) or an accordion header becomes
  plain text, so that the question of an accordion is not dropped with the page's buttons;
- the headings (h2 to h6) are noted with the text that follows each.

After, on the text, one block per line:
- the page title is dropped where it opens the text (the result carries it as `title`);
- a line that is only the text of a link in the page's nav, header or footer is dropped (the
  menu leaking into the text), unless a heading of the page says the same;
- short lines of page furniture are dropped: bylines and dates ("Published 3 May 2026",
  "Last updated ..."), share, print and follow prompts, "Back to top", copyright lines, "Is this
  page useful?", reading times, tag and category lines;
- a heading whose following text was kept but which was not is put back before that text.

Everything here is deterministic (document order, no sets iterated into output) and linear in
the page: a few passes over the tree and the lines."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ccn_jobs.text_normalisation import clean_line

if TYPE_CHECKING:
    # lxml ships no type information (lxml-stubs is a package of its own): trees are Any here
    from lxml.html import HtmlElement  # type: ignore[import-untyped]

# elements whose presence in a table cell shows a layout table, not a data table
_BLOCK_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "table", "form", "blockquote"})
_TABLE_TAGS = frozenset({"table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup", "col"})
_HEADING_TAGS = ("h2", "h3", "h4", "h5", "h6")
_NON_TEXT_TAGS = frozenset({"a", "button", "h1", *_HEADING_TAGS})
_QUESTION_PARENTS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "summary", "dt"})
MAX_FURNITURE_CHARS = 120  # page furniture is short: a longer line is text, whatever it begins with
TITLE_LINES = 3  # the title, when the text repeats it, is among its first lines
HEADING_PROBE_CHARS = 40  # how much of the text after a heading identifies the line it starts
MIN_HEADED_TEXT_CHARS = 20
MAX_HEADINGS = 300  # each costs a look ahead in the tree: a page with more gets only its first put back
MAX_TITLES = 4
MAX_MENU_LINKS = 2_000

_FURNITURE = re.compile(
    r"""^(?:
        (?:first\s+)?(?:published|posted|updated|last\s+updated|last\s+modified|date)(?:\s+on|:)?\s+\S.*\d
      | (?:from|by|author|written\s+by):\s.*
      | (?:share|share\s+this(?:\s+page|\s+article)?|share\s+on)\b.*
      | (?:print|print\s+this\s+page|printer[-\s]friendly\s+version|download\s+as\s+pdf)\b.*
      | (?:back\s+to\s+top|skip\s+to(?:\s+main)?\s+content|top\s+of\s+page)
      | (?:©|\(c\)\s|copyright\b).*
      | .*\ball\s+rights\s+reserved\b.*
      | (?:is\s+this\s+page\s+(?:useful|helpful)|was\s+this\s+(?:page|article)\s+(?:useful|helpful))\b.*
      | (?:report\s+a\s+problem\s+with\s+this\s+page)\b.*
      | \d+\s+min(?:ute)?s?\s+read\b.*
      | (?:tags?|tagged|categories|category|posted\s+in|filed\s+under)(?::|\s).*
      | (?:follow\s+us|follow\s+on)\b.*
      | .*\b\d[\d,.]*\s+(?:followers|likes|claps|responses|comments|shares)
      | (?:veröffentlicht|zuletzt\s+aktualisiert|aktualisiert\s+am|teilen|drucken|nach\s+oben)\b.*
      | (?:publié\s+le|mis\s+à\s+jour|partager|imprimer|haut\s+de\s+page)\b.*
      | (?:publicado|actualizado|compartir|imprimir|volver\s+arriba)\b.*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_LIST_MARK = re.compile(r"^(?:[-*•]\s+|\|\s*)")


@dataclass(frozen=True, slots=True)
class Heading:
    text: str
    next_text: str  # the start of the text that follows it in the page


@dataclass(frozen=True, slots=True)
class Prepared:
    headings: list[Heading]
    titles: list[str]  # the page's h1 texts: the text should not repeat them
    title: str | None  # the first h1, else og:title, else <title>
    menu_links: frozenset[str]  # keys of the link texts in nav, header and footer that no heading has


def prepare(tree: HtmlElement) -> Prepared:
    """Rewrite the tree in place (layout tables, buttons in questions); note its headings and titles."""
    _unwrap_layout_tables(tree)
    _unwrap_question_buttons(tree)
    titles = [clean_line(h1.text_content()) for _, h1 in zip(range(MAX_TITLES), tree.iter("h1"), strict=False)]
    titles = [title for title in titles if title]
    headings = _headings(tree)
    return Prepared(
        headings=headings,
        titles=titles,
        title=titles[0] if titles else _head_title(tree),
        menu_links=_menu_links(tree),
    )


def _menu_links(tree: HtmlElement) -> frozenset[str]:
    """A line that is only the text of a menu link is the menu leaking into the text; unless a
    heading of the page says the same ("How to apply" is often both)."""
    links: set[str] = set()
    for link in tree.xpath("//nav//a | //header//a | //footer//a"):
        if len(links) >= MAX_MENU_LINKS:
            break
        links.add(_key(link.text_content()))
    headed = {_key(heading.text_content()) for heading in tree.iter("h1", *_HEADING_TAGS)}
    return frozenset(links - headed - {""})


def _head_title(tree: HtmlElement) -> str | None:
    for meta in tree.iter("meta"):
        if meta.get("property") == "og:title" and clean_line(meta.get("content") or ""):
            return clean_line(meta.get("content") or "")
    for title in tree.iter("title"):
        return clean_line(title.text_content()) or None
    return None


def _walk(tree: HtmlElement) -> Iterator[tuple[str, HtmlElement]]:
    """("start", element) and ("end", element) for every node of the tree, in document order."""
    from lxml import etree  # type: ignore[import-untyped]

    walk: Iterator[tuple[str, HtmlElement]] = etree.iterwalk(tree, events=("start", "end"))
    return walk


def _unwrap_layout_tables(tree: HtmlElement) -> None:
    """One walk in document order finds, for every table, its own rows and cells (not those of
    a table inside it) and whether a cell of its own holds a block: then each layout table's
    own parts become divs, and a data table inside a layout cell stays a table. Linear in the
    tree, however deep tables nest."""
    tables: list[HtmlElement] = []  # the tables the walk is in, innermost last
    cells: list[HtmlElement] = []  # the table owning each cell the walk is in, innermost last
    parts: dict[HtmlElement, list[HtmlElement]] = {}
    layout: dict[HtmlElement, None] = {}  # an ordered set
    for event, element in _walk(tree):
        tag = element.tag
        if not isinstance(tag, str):
            continue
        if event == "end":
            if tag == "table" and tables:
                tables.pop()
            elif tag in ("td", "th") and cells:
                cells.pop()
            continue
        if tag in _BLOCK_TAGS and cells:
            layout[cells[-1]] = None
        if tag == "table":
            tables.append(element)
            parts[element] = [element]
        elif tag in _TABLE_TAGS and tables:
            parts[tables[-1]].append(element)
            if tag in ("td", "th"):
                cells.append(tables[-1])
    for table in layout:
        for element in parts[table]:
            element.tag = "div"
            for attribute in ("width", "height", "colspan", "rowspan", "valign", "align"):
                element.attrib.pop(attribute, None)


def _unwrap_question_buttons(tree: HtmlElement) -> None:
    for button in list(tree.iter("button")):
        parent = button.getparent()
        if parent is not None and (parent.tag in _QUESTION_PARENTS or "accordion" in (parent.get("class") or "")):
            button.tag = "span"


def _headings(tree: HtmlElement) -> list[Heading]:
    """Each heading with the first text after it, in one walk of the tree in document order (an
    element's text at its start, its tail at its end). A heading over links (a contents list,
    "Quick links"), over a short word (a button's "Yes") or over another heading heads no text
    of its own, and is left out."""
    found: list[Heading] = []
    waiting: str | None = None  # the heading whose following text is sought
    inside_non_text = 0  # depth of the links, buttons and headings the walk is in
    for event, element in _walk(tree):
        if not isinstance(element.tag, str):  # a comment or processing instruction: only its tail counts
            piece = element.tail if event == "end" else None
        elif event == "start":
            if element.tag in _NON_TEXT_TAGS:
                inside_non_text += 1
            piece = element.text
        else:
            if element.tag in _NON_TEXT_TAGS:
                inside_non_text -= 1
            if element.tag in _HEADING_TAGS and len(found) < MAX_HEADINGS:
                waiting = clean_line(element.text_content()) or None
            piece = element.tail
        if waiting is None or piece is None or not piece.strip():
            continue
        after = clean_line(piece)
        if not inside_non_text and len(after) >= MIN_HEADED_TEXT_CHARS:
            found.append(Heading(waiting, after[:HEADING_PROBE_CHARS]))
        waiting = None
    return found


def corrected_lines(lines: Sequence[str], prepared: Prepared, titles: Sequence[str] = ()) -> list[str]:
    """The extracted lines without the title, menu links and page furniture, with lost headings
    put back. `titles`: more titles the text should not repeat than the page's h1s."""
    every_title = [*prepared.titles, *titles]
    kept = _without_title(list(lines), every_title)
    kept = [line for line in kept if not is_furniture(line) and _key(line) not in prepared.menu_links]
    return [line for line in _with_headings(kept, prepared.headings, every_title) if not is_furniture(line)]


def is_furniture(line: str) -> bool:
    bare = _LIST_MARK.sub("", line).strip(" |")
    return len(bare) <= MAX_FURNITURE_CHARS and _FURNITURE.match(bare) is not None


def _key(text: str) -> str:
    return " ".join(_LIST_MARK.sub("", text).casefold().split())


def _without_title(lines: list[str], titles: Sequence[str]) -> list[str]:
    keys = {_key(title) for title in titles if title.strip()}
    return [line for number, line in enumerate(lines) if number >= TITLE_LINES or _key(line) not in keys]


def _with_headings(lines: list[str], headings: Sequence[Heading], titles: Sequence[str]) -> list[str]:
    present = {_key(line) for line in lines}
    skip = {_key(title) for title in titles}
    result = list(lines)
    start = 0
    for heading in headings:
        key = _key(heading.text)
        if key in present or key in skip:
            continue
        probe = _key(heading.next_text)
        if not probe:
            continue
        for number in range(start, len(result)):
            if _key(result[number]).startswith(probe):
                result.insert(number, heading.text)
                present.add(key)
                start = number + 2
                break
    return result
