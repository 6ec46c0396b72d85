"""normalize_locations: country, region and city with a confidence, on the shipped synthetic
locations; a normalised location written back as text reads the same; hostile input."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from ccn_jobs.errors import InvalidPayload
from ccn_jobs.normalize_locations import (
    MAX_LOCATIONS,
    LocationInput,
    NormalizedLocation,
    NormalizeLocationsPayload,
    normalize_location,
    normalize_locations,
)
from ccn_jobs.registry import decode_payload, decode_result, result_to_builtins
from tests.support.normalization_data import lines, mismatches

LOCATIONS = lines("locations.jsonl")


@pytest.mark.parametrize("line", LOCATIONS, ids=[line["input"]["text"][:30] for line in LOCATIONS])
def test_shipped_locations_normalise_as_expected(line: dict[str, Any]) -> None:
    result = normalize_location(msgspec.convert(line["input"], LocationInput))
    assert mismatches(result, line["expect"]) == []


def as_text(location: NormalizedLocation) -> str:
    """ "Toronto, CA-ON": the region says its country."""
    return ", ".join(part for part in (location.city, location.region or location.country) if part)


def test_a_normalised_location_written_back_reads_the_same() -> None:
    for line in LOCATIONS:
        first = normalize_location(msgspec.convert(line["input"], LocationInput))
        if first.country is None:
            continue
        again = normalize_location(LocationInput(id=first.id, text=as_text(first)))
        assert (again.country, again.region, again.city) == (first.country, first.region, first.city), as_text(first)
        assert again.confidence >= min(first.confidence, 0.9)


def test_confidence_orders_the_evidence() -> None:
    def confidence(text: str, hint: str | None = None) -> float:
        return normalize_location(LocationInput(id="x", text=text, country_hint=hint)).confidence

    named, by_state, by_postcode, by_hint, alone = (
        confidence("Seattle, USA"),
        confidence("Seattle, WA"),
        confidence("London SW1A 1AA"),
        confidence("Seattle", "US"),
        confidence("Seattle"),
    )
    assert named > by_state > by_postcode > by_hint > alone > 0
    assert confidence("Online") == 0.0


def test_results_meet_their_schema_and_ids_are_unique() -> None:
    payload = {"locations": [line["input"] for line in LOCATIONS]}
    decoded = decode_payload("normalize_locations", payload)
    result = normalize_locations(decoded)  # type: ignore[arg-type]
    decode_result("normalize_locations", result_to_builtins(result))
    assert [loc.id for loc in result.locations] == [line["input"]["id"] for line in LOCATIONS]
    with pytest.raises(InvalidPayload, match="unique"):
        decode_payload("normalize_locations", {"locations": [{"id": "a", "text": "x"}] * 2})


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"locations": []}, "locations"),
        ({"locations": [{"id": "a", "text": "x" * 2001}]}, "locations[0].text"),
        ({"locations": [{"id": "a", "text": "x\x1b[31m"}]}, "locations[0].text"),
        ({"locations": [{"id": "a", "text": 2**70}]}, "locations[0].text"),
        ({"locations": [{"id": "a", "text": "x", "country_hint": "usa"}]}, "locations[0].country_hint"),
        ({"locations": [{"id": "a b", "text": "x"}]}, "locations[0].id"),
        ({"locations": [{"id": str(n), "text": "x"} for n in range(MAX_LOCATIONS + 1)]}, "locations"),
    ],
)
def test_bad_payloads_are_refused_with_the_field_named(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPayload) as refused:
        decode_payload("normalize_locations", payload)
    assert refused.value.field == field


HOSTILE_PIECES = [
    "\u202e", "\u200f", "\u0430", "\uff37\uff21", ",", ", ", "WA", "CA", "Seattle", "London", "SW1A 1AA", "98109",
    "USA", "UK", "EU", "European Union", "Ontario", "worldwide", "Nationwide", "Online", "9" * 40, "中", " ",
    "\n", "Scotland", "Washington", "\U0001f600", "-", "é",
]  # fmt: skip


def test_hostile_text_never_raises_and_the_result_meets_its_schema() -> None:
    rng = random.Random(17)
    locations = tuple(
        LocationInput(
            id=f"l{n}",
            text="".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(0, 12))),
            country_hint=rng.choice([None, "US", "GB", "CA"]),
        )
        for n in range(MAX_LOCATIONS)
    )
    result = normalize_locations(NormalizeLocationsPayload(locations=locations))
    decode_result("normalize_locations", result_to_builtins(result))
