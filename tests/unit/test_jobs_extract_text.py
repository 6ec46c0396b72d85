"""The extract_text job on the demo corpus and on hostile input: boilerplate goes, the main
text, title and language stay, and the same page gives the same bytes everywhere."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import msgspec
import pytest

from ccn_jobs.demo_corpus import DemoPage, as_jobs_jsonl, grant_pages
from ccn_jobs.extract_text import (
    EMPTY_RESULT,
    MAX_TEXT_CHARS,
    ExtractTextPayload,
    ExtractTextResult,
    extract_text,
)
from ccn_jobs.registry import decode_payload, decode_result

CORPUS = grant_pages(12)

# Per language: boilerplate that is on every page and must not reach the text, and a sentence
# opening of the main content that must.
BOILERPLATE = {
    "en": ("We use cookies", "Sign up to our newsletter", "Registered charity number", "Other open programmes"),
    "de": (
        "Diese Website verwendet Cookies",
        "Abonnieren Sie unseren Newsletter",
        "Impressum",
        "Weitere Förderprogramme",
    ),
    "fr": (
        "Ce site utilise des cookies",
        "Inscrivez-vous à notre lettre",
        "Mentions légales",
        "Autres appels en cours",
    ),
    "es": ("Utilizamos cookies", "Suscríbase a nuestro boletín", "Aviso legal", "Otras convocatorias abiertas"),
}
DEADLINE = {
    "en": "The closing date for applications is",
    "de": "Anträge können bis zum",
    "fr": "Les dossiers doivent être déposés avant le",
    "es": "El plazo para presentar las solicitudes termina el",
}
NAV = {
    "en": ("About us", "Stories"),
    "de": ("Startseite", "Aktuelles"),
    "fr": ("Qui sommes-nous", "Actualités"),
    "es": ("Quiénes somos", "Noticias"),
}


def run(html: str, url: str | None = None) -> ExtractTextResult:
    return extract_text(ExtractTextPayload(html=html, url=url))


@pytest.fixture(scope="module")
def results() -> list[ExtractTextResult]:
    return [run(page.html, page.url) for page in CORPUS]


def test_the_corpus_covers_four_languages_and_three_layouts() -> None:
    assert sorted({page.language for page in CORPUS}) == ["de", "en", "es", "fr"]
    assert any('class="key-facts"' in page.html for page in CORPUS)
    assert any('<div id="page">' in page.html for page in CORPUS)
    assert any("<article>" in page.html for page in CORPUS)


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_main_text_title_and_language_are_found(index: int, results: list[ExtractTextResult]) -> None:
    page, result = CORPUS[index], results[index]
    assert result.title == page.title
    assert result.language == page.language
    assert page.title not in result.text.splitlines()[:3], "the title is in `title`; the text does not repeat it"
    assert DEADLINE[page.language] in result.text
    assert result.chars == len(result.text) > 1000
    assert result.confidence >= 0.95


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_boilerplate_is_dropped(index: int, results: list[ExtractTextResult]) -> None:
    page, result = CORPUS[index], results[index]
    for phrase in (*BOILERPLATE[page.language], *NAV[page.language]):
        assert phrase in page.html, f"corpus no longer has {phrase!r}: the test would prove nothing"
        assert phrase not in result.text
    assert "©" not in result.text


def test_key_facts_tables_are_kept(results: list[ExtractTextResult]) -> None:
    with_table = [(page, result) for page, result in zip(CORPUS, results, strict=True) if "key-facts" in page.html]
    assert with_table
    for page, result in with_table:
        label = {"en": "Closing date", "de": "Antragsschluss", "fr": "Date limite", "es": "Fecha límite"}
        assert label[page.language] in result.text


def test_text_is_normalised_one_block_per_line(results: list[ExtractTextResult]) -> None:
    for result in results:
        lines = result.text.split("\n")
        assert all(line == " ".join(line.split()) and line for line in lines)


def test_results_satisfy_their_own_schema(results: list[ExtractTextResult]) -> None:
    for result in results:
        assert decode_result("extract_text", msgspec.json.encode(result)) == result


def _digest(pages: list[DemoPage]) -> str:
    results = [run(page.html, page.url) for page in pages]
    return hashlib.sha256(msgspec.json.encode(results, order="sorted")).hexdigest()


def test_same_page_same_bytes_within_a_process(results: list[ExtractTextResult]) -> None:
    again = [run(page.html, page.url) for page in CORPUS]
    assert msgspec.json.encode(again) == msgspec.json.encode(results)


def test_same_page_same_bytes_in_another_process_with_another_hash_seed() -> None:
    pages = grant_pages(4)
    script = (
        "import hashlib, msgspec\n"
        "from ccn_jobs.demo_corpus import grant_pages\n"
        "from ccn_jobs.extract_text import ExtractTextPayload, extract_text\n"
        "rs = [extract_text(ExtractTextPayload(html=p.html, url=p.url)) for p in grant_pages(4)]\n"
        "print(hashlib.sha256(msgspec.json.encode(rs, order='sorted')).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == _digest(pages)


def test_the_corpus_is_deterministic_and_grows_by_prefix() -> None:
    assert grant_pages(6) == grant_pages(6, seed=0)
    assert grant_pages(12)[:6] == grant_pages(6)
    assert grant_pages(3, seed=1) != grant_pages(3, seed=0)
    assert len({page.url for page in CORPUS}) == len(CORPUS)


def test_corpus_as_jobs_jsonl_decodes_to_the_pages() -> None:
    pages = grant_pages(3)
    lines = as_jobs_jsonl(pages).splitlines()
    assert len(lines) == 3
    for line, page in zip(lines, pages, strict=True):
        job = msgspec.json.decode(line)
        assert job["job_type"] == "extract_text"
        payload = decode_payload(job["job_type"], job["payload"])
        assert payload == ExtractTextPayload(html=page.html, url=page.url)


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n\t",
        "\x00\x01\x02<<<>>>&&&;;;</div></p>" * 10,
        "".join(chr(code) for code in range(1, 0x2FFF, 7)),
        "<div>" * 50_000 + "deep" + "</div>" * 50_000,
        "<html><body><nav><ul><li><a href='/'>Home</a></li></ul></nav><footer>© 2026 Nobody</footer></body></html>",
    ],
    ids=["empty", "whitespace", "garbage", "codepoints", "deeply-nested", "only-boilerplate"],
)
def test_pages_without_main_text_give_an_empty_result(html: str) -> None:
    assert run(html) == EMPTY_RESULT


def test_a_lone_surrogate_does_not_break_the_result() -> None:
    body = "<p>" + "Grants for community groups in the valley \ud800 are open now. " * 10 + "</p>"
    payload = decode_payload("extract_text", {"html": f"<html><body><article>{body}</article></body></html>"})
    assert isinstance(payload, ExtractTextPayload)
    result = extract_text(payload)
    assert result.language == "en"
    assert "\ud800" not in result.text
    assert msgspec.json.encode(result)


def test_extracted_text_is_truncated_to_the_documented_maximum() -> None:
    paragraphs = "".join(
        f"<p>Paragraph {i}: the foundation supports community project number {i} across the region.</p>"
        for i in range(3_000)
    )
    result = run(f"<html><body><article>{paragraphs}</article></body></html>")
    assert result.chars == len(result.text)
    assert MAX_TEXT_CHARS - 100 < result.chars <= MAX_TEXT_CHARS
    assert result.text.startswith("Paragraph 0:")


def test_confidence_grows_with_the_amount_of_text() -> None:
    sentence = "The foundation funds community groups that run projects for local people."
    thin = run(f"<html><body><article><p>{sentence}</p></article></body></html>")
    full = run(f"<html><body><article><p>{sentence * 6}</p></article></body></html>")
    assert thin.language == full.language == "en"
    # extraction share is chars/250 for the thin page, so confidence is at most that share
    assert 0 < thin.confidence <= round(thin.chars / 250, 4) < 1
    assert full.confidence > 0.9


def test_text_without_a_language_scores_at_most_one_half() -> None:
    codes = "REF-2026-0001 REF-2026-0002 12 345 678 90 " * 10
    result = run(f"<html><body><article><p>{codes}</p></article></body></html>")
    assert result.chars > 250
    assert result.language is None
    assert result.confidence == 0.5


def test_confidence_is_the_documented_formula() -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    sentence = "Die Stiftung fördert Vereine, die Kindern im Stadtteil beim Lernen helfen."
    result = run(f"<html><body><article><p>{sentence}</p></article></body></html>")
    code, probability = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True).classify(result.text)
    assert result.language == code == "de"
    expected = round(min(1.0, result.chars / 250) * (0.5 + 0.5 * round(probability, 4)), 4)
    assert result.confidence == expected


def test_repeated_paragraphs_are_kept_once_short_repeated_lines_stay() -> None:
    paragraph = "<p>Applications for the spring round of the Seed Fund open on 1 March.</p>"
    section = "<h2>Deadline</h2><p>{}</p>"
    body = (
        paragraph
        + section.format("Small grants close on 30 April for all community groups in the valley.")
        + paragraph
        + section.format("Large grants close on 31 May for registered charities across the region.")
        + paragraph
    )
    result = run(f"<html><body><article>{body}</article></body></html>")
    assert result.text.count("Applications for the spring round") == 1
    assert result.text.count("Deadline") == 2
