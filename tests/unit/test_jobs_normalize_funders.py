"""normalize_funders and the rules it shares (ccn_jobs.normalisation, ccn_jobs.addresses): a
table per rule, the shipped synthetic records (tests/data/normalization), idempotence, results
that meet their own schema, and hostile input refused or cleaned, never an untyped error."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from ccn_jobs.addresses import country_code, format_postcode, region_code
from ccn_jobs.errors import DocumentRefused, InvalidPayload
from ccn_jobs.normalisation import (
    IssueLog,
    canonical_categories,
    canonical_website,
    clean_line,
    deconfused,
    display_case,
    load_vocabulary,
    normalise_ein,
)
from ccn_jobs.normalize_funders import (
    MAX_NAME_CHARS,
    MAX_RECORDS,
    NormalizedFunder,
    NormalizeFundersPayload,
    RawFunder,
    normalize_funder,
    normalize_funders,
)
from ccn_jobs.registry import decode_payload, decode_result, result_to_builtins, run_job
from tests.support.normalization_data import lines, mismatches

FUNDERS = lines("funders.jsonl")


def raw(name: str = "Test Fund", **fields: Any) -> RawFunder:
    return RawFunder(source="test", source_record_id="r1", name=name, **fields)


def codes(issues: IssueLog | tuple[Any, ...]) -> list[str]:
    return [issue.code for issue in issues]


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("BILL & MELINDA GATES FOUNDATION INC", "Bill & Melinda Gates Foundation Inc"),
        ("YMCA OF GREATER SEATTLE", "YMCA of Greater Seattle"),
        ("MCDONALD FAMILY TRUST", "McDonald Family Trust"),
        ("O'NEILL-SMITH FUND II", "O'Neill-Smith Fund II"),
        ("NPR FOUNDATION", "NPR Foundation"),
        ("500 5TH AVE N STE 200", "500 5th Ave N Ste 200"),
        ("PO BOX 12", "PO Box 12"),
        ("NSF", "NSF"),
        ("The Nuffield Foundation", "The Nuffield Foundation"),  # any lower case: as written
        ("eBay Foundation", "eBay Foundation"),
        ("1234", "1234"),
        ("LONDON SW1A 1AA", "London SW1A 1AA"),
        ("SAN FRANCISCO, CA 94105", "San Francisco, CA 94105"),
    ],
)
def test_display_case_title_cases_names_written_in_capitals(written: str, shown: str) -> None:
    assert display_case(written) == shown
    assert display_case(shown) == shown


@pytest.mark.parametrize(
    ("written", "cleaned"),
    [
        ("  Seed\t\nFund  ", "Seed Fund"),
        ("\u202eSeed\u202c Fund\u200b\ufeff", "Seed Fund"),  # bidi override, zero-width, BOM
        ("\uff33\uff45\uff45\uff44 Fund", "Seed Fund"),  # fullwidth letters
        ("Seed\u00adFund", "SeedFund"),  # soft hyphen
    ],
)
def test_cleaning_drops_invisible_characters_and_folds_width(written: str, cleaned: str) -> None:
    assert clean_line(written, 100) == cleaned


def test_look_alike_letters_in_a_latin_word_are_made_latin_and_other_scripts_left_alone() -> None:
    assert deconfused("G\u0430tes F\u03bfundation") == ("Gates Foundation", True)
    assert deconfused("\u041c\u043e\u0441\u043a\u0432\u0430 Fund") == (
        "\u041c\u043e\u0441\u043a\u0432\u0430 Fund",
        False,
    )
    spoof = normalize_funder(raw("G\u0430tes Foundation"))
    assert (spoof.name_key, codes(spoof.issues)) == ("gates foundation", ["homoglyphs_replaced"])


def test_a_long_value_is_cut_at_a_word_and_reported() -> None:
    result = normalize_funder(raw("Fund " * 100))
    assert len(result.name) <= MAX_NAME_CHARS and result.name.endswith("Fund")
    assert codes(result.issues) == ["truncated"]


@pytest.mark.parametrize(
    ("written", "formatted", "issue"),
    [
        ("56-2618866", "56-2618866", None),
        ("562618866", "56-2618866", None),
        ("56 2618866", "56-2618866", None),
        ("56\u20132618866", "56-2618866", None),  # an en dash
        ("\uff15\uff16-2618866", "56-2618866", None),  # fullwidth digits
        ("07-1234567", None, "invalid_ein"),  # a prefix never issued
        ("00-1234567", None, "invalid_ein"),
        ("56-261886", None, "invalid_ein"),
        ("56-26188660", None, "invalid_ein"),
        ("EIN 56-2618866", None, "invalid_ein"),
        ("\u0665\u0666-2618866", None, "invalid_ein"),  # Arabic-Indic digits are not an EIN's
        ("", None, None),
    ],
)
def test_eins_are_formatted_or_reported_never_corrected(written: str, formatted: str | None, issue: str | None) -> None:
    issues = IssueLog()
    assert normalise_ein(written, issues) == formatted
    assert codes(issues) == ([issue] if issue else [])


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("nsf.gov", "https://nsf.gov/"),
        ("HTTP://WWW.Example.ORG:80", "http://www.example.org/"),
        ("https://example.org:8443/a?b=1", "https://example.org:8443/a?b=1"),
        ("https://example.org/p?utm_source=x&id=3&gclid=y&fbclid=z#top", "https://example.org/p?id=3"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://example.org./", "https://example.org/"),
        (" https://example.org/a b ", "https://example.org/ab"),
        ("javascript:alert(1)", None),
        ("ftp://example.org/file", None),
        ("https://user:pw@example.org/", None),
        ("https://", None),
        ("https://exa mple.org:99999/", None),
    ],
)
def test_websites_are_canonical_or_reported(written: str, canonical: str | None) -> None:
    issues = IssueLog()
    assert canonical_website(written, issues) == canonical
    assert codes(issues) == ([] if canonical else ["invalid_website"])
    if canonical:
        assert canonical_website(canonical, IssueLog()) == canonical


@pytest.mark.parametrize(
    ("categories", "scheme", "ids", "ntee"),
    [
        (("T20",), "ntee", ("philanthropy",), ("T20",)),
        (("b82", "E"), "ntee", ("education", "health_care"), ("B82", "E")),
        (("ED", "ENV", "ST"), "grants_gov", ("environment", "education", "science_technology"), ()),
        (
            ("Education", "climate change", "Arts, Culture & Humanities"),
            "text",
            ("arts_culture", "education", "environment"),
            (),
        ),
        (("health_care", "youth"), "text", ("health_care", "youth_development"), ()),
        (("C35",), "text", ("environment",), ("C35",)),  # an NTEE code with digits under any scheme
    ],
)
def test_categories_map_to_the_vocabulary(categories: tuple[str, ...], scheme: Any, ids: Any, ntee: Any) -> None:
    issues = IssueLog()
    assert canonical_categories(categories, scheme, issues) == (
        tuple(sorted(ids, key=load_vocabulary().order.__getitem__)),
        ntee,
    )
    assert codes(issues) == []


def test_unknown_categories_are_reported_in_one_issue() -> None:
    issues = IssueLog()
    assert canonical_categories(("Education", "basket weaving", "e"), "text", issues) == (("education",), ())
    assert [(i.field, i.code, i.detail) for i in issues] == [
        ("categories", "unknown_category", "'basket weaving', 'e' name no category")
    ]
    issues = IssueLog()
    canonical_categories(tuple(f"zz{n}" for n in range(20)), "text", issues)
    assert [i.detail for i in issues] == ["'zz0', 'zz1', 'zz2' and 17 more name no category"]


def test_a_record_has_one_issue_per_field_and_code_whatever_its_input_repeats() -> None:
    spoofed = "G\u0430tes " * 80
    result = normalize_funder(raw(spoofed, aliases=(spoofed,) * 20, categories=("?",) * 20))
    assert [(i.field, i.code) for i in result.issues] == [
        ("name", "truncated"),
        ("name", "homoglyphs_replaced"),
        ("aliases", "truncated"),
        ("aliases", "homoglyphs_replaced"),
        ("categories", "unknown_category"),
    ]


def test_the_vocabulary_is_the_ntee_major_groups_and_maps_every_grants_gov_code() -> None:
    vocabulary = load_vocabulary()
    assert [c.ntee for c in vocabulary.categories] == [chr(code) for code in range(ord("A"), ord("Z") + 1)]
    assert {"AG", "AR", "ED", "ENV", "HL", "ST"} <= set(vocabulary.grants_gov)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("US", "US"),
        ("usa", "US"),
        ("U.S.A.", "US"),
        ("DEU", "DE"),
        ("Deutschland", "DE"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("Viet Nam", "VN"),
        ("Freedonia", None),
        ("", None),
    ],
)
def test_country_codes(text: str, code: str | None) -> None:
    assert country_code(text) == code


@pytest.mark.parametrize(
    ("text", "country", "code"),
    [
        ("WA", "US", "US-WA"),
        ("Washington", "US", "US-WA"),
        ("us-wa", None, "US-WA"),
        ("WA", None, None),  # a bare code needs its country
        ("WA", "AU", "AU-WA"),
        ("Ontario", None, "CA-ON"),
        ("Scotland", "GB", "GB-SCT"),
        ("Bavaria", "DE", None),
        ("US-ON", None, None),
    ],
)
def test_region_codes(text: str, country: str | None, code: str | None) -> None:
    assert region_code(text, country) == code


@pytest.mark.parametrize(
    ("written", "country", "formatted"),
    [
        ("981096910", "US", "98109-6910"),
        ("98109-6910", "US", "98109-6910"),
        ("98109", "US", "98109"),
        ("sw1a1aa", "GB", "SW1A 1AA"),
        ("EC1M 4EH", "GB", "EC1M 4EH"),
        ("k1a0b1", "CA", "K1A 0B1"),
        ("d02x285", "IE", "D02 X285"),
        ("1015cj", "NL", "1015 CJ"),
        ("10117", "DE", "10117"),
        ("114 55", "SE", "114 55"),
        ("1234", "US", None),
        ("ABCDE", "GB", None),
        ("75002", None, "75002"),
    ],
)
def test_postcodes_take_their_countrys_form(written: str, country: str | None, formatted: str | None) -> None:
    assert format_postcode(written, country) == formatted
    if formatted:
        assert format_postcode(formatted, country) == formatted


@pytest.mark.parametrize("line", FUNDERS, ids=[line["raw"]["source_record_id"] for line in FUNDERS])
def test_shipped_records_normalise_as_expected(line: dict[str, Any]) -> None:
    result = normalize_funder(msgspec.convert(line["raw"], RawFunder))
    assert mismatches(result, line["expect"]) == []


def as_raw(record: NormalizedFunder) -> RawFunder:
    """A normalised record given back as a raw one, as a second source would give it."""
    address = record.address
    return RawFunder(
        source=record.source,
        source_record_id=record.source_record_id,
        name=record.name,
        aliases=record.aliases,
        ein=record.ein,
        address_lines=address.lines,
        city=address.city,
        region=address.region or address.region_name,
        postcode=address.postcode or address.postcode_written,
        country=address.country,
        website=record.website,
        categories=record.categories + record.ntee_codes,
    )


def test_normalising_a_normalised_record_changes_nothing() -> None:
    payload = NormalizeFundersPayload(records=tuple(msgspec.convert(line["raw"], RawFunder) for line in FUNDERS))
    for record in normalize_funders(payload).records:
        again = normalize_funder(as_raw(record))
        assert msgspec.structs.replace(again, issues=()) == msgspec.structs.replace(record, issues=())
        # an unknown country is dropped: given back, the record has none (and says so)
        assert set(codes(again.issues)) - {"country_unknown"} <= set(codes(record.issues))


def test_results_meet_their_schema_and_keep_input_order() -> None:
    raws = [line["raw"] for line in FUNDERS]
    result = run_job("normalize_funders", {"records": raws})
    decoded = decode_result("normalize_funders", result_to_builtins(result))
    assert [r.source_record_id for r in decoded.records] == [r["source_record_id"] for r in raws]  # type: ignore[attr-defined]
    assert decoded.records_with_issues == sum(1 for line in FUNDERS if line["expect"].get("issues"))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Fund\x00"}, "records[0].name"),  # a control character
        ({"name": "x" * 1001}, "records[0].name"),
        ({"ein": 2**70}, "records[0].ein"),
        ({"aliases": ["a"] * 21}, "records[0].aliases"),
        ({"category_scheme": "sic"}, "records[0].category_scheme"),
        ({"source": "has space"}, "records[0].source"),
        ({"website": "https://x.example/" + "a" * 5000}, "records[0].website"),
        ({"extra": 1}, "records[0].extra"),
    ],
)
def test_bad_payloads_are_refused_with_the_field_named(change: dict[str, Any], field: str) -> None:
    record = {"source": "s", "source_record_id": "1", "name": "Fund"} | change
    with pytest.raises(InvalidPayload) as refused:
        decode_payload("normalize_funders", {"records": [record]})
    assert refused.value.field == field


def test_batches_are_bounded_and_their_records_unique() -> None:
    record = {"source": "s", "source_record_id": "1", "name": "Fund"}
    with pytest.raises(InvalidPayload, match="unique"):
        decode_payload("normalize_funders", {"records": [record, record]})
    many = [record | {"source_record_id": str(n)} for n in range(MAX_RECORDS + 1)]
    with pytest.raises(InvalidPayload):
        decode_payload("normalize_funders", {"records": many})
    with pytest.raises(InvalidPayload):
        decode_payload("normalize_funders", {"records": []})


HOSTILE_PIECES = [
    "\u202e", "\u200f", "\u200b", "\ufeff", "\u0430", "\u03bf", "\uff21", "\u0665", "&", ",", "-", "/", "#",
    "PO BOX", "Suite", "WA", "98109", "SW1A 1AA", "USA", "Deutschland", "9" * 30, "https://", "..", "%",
    "\u00e9", "\u4e2d", "\U0001f600", "\t", "\n", " ", "'", '"', "\\", "(", ")", "St", "N", "Foundation",
]  # fmt: skip


def test_hostile_text_in_every_field_never_raises_and_the_result_meets_its_schema() -> None:
    rng = random.Random(17)

    def junk(limit: int) -> str:
        return "".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(0, 12)))[:limit]

    records = [
        RawFunder(
            source="fuzz",
            source_record_id=f"r{n}",
            name=junk(1000),
            aliases=tuple(junk(1000) for _ in range(rng.randint(0, 3))),
            ein=junk(64),
            address_lines=tuple(junk(1000) for _ in range(rng.randint(0, 4))),
            city=junk(300),
            region=junk(300),
            postcode=junk(300),
            country=junk(300),
            website=junk(4096),
            categories=tuple(junk(300) for _ in range(rng.randint(0, 3))),
            category_scheme=rng.choice(["text", "ntee", "grants_gov"]),
        )
        for n in range(300)
    ]
    result = normalize_funders(NormalizeFundersPayload(records=tuple(records)))
    decode_result("normalize_funders", result_to_builtins(result))
    for record in result.records:
        again = normalize_funder(as_raw(record))
        assert msgspec.structs.replace(again, issues=()) == msgspec.structs.replace(record, issues=()), record


def test_a_batch_whose_result_would_not_fit_in_a_frame_fails_as_too_large() -> None:
    long_name = "Community Foundation of the Greater River Valley " * 6
    record = raw(long_name, aliases=tuple(f"{long_name} {n}" for n in range(20)))
    batch = tuple(msgspec.structs.replace(record, source_record_id=str(n)) for n in range(MAX_RECORDS))
    with pytest.raises(DocumentRefused) as refused:
        normalize_funders(NormalizeFundersPayload(records=batch))
    assert refused.value.code == "too_large"
    assert normalize_funders(NormalizeFundersPayload(records=batch[:20])).records[0].name_key
