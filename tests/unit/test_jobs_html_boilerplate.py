"""extract_text's corrections around trafilatura (ccn_jobs.html_boilerplate): layout tables,
accordion questions, the title, menu links and page furniture, and headings put back."""

from __future__ import annotations

import pytest

from ccn_jobs.extract_text import ExtractTextPayload, extract_text
from ccn_jobs.html_boilerplate import Heading, Prepared, corrected_lines, is_furniture

PARAGRAPHS = (
    "The Harbour Trust funds community groups that bring neighbours together around food and growing.",
    "Grants of up to five thousand pounds are available for projects that last no longer than a year.",
    "Applications are read by a panel of residents, who meet every two months to decide on them.",
)


def page(body: str, title: str = "Neighbourhood Growing Grants") -> str:
    return (
        f"<html><head><title>{title} | Harbour Trust</title></head><body>"
        '<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li>'
        f'<li><a href="/apply">How to apply</a></li></ul></nav>{body}'
        "<footer><p>© 2026 Harbour Trust. All rights reserved.</p></footer></body></html>"
    )


def text_of(html: str) -> str:
    return extract_text(ExtractTextPayload(html=html, url="https://harbour.example/grants")).text


def test_a_layout_table_is_read_as_blocks_and_a_data_table_inside_it_stays_a_table() -> None:
    html = page(
        '<table width="100%"><tr><td class="menu"><a href="/">Home</a><br><a href="/news">News</a></td><td>'
        f"<h1>Neighbourhood Growing Grants</h1><p>{PARAGRAPHS[0]}</p>"
        "<table><tr><th>Grant size</th><td>Up to £5,000</td></tr><tr><th>Closing date</th><td>1 May 2027</td></tr>"
        f"</table><p>{PARAGRAPHS[1]}</p><p>{PARAGRAPHS[2]}</p></td></tr></table>"
    )
    lines = text_of(html).splitlines()
    assert [line for line in lines if line in PARAGRAPHS] == list(PARAGRAPHS), "each paragraph a line of its own"
    assert any("Grant size" in line and "Up to £5,000" in line and line.startswith("|") for line in lines)
    assert "News" not in lines


def test_an_accordion_question_in_a_button_is_kept() -> None:
    html = page(
        f"<main><h1>Neighbourhood Growing Grants</h1><p>{PARAGRAPHS[0]}</p><p>{PARAGRAPHS[1]}</p>"
        '<div class="accordion-item"><h3 class="accordion-header"><button class="accordion-button">'
        'Can individuals apply for a grant?</button></h3><div class="accordion-collapse"><p>No, but a constituted '
        "group can apply on behalf of its members and volunteers.</p></div></div></main>"
    )
    assert "Can individuals apply for a grant?" in text_of(html).splitlines()


def test_the_title_menu_links_and_furniture_are_dropped_and_a_heading_named_like_a_link_is_kept() -> None:
    html = page(
        "<main><h1>Neighbourhood Growing Grants</h1><p>Published 3 February 2027</p><p>Share this page</p>"
        f"<p>{PARAGRAPHS[0]}</p><h2>How to apply</h2><p>{PARAGRAPHS[1]}</p><p>{PARAGRAPHS[2]}</p>"
        '<p><a href="#top">Back to top</a></p></main>'
    )
    result = extract_text(ExtractTextPayload(html=html))
    lines = result.text.splitlines()
    assert result.title == "Neighbourhood Growing Grants"
    assert lines == [PARAGRAPHS[0], "How to apply", PARAGRAPHS[1], PARAGRAPHS[2]]


@pytest.mark.parametrize(
    "line",
    [
        "Published 3 February 2027",
        "Last updated: 10 March 2027",
        "From: Harbour Trust",
        "Share this:",
        "- Print this page",
        "Back to top",
        "© 2027 Harbour Trust. Registered charity 1234567.",
        "Copyright 2026 Harbour Trust | Site map | Disclaimer",
        "Is this page useful?",
        "6 min read",
        "Tagged community, grants",
        "@harbourtrust · 2,314 followers",
        "Zuletzt aktualisiert am 3. Mai 2026",
        "Mis à jour le 3 mai 2026",
    ],
)
def test_furniture_lines_are_recognised(line: str) -> None:
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    [
        "Published research shows that small grants reach groups larger funders miss.",
        "Grants are shared among groups in the district; the latest round was updated to include schools.",
        "Who can apply",
        "Share your ideas with us: we want to hear from residents before we design the next round of the fund, "
        "and every response is read by a member of the grants team within two weeks of arriving.",
    ],
)
def test_text_is_not_furniture(line: str) -> None:
    assert not is_furniture(line)


def test_a_lost_heading_is_put_back_before_the_text_it_heads_and_only_there() -> None:
    prepared = Prepared(
        headings=[
            Heading("Who can apply", PARAGRAPHS[1][:40]),
            Heading("Sidebar heading", "Text that was never extracted at all, so"),
        ],
        titles=["Neighbourhood Growing Grants"],
        title="Neighbourhood Growing Grants",
        menu_links=frozenset(),
    )
    lines = ["Neighbourhood Growing Grants", PARAGRAPHS[0], PARAGRAPHS[1], PARAGRAPHS[2]]
    assert corrected_lines(lines, prepared) == [PARAGRAPHS[0], "Who can apply", PARAGRAPHS[1], PARAGRAPHS[2]]
    already = [PARAGRAPHS[0], "Who can apply", PARAGRAPHS[1]]
    assert corrected_lines(already, prepared) == already


def test_a_page_of_menus_only_still_gives_no_text() -> None:
    html = page("<aside><p>Sign up to our newsletter</p></aside>")
    assert text_of(html) == ""
