"""normalize_opportunities: amounts and currencies, deadlines read against the payload's date
(never the clock), the shipped synthetic records, idempotence, hostile input."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import msgspec
import pytest

from ccn_jobs.errors import InvalidPayload
from ccn_jobs.normalisation import IssueLog
from ccn_jobs.normalize_opportunities import (
    MAX_RECORDS,
    NormalizedOpportunity,
    NormalizeOpportunitiesPayload,
    RawOpportunity,
    normalize_opportunities,
    normalize_opportunity,
    read_deadline,
)
from ccn_jobs.registry import decode_payload, decode_result, result_to_builtins, run_job
from tests.support.normalization_data import AS_OF, lines, mismatches

OPPORTUNITIES = lines("opportunities.jsonl")
REFERENCE = dt.date.fromisoformat(AS_OF)


def opportunity(**fields: Any) -> NormalizedOpportunity:
    raw = RawOpportunity(source="test", source_record_id="o1", title="Grant", **fields)
    return normalize_opportunity(raw, REFERENCE)


def codes(record: NormalizedOpportunity) -> list[str]:
    return [issue.code for issue in record.issues]


@pytest.mark.parametrize(
    ("text", "hint", "money"),
    [
        ("$5,000", "USD", ("5000", "5000", "USD")),
        ("Up to $50,000", "USD", (None, "50000", "USD")),
        ("maximum: £10k", None, (None, "10000", "GBP")),
        ("At least €2.500", None, ("2500", None, "EUR")),
        ("from 1.000,50 EUR", None, ("1000.50", None, "EUR")),
        ("$5,000 - 25,000", "USD", ("5000", "25000", "USD")),
        ("between £1,000 and £10,000", None, ("1000", "10000", "GBP")),
        ("USD 1.5 million", None, ("1500000", "1500000", "USD")),
        ("250 000 €", None, ("250000", "250000", "EUR")),
        ("CHF 80'000", None, ("80", "80", "CHF")),  # an apostrophe is no thousands separator here
        ("$10,000 (about £8,000)", "USD", ("10000", "10000", "USD")),  # the first currency's amounts
        ("A$20,000", None, ("20000", "20000", "AUD")),
        ("$20,000", "CAD", ("20000", "20000", "CAD")),  # "$" is the record's dollar
        ("5,000 to 10,000", "GBP", ("5000", "10000", "GBP")),  # no currency written: the record's
        ("2027 round: grants of 5,000", "GBP", ("5000", "5000", "GBP")),  # a year is no amount
    ],
)
def test_amounts_and_currencies(text: str, hint: str | None, money: tuple[Any, ...]) -> None:
    record = opportunity(amount_text=text, currency=hint)
    assert (record.amount_min, record.amount_max, record.currency) == money
    assert codes(record) == []


@pytest.mark.parametrize(
    ("fields", "money", "issues"),
    [
        ({"amount_text": "$5,000"}, ("5000", "5000", "USD"), ["currency_assumed"]),
        ({"amount_text": "5,000"}, ("5000", "5000", None), ["currency_unknown"]),
        ({"amount_text": "Varies"}, (None, None, None), ["amount_unparsed"]),
        ({"amount_text": "$" + "9" * 40}, (None, None, None), ["amount_out_of_bounds", "amount_unparsed"]),
        ({"amount_text": f"${2**70}"}, (None, None, None), ["amount_out_of_bounds", "amount_unparsed"]),
        ({"award_floor": "£9,000", "award_ceiling": "£1,000"}, ("1000", "9000", "GBP"), ["amount_range_inverted"]),
        ({"award_floor": "£500", "amount_text": "up to £5,000"}, ("500", "5000", "GBP"), []),
    ],
)
def test_amounts_that_cannot_be_read_whole_are_reported(
    fields: dict[str, str], money: tuple[Any, ...], issues: list[str]
) -> None:
    record = opportunity(**fields)
    assert (record.amount_min, record.amount_max, record.currency) == money
    assert codes(record) == issues


@pytest.mark.parametrize(
    ("text", "order", "deadline"),
    [
        ("2027-03-15", None, "2027-03-15"),
        ("15 March 2027", None, "2027-03-15"),
        ("March 15, 2027 11:59 PM ET", None, "2027-03-15"),  # not the UTC day it falls on
        ("Mar 15 2027 11:00 p.m. Pacific Time", None, "2027-03-15"),
        ("15/03/2027", None, "2027-03-15"),  # only one reading is a date
        ("03/04/2027", "MDY", "2027-03-04"),
        ("03/04/2027", "DMY", "2027-04-03"),
        ("Applications close at noon on 14 February 2027", None, "2027-02-14"),
        ("Deadline: Friday, April 2, 2027 (5pm GMT)", None, "2027-04-02"),
        ("1 June", None, "2027-06-01"),  # no year: the next one after as_of
        ("7 December", None, "2027-12-07"),  # as_of's own day: the next one (dateparser's future)
        ("in 30 days", None, "2027-01-06"),
        ("tomorrow", None, "2026-12-08"),
    ],
)
def test_deadlines(text: str, order: Any, deadline: str) -> None:
    issues = IssueLog()
    assert read_deadline(text, REFERENCE, order, issues) == (deadline, False)
    assert list(issues) == []


@pytest.mark.parametrize(
    ("text", "issue", "rolling"),
    [
        ("03/04/2027", "deadline_ambiguous", False),
        ("31 February 2027", "deadline_unparsed", False),
        ("March 2027", "deadline_unparsed", False),  # no day
        ("1234567890", "deadline_unparsed", False),  # not read as an epoch timestamp
        ("15 March 1850", "deadline_out_of_range", False),
        ("Rolling", None, True),
        ("ongoing, reviewed quarterly", None, True),
    ],
)
def test_deadlines_that_cannot_be_read_are_reported_not_guessed(text: str, issue: str | None, rolling: bool) -> None:
    issues = IssueLog()
    assert read_deadline(text, REFERENCE, None, issues) == (None, rolling)
    assert [i.code for i in issues] == ([issue] if issue else [])


def test_deadlines_follow_the_payloads_date_not_the_clock() -> None:
    late = dt.date(2031, 7, 1)
    assert read_deadline("1 June", late, None, IssueLog()) == ("2032-06-01", False)
    assert read_deadline("in 30 days", late, None, IssueLog()) == ("2031-07-31", False)
    assert read_deadline("1 June", REFERENCE, None, IssueLog()) == ("2027-06-01", False)
    payload = {"records": [{"source": "s", "source_record_id": "1", "title": "t", "deadline_text": "1 June"}]}
    for as_of, deadline in (("2026-12-07", "2027-06-01"), ("2040-01-01", "2040-06-01")):
        result = run_job("normalize_opportunities", payload | {"as_of": as_of})
        assert result.records[0].deadline == deadline  # type: ignore[attr-defined]


@pytest.mark.parametrize("line", OPPORTUNITIES, ids=[line["raw"]["source_record_id"] for line in OPPORTUNITIES])
def test_shipped_records_normalise_as_expected(line: dict[str, Any]) -> None:
    result = normalize_opportunity(msgspec.convert(line["raw"], RawOpportunity), REFERENCE)
    assert mismatches(result, line["expect"]) == []


def as_raw(record: NormalizedOpportunity) -> RawOpportunity:
    return RawOpportunity(
        source=record.source,
        source_record_id=record.source_record_id,
        title=record.title,
        funder_name=record.funder_name,
        award_floor=record.amount_min,
        award_ceiling=record.amount_max,
        currency=record.currency,
        deadline_text=record.deadline or ("rolling" if record.rolling else None),
        eligibility_text=record.eligibility,
        categories=record.categories,
        url=record.url,
    )


def test_normalising_a_normalised_record_changes_nothing() -> None:
    for line in OPPORTUNITIES:
        record = normalize_opportunity(msgspec.convert(line["raw"], RawOpportunity), REFERENCE)
        again = normalize_opportunity(as_raw(record), REFERENCE)
        assert msgspec.structs.replace(again, issues=()) == msgspec.structs.replace(record, issues=())
        # amounts without a currency stay without one, and say so again
        assert set(codes(again)) <= set(codes(record)), line["raw"]["source_record_id"]


def test_results_meet_their_schema_and_keep_input_order() -> None:
    raws = [line["raw"] for line in OPPORTUNITIES]
    result = run_job("normalize_opportunities", {"records": raws, "as_of": AS_OF, "default_date_order": "DMY"})
    decoded = decode_result("normalize_opportunities", result_to_builtins(result))
    assert [r.source_record_id for r in decoded.records] == [r["source_record_id"] for r in raws]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"as_of": "2026-02-30"}, None),
        ({"as_of": "1066-10-14"}, None),
        ({"default_currency": "usd"}, "default_currency"),
        ({"default_date_order": "DDMMYY"}, "default_date_order"),
        (
            {"records": [{"source": "s", "source_record_id": "1", "title": "t", "amount_text": 2**70}]},
            "records[0].amount_text",
        ),
        ({"records": [{"source": "s", "source_record_id": "1", "title": "t\x07"}]}, "records[0].title"),
        ({"records": [{"source": "s", "source_record_id": "1", "title": "t" * 1001}]}, "records[0].title"),
        ({"records": [{"source": "s", "source_record_id": "1", "title": "t", "url": "u" * 5000}]}, "records[0].url"),
    ],
)
def test_bad_payloads_are_refused_with_the_field_named(change: dict[str, Any], field: str | None) -> None:
    payload = {"records": [{"source": "s", "source_record_id": "1", "title": "t"}], "as_of": AS_OF} | change
    with pytest.raises(InvalidPayload) as refused:
        decode_payload("normalize_opportunities", payload)
    assert refused.value.field == field


def test_batches_are_bounded() -> None:
    many = [{"source": "s", "source_record_id": str(n), "title": "t"} for n in range(MAX_RECORDS + 1)]
    with pytest.raises(InvalidPayload):
        decode_payload("normalize_opportunities", {"records": many, "as_of": AS_OF})


HOSTILE_PIECES = [
    "\u202e", "\u200b", "\u0430", "\uff15", "\u0665", "$", "£", "€", "US$", "EUR", "k", "m", "million", "-", "to",
    "up to", "at least", "9" * 30, "1,000", "2.5", ",", ".", " ", "\n", "March", "15", "2027", "/", "PM", "ET",
    "noon", "tomorrow", "in 3 days", "rolling", "https://", "x.example", "?utm_source=a", "%", "\U0001f600",
]  # fmt: skip


def test_hostile_text_in_every_field_never_raises_and_the_result_meets_its_schema() -> None:
    rng = random.Random(17)

    def junk(limit: int) -> str:
        return "".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(0, 10)))[:limit]

    records = tuple(
        RawOpportunity(
            source="fuzz",
            source_record_id=f"o{n}",
            title=junk(1000),
            funder_name=junk(1000),
            amount_text=junk(500),
            award_floor=junk(500) if n % 3 == 0 else None,
            award_ceiling=junk(500) if n % 4 == 0 else None,
            currency=rng.choice([None, "USD", "GBP", "CAD"]),
            deadline_text=junk(300),
            date_order=rng.choice([None, "DMY", "MDY", "YMD"]),
            eligibility_text=junk(20_000),
            url=junk(4096),
        )
        for n in range(MAX_RECORDS)
    )
    result = normalize_opportunities(NormalizeOpportunitiesPayload(records=records, as_of=AS_OF))
    decode_result("normalize_opportunities", result_to_builtins(result))
