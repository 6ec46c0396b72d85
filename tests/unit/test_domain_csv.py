"""The allow-list CSV parser: the shipped example loads whole; each bad row is rejected with its
line and why while the others load; a file that cannot be read as a whole is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccn_core.domain.domain_policy import AllowDomain, BlockDomain, DomainPolicyDecider, policy_id
from ccn_core.domain_csv import MAX_CSV_BYTES, MAX_ROWS, parse_domain_csv
from ccn_core.errors import BadInput

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "domains.csv"
HEADER = "domain,permission,requests_per_minute,allowed_paths,notes,reviewer,reviewed_at\n"


def parse(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str, str]]]:
    result = parse_domain_csv(text.encode("utf-8"), by="importer", now=NOW)
    return (
        [(row.line, row.domain) for row in result.accepted],
        [(row.line, row.domain, row.reason) for row in result.rejected],
    )


def test_the_shipped_example_loads_whole_and_its_commands_apply() -> None:
    result = parse_domain_csv(EXAMPLE.read_bytes(), by="importer", now=NOW)
    assert result.rejected == []
    assert [row.domain for row in result.accepted] == [
        "grants.example.org",
        "www.foundation.example",
        "xn--bcher-stiftung-gsb.example",
        "members.example.net",
    ]
    grants = result.accepted[0].command
    assert isinstance(grants, AllowDomain)
    assert grants.limits.allowed_paths == ("/grants", "/funding")
    assert grants.limits.allowed_patterns == ("/*.pdf$",)
    assert grants.limits.requests_per_minute == 30 and grants.limits.max_concurrent == 2
    assert grants.limits.reviewed_at == datetime(2026, 11, 30, tzinfo=UTC)
    blocked = result.accepted[3].command
    assert isinstance(blocked, BlockDomain) and blocked.reason.startswith("Terms of use")
    decider = DomainPolicyDecider()
    for row in result.accepted:
        events = decider.decide(row.command, decider.initial_state(policy_id(row.domain)), NOW)
        assert len(events) == 1


BAD_ROWS: list[tuple[str, str, str]] = [
    ("permission", "a.example.org,maybe,,,,,", "is not allow or block"),
    ("rate zero", "a.example.org,allow,0,,,,", "requests_per_minute"),
    ("rate not a number", "a.example.org,allow,fast,,,,", "is not a whole number"),
    ("rate negative", "a.example.org,allow,-5,,,,", "is not a whole number"),
    ("rate too big", "a.example.org,allow,100000,,,,", "requests_per_minute"),
    ("path without slash", "a.example.org,allow,,grants,,,", "allowed_paths"),
    ("an IP address", "10.0.0.1,allow,,,,,", "IP address"),
    ("a single label", "intranet,allow,,,,,", "single-label"),
    ("no domain", ",allow,,,,,", "no host"),
    ("a bad host", "exa mple.org,allow,,,,,", "invalid label"),
    ("review date in the future", "a.example.org,allow,,,,,2027-06-01", "in the future"),
    ("review date not a date", "a.example.org,allow,,,,,last week", "ISO 8601"),
    ("review time without offset", "a.example.org,allow,,,,,2026-11-30T10:00:00", "no UTC offset"),
    ("too many cells", "a.example.org,allow,,,,,,extra", "8 cells"),
    ("control character in notes", 'a.example.org,allow,,,"bell\x07",,', "notes"),
    ("huge cell", 'a.example.org,allow,,,"' + "n" * 5000 + '",,', "longer than"),
]


@pytest.mark.parametrize(("row", "reason"), [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
def test_a_bad_row_is_rejected_with_its_line_and_reason_and_the_rest_load(row: str, reason: str) -> None:
    accepted, rejected = parse(HEADER + "good.example.org,allow,10,,,,\n" + row + "\nlater.example.org,block,,,,,\n")
    assert accepted == [(2, "good.example.org"), (4, "later.example.org")]
    assert len(rejected) == 1
    line, _, why = rejected[0]
    assert line == 3 and reason in why, rejected


def test_a_repeated_domain_is_rejected_naming_the_first() -> None:
    accepted, rejected = parse(HEADER + "a.example.org,allow,,,,,\nA.Example.Org.,block,,,,,\n")
    assert accepted == [(2, "a.example.org")]
    assert rejected == [(3, "A.Example.Org.", "a.example.org is repeated (first on line 2)")]


def test_header_is_read_in_any_order_and_case_and_rows_may_omit_trailing_cells() -> None:
    text = "\ufeffPermission, Domain ,Requests Per Minute\r\nallow,x.example.org\r\n\r\nblock,y.example.org,\r\n"
    accepted, rejected = parse(text)
    assert accepted == [(2, "x.example.org"), (4, "y.example.org")]
    assert rejected == []


def test_quoted_cells_hold_commas_and_line_breaks() -> None:
    result = parse_domain_csv(
        (HEADER + 'q.example.org,allow,,/a;/b,"line one,\nline two",,\n').encode(), by="importer", now=NOW
    )
    command = result.accepted[0].command
    assert isinstance(command, AllowDomain)
    assert command.limits.notes == "line one,\nline two"
    assert command.limits.allowed_paths == ("/a", "/b")


def test_malformed_quoting_stops_the_read_at_that_line() -> None:
    accepted, rejected = parse(HEADER + 'a.example.org,allow,,,"unterminated\n' + "b.example.org,allow,,,,,\n")
    assert accepted == []
    assert len(rejected) == 1 and "malformed CSV" in rejected[0][2]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no header"),
        (b"\n\n", "no header"),
        (b"domain,permision\nexample.org,allow\n", "unknown column 'permision'"),
        (b"domain,permission,domain\n", "more than once"),
        (b"domain,notes\n", "no 'permission' column"),
        (b"domain,permission\n\xff\xfe,allow\n", "not UTF-8"),
        (b"x" * (MAX_CSV_BYTES + 1), "larger than"),
        (b"domain,permission\n" + b"a.example.org,allow\n" * (MAX_ROWS + 1), "more than"),
    ],
    ids=[
        "empty",
        "blank",
        "misspelt column",
        "repeated column",
        "missing column",
        "not utf-8",
        "too big",
        "too many rows",
    ],
)
def test_a_file_that_cannot_be_read_whole_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(BadInput) as raised:
        parse_domain_csv(data, by="importer", now=NOW)
    assert reason in raised.value.message
