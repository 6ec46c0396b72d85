"""The HTML evaluation set (ccn_jobs.html_eval_corpus) and the text-quality guard on it: the
ground truth is really in each page, the split is by template, and extract_text stays above
the target and above trafilatura alone on the held-out pages (the `html` bench group reports
the exact figures)."""

from __future__ import annotations

from html import escape

import pytest
import trafilatura

from ccn_jobs.extract_text import ExtractTextPayload, extract_text
from ccn_jobs.html_eval_corpus import HELDOUT_TEMPLATES, TEMPLATES, EvalPage, html_eval_pages
from ccn_jobs.nlp_metrics import token_scores

PAGES = html_eval_pages()


def mean_f1(pages: list[EvalPage], texts: list[str]) -> float:
    return sum(token_scores(p.truth, t).f1 for p, t in zip(pages, texts, strict=True)) / len(pages)


def test_the_set_is_deterministic_and_split_by_template() -> None:
    assert html_eval_pages() == PAGES
    assert len(TEMPLATES) == 10 and len(HELDOUT_TEMPLATES) == 4
    assert {p.template for p in PAGES if p.split == "heldout"} == HELDOUT_TEMPLATES
    assert {p.template for p in PAGES if p.split == "tuning"} == set(TEMPLATES) - HELDOUT_TEMPLATES
    assert len({p.name for p in PAGES}) == len(PAGES)


@pytest.mark.parametrize("page", PAGES[:: len(PAGES) // 20], ids=lambda p: p.name)
def test_every_true_line_is_in_its_page_and_the_title_is_not_part_of_the_truth(page: EvalPage) -> None:
    for line in page.truth.splitlines():
        assert escape(line) in page.html, line
    assert page.title not in page.truth.splitlines()
    assert "cookies" not in page.truth.casefold()


def test_token_scores_count_each_true_token_once() -> None:
    score = token_scores("grants for groups", "Grants grants for")
    assert (round(score.precision, 3), round(score.recall, 3)) == (0.667, 0.667)
    assert token_scores("", "").f1 == 1.0
    assert token_scores("text", "").f1 == 0.0


def test_extract_text_beats_trafilatura_alone_on_the_held_out_pages() -> None:
    heldout = [page for page in PAGES if page.split == "heldout"]
    ours = mean_f1(heldout, [extract_text(ExtractTextPayload(html=p.html, url=p.url)).text for p in heldout])
    theirs = max(
        mean_f1(
            heldout,
            [
                trafilatura.extract(p.html, include_comments=False, include_tables=True, **{mode: True}) or ""
                for p in heldout
            ],
        )
        for mode in ("favor_precision", "favor_recall")
    )
    assert ours >= 0.975
    assert ours > theirs
