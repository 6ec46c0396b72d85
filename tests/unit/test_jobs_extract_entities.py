"""extract_entities: each entity type in the forms pages write it, normalised, with the span
it was read from; dates read against the payload's reference date, never the clock; hostile
text and payloads off the schema end in a result or a typed refusal, in bounded time."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ccn_jobs.entity_rules import ENTITY_TYPES
from ccn_jobs.errors import InvalidPayload, InvalidResult
from ccn_jobs.extract_entities import (
    MAX_ENTITIES,
    MAX_TEXT_CHARS,
    ExtractEntitiesPayload,
    ExtractEntitiesResult,
    extract_entities,
)
from ccn_jobs.nlp_corpus import ENTITY_EVAL_PATH, EntityDocument
from ccn_jobs.nlp_metrics import Span, entity_scores
from ccn_jobs.registry import JOB_TYPES, decode_payload, decode_result, result_to_builtins


def entities(text: str, reference_date: str | None = "2026-12-01") -> list[tuple[str, str, str, str | None]]:
    """(type, text read, value, currency) of every entity, in text order."""
    result = extract_entities(ExtractEntitiesPayload(text=text, reference_date=reference_date))
    return [(e.type, text[e.start : e.end], e.value, e.currency) for e in result.entities]


def of_type(text: str, entity_type: str, reference_date: str | None = "2026-12-01") -> list[tuple[str, str]]:
    return [(read, value) for kind, read, value, _ in entities(text, reference_date) if kind == entity_type]


def test_the_job_type_is_registered_with_its_types() -> None:
    job = JOB_TYPES["extract_entities"]
    assert (job.payload_type, job.result_type, job.handler) == (
        ExtractEntitiesPayload,
        ExtractEntitiesResult,
        extract_entities,
    )


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("15 March 2027", "2027-03-15"),
        ("March 15, 2027", "2027-03-15"),
        ("Mar 15, 2027", "2027-03-15"),
        ("15th March 2027", "2027-03-15"),
        ("2027-03-15", "2027-03-15"),
        ("15/03/2027", "2027-03-15"),
        ("03/15/2027", "2027-03-15"),  # month first only where day first is impossible
        ("15. März 2027", "2027-03-15"),
        ("15.03.2027", "2027-03-15"),
        ("1er avril 2027", "2027-04-01"),
        ("15 de marzo de 2027", "2027-03-15"),
        ("15 March", "2027-03-15"),  # the next 15 March from the reference date
        ("20 December", "2026-12-20"),
        ("within 30 days", "2026-12-31"),
        ("in two weeks", "2026-12-15"),
    ],
)
def test_deadlines_are_read_in_many_forms_as_iso_dates(written: str, iso: str) -> None:
    text = f"The deadline for applications is {written}."
    assert of_type(text, "deadline_date") == [(written, iso)]


def test_year_less_and_relative_dates_need_the_reference_date() -> None:
    text = "Applications close on 15 March. Submit within 30 days. The deadline is 1 May 2027."
    assert of_type(text, "deadline_date", reference_date=None) == [("1 May 2027", "2027-05-01")]
    assert of_type(text, "deadline_date", reference_date="2027-04-01") == [
        ("15 March", "2028-03-15"),
        ("within 30 days", "2027-05-01"),
        ("1 May 2027", "2027-05-01"),
    ]


def test_dates_that_are_not_deadlines_are_left_out() -> None:
    text = (
        "The deadline is 1 May 2027. Decisions will be announced on 3 July 2027. Projects must start after "
        "1 September 2027. We were founded on 2 March 1987. Interviews will take place on 9 June 2027. "
        "Not a date: 31 February 2027, 45/13/2027."
    )
    assert of_type(text, "deadline_date") == [("1 May 2027", "2027-05-01")]


@pytest.mark.parametrize(
    ("written", "value", "currency"),
    [
        ("£10,000", "10000", "GBP"),
        ("$2.5 million", "2500000", "USD"),
        ("€50k", "50000", "EUR"),
        ("CA$20,000", "20000", "CAD"),
        ("A$1.5m", "1500000", "AUD"),
        ("USD 5,000", "5000", "USD"),
        ("EUR 1.234,50", "1234.50", "EUR"),
        ("10.000 Euro", "10000", "EUR"),
        ("25\u00a0000 €", "25000", "EUR"),
        ("25 000 euros", "25000", "EUR"),
        ("15,000 pounds", "15000", "GBP"),
        ("£12.50", "12.50", "GBP"),
        ("CHF 40'000", None, None),  # a grouping this library does not read: nothing, rather than a wrong number
    ],
)
def test_amounts_are_decimal_strings_with_iso_currencies(written: str, value: str | None, currency: str | None) -> None:
    found = [
        (read, v, c)
        for kind, read, v, c in entities(f"Grants of up to {written} are available.")
        if kind == "monetary_amount"
    ]
    if value is None:
        assert all(read != written for read, _, _ in found)
    else:
        assert found == [(written, value, currency)]


def test_names_areas_and_people_are_found_with_their_spans() -> None:
    text = (
        "The Greyhaven Heritage Trust has opened the Open Doors Small Grants for groups working on mental health "
        "and young people. Die Lindenhof-Stiftung fördert das Programm „Kultur vor Ort“. "
        "La Fundación Ribera Norte apoya proyectos. For questions, contact Dr Jane Smith, Programme Manager."
    )
    assert entities(text) == [
        ("organization", "Greyhaven Heritage Trust", "Greyhaven Heritage Trust", None),
        ("opportunity_title", "Open Doors Small Grants", "Open Doors Small Grants", None),
        ("program_area", "mental health", "health", None),
        ("program_area", "young people", "youth", None),
        ("organization", "Lindenhof-Stiftung", "Lindenhof-Stiftung", None),
        ("opportunity_title", "Kultur vor Ort", "Kultur vor Ort", None),
        ("organization", "Fundación Ribera Norte", "Fundación Ribera Norte", None),
        ("person_name", "Jane Smith", "Jane Smith", None),
    ]


def test_a_name_across_a_line_break_keeps_its_span_and_has_one_space_in_its_value() -> None:
    assert entities("Grants from the Kestrel\nCharitable  Trust.") == [
        ("organization", "Kestrel\nCharitable  Trust", "Kestrel Charitable Trust", None)
    ]


def evaluation_set(split: str) -> list[EntityDocument]:
    lines = ENTITY_EVAL_PATH.read_bytes().splitlines()
    return [doc for doc in (msgspec.json.decode(line, type=EntityDocument) for line in lines) if doc.split == split]


def test_held_out_quality_for_dates_and_amounts_does_not_regress() -> None:
    """The entity evaluation set's held-out half (nlp_corpus): a guard; the bench reports all types."""
    documents = evaluation_set("heldout")
    found = [extract_entities(ExtractEntitiesPayload(text=d.text, reference_date=d.reference_date)) for d in documents]
    scores = entity_scores(
        [[Span(e.type, e.start, e.end, f"{e.value}{e.currency or ''}") for e in d.entities] for d in documents],
        [[Span(e.type, e.start, e.end, f"{e.value}{e.currency or ''}") for e in r.entities] for r in found],
        ENTITY_TYPES,
    )
    by_type = {score.name: score for score in scores.per_class}
    assert by_type["deadline_date"].f1 >= 0.85 and by_type["monetary_amount"].f1 >= 0.85, by_type


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": 5}, "text"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
        ({"text": "x", "reference_date": "1 May 2027"}, "reference_date"),
        ({"text": "x", "reference_date": "2027-05-01\n"}, "reference_date"),
        ({"text": "x", "language": "en"}, "language"),
        ({}, "text"),
    ],
)
def test_payloads_off_the_schema_are_refused_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("extract_entities", payload)
    assert caught.value.field == field


def test_an_impossible_reference_date_is_refused() -> None:
    with pytest.raises(InvalidPayload, match="not a calendar date"):
        decode_payload("extract_entities", {"text": "x", "reference_date": "2027-02-30"})


def test_a_result_that_contradicts_itself_is_refused() -> None:
    good = result_to_builtins(extract_entities(ExtractEntitiesPayload(text="Up to £5,000 from the Kestrel Trust.")))
    assert decode_result("extract_entities", good).entities[0].value == "5000"  # type: ignore[attr-defined]
    amount, organisation = good["entities"]
    for bad in (
        {**amount, "currency": None},
        {**organisation, "currency": "GBP"},
        {**amount, "end": amount["start"]},
        {**amount, "currency": "pounds"},
        {**amount, "type": "salary"},
    ):
        with pytest.raises(InvalidResult):
            decode_result("extract_entities", {**good, "entities": [bad]})


def test_text_in_many_scripts_gives_a_valid_result() -> None:
    texts = [
        "资助金额最高为50,000元\uff0c截止日期为2027年3月14日。",
        "آخر موعد للتقديم ١٤ مارس ٢٠٢٧. المنحة تصل إلى ‎$5,000",
        "अंतिम तिथि 14 मार्च 2027 है। अनुदान ₹5,00,000 तक।",
        "Крайний срок подачи заявок — 14 марта 2027 года, грант до 100 000 рублей.",
        "締め切りは2027年3月14日です。助成額は最大50万円。",
        "\u202eevil\u202c e\u0301\u0301 🎉 Deadline: 14 March 2027 💷 £5,000",
    ]
    for text in texts:
        result = extract_entities(ExtractEntitiesPayload(text=text, reference_date="2026-12-01"))
        for entity in result.entities:
            assert 0 <= entity.start < entity.end <= len(text)
    assert ("deadline_date", "14 March 2027", "2027-03-14", None) in entities(texts[-1])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "unit",
    [
        "1,000,",  # digit groups without end
        "Aaaa ",  # capitalised words that never reach a suffix
        "£",
        "15 March ",
        "«\u201e",
        "in in ",
        "deadline in two weeks ",
        "contact Ab ",
        "a",
    ],
)
def test_the_longest_single_line_of_hostile_text_ends_in_bounded_time(unit: str) -> None:
    text = (unit * (MAX_TEXT_CHARS // len(unit) + 1))[:MAX_TEXT_CHARS]
    result = extract_entities(ExtractEntitiesPayload(text=text, reference_date="2026-12-01"))
    assert len(result.entities) <= MAX_ENTITIES


def test_more_entities_than_the_bound_are_cut_and_said_to_be() -> None:
    result = extract_entities(ExtractEntitiesPayload(text="£1 " * (MAX_ENTITIES + 500)))
    assert len(result.entities) == MAX_ENTITIES and result.truncated
    assert not extract_entities(ExtractEntitiesPayload(text="£1 " * 10)).truncated


def test_a_megabyte_single_line_is_refused_by_the_schema() -> None:
    with pytest.raises(InvalidPayload) as caught:
        decode_payload("extract_entities", b'{"text": "' + b"9" * 1_000_000 + b'"}')
    assert caught.value.field == "text"
