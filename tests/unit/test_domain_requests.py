"""Between the domain-policy wire commands and the decider's: a request becomes the decision it
means, a parsed CSV row becomes the request that decides the same, an update names exactly what
it changes; and the edge's import chunks stay within a command's rows and bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from msgspec import UNSET

from ccn_core.domain.domain_policy import AllowDomain, DomainPolicyDecider, UpdateDomainPolicy, policy_id
from ccn_core.domain_csv import parse_domain_csv
from ccn_core.domain_requests import decision_of, policy_view, request_of
from ccn_core.errors import BadInput
from ccn_edge.domains_admin_api import _CHUNK_BYTES, import_chunks
from ccn_proto.domains import MAX_IMPORT_ROWS, AllowDomainRequest, ImportRow, UpdateDomainRequest

NOW = datetime(2026, 12, 7, tzinfo=UTC)
EXAMPLE = b"""domain,permission,include_subdomains,requests_per_minute,allowed_paths,allowed_patterns,notes,\
reviewer,reviewed_at
grants.example.org,allow,true,30,/grants;/funding,/*.pdf$,robots allows /grants,ann,2026-11-30
members.example.net,block,,,,,terms 4.2,bob,2026-11-28
"""


def test_a_csv_row_sent_as_a_request_decides_what_the_row_says() -> None:
    parsed = parse_domain_csv(EXAMPLE, by="importer", now=NOW)
    decider = DomainPolicyDecider()
    for row in parsed.accepted:
        request = msgspec.json.decode(msgspec.json.encode(request_of(row.command)), type=type(request_of(row.command)))
        initial = decider.initial_state(policy_id(row.domain))
        assert decider.decide(decision_of(request), initial, NOW) == decider.decide(row.command, initial, NOW)


def test_an_allowance_keeps_every_limit_and_the_view_shows_them() -> None:
    request = AllowDomainRequest(
        domain="grants.example.org",
        include_subdomains=True,
        requests_per_minute=30,
        requests_per_hour=900,
        max_concurrent=2,
        allowed_paths=["/grants"],
        allowed_patterns=["/*.pdf$"],
        notes="ok",
        reviewer="ann",
        reviewed_at=NOW,
        by="admin",
    )
    decision = decision_of(request)
    assert isinstance(decision, AllowDomain)
    assert decision.limits.allowed_paths == ("/grants",) and decision.limits.allowed_patterns == ("/*.pdf$",)
    decider = DomainPolicyDecider()
    state = decider.initial_state("grants_example_org")
    for event in decider.decide(decision, state, NOW):
        state = decider.evolve(state, event)
    view = policy_view(state, version=7)
    assert (view.permission, view.requests_per_hour, view.allowed_patterns, view.reviewed_at, view.version) == (
        "allowed",
        900,
        ["/*.pdf$"],
        NOW,
        7,
    )
    unreviewed = policy_view(decider.initial_state("x_example_org"), version=0)
    assert (unreviewed.domain, unreviewed.permission) == ("x.example.org", None)


def test_an_update_changes_what_it_gives_and_clears_what_it_names() -> None:
    decision = decision_of(
        UpdateDomainRequest(domain="a.example", requests_per_minute=5, clear=["allowed_paths", "notes"], by="admin")
    )
    assert isinstance(decision, UpdateDomainPolicy)
    assert (decision.requests_per_minute, decision.allowed_paths, decision.notes) == (5, (), None)
    assert decision.max_concurrent is UNSET and decision.include_subdomains is UNSET
    cleared = decision_of(UpdateDomainRequest(domain="a.example", clear=["include_subdomains"], by="admin"))
    assert isinstance(cleared, UpdateDomainPolicy) and cleared.include_subdomains is False


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (UpdateDomainRequest(domain="a.example", by="admin"), "changes nothing"),
        (UpdateDomainRequest(domain="a.example", clear=["by"], by="admin"), "not a policy field"),
        (UpdateDomainRequest(domain="a.example", notes="n", clear=["notes"], by="admin"), "both given and cleared"),
    ],
)
def test_an_update_that_means_nothing_or_contradicts_itself_is_refused(
    update: UpdateDomainRequest, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        decision_of(update)


def test_import_chunks_stay_within_a_commands_rows_and_bytes() -> None:
    small = [ImportRow(line=n, command=AllowDomainRequest(domain=f"d{n}.example", by="i")) for n in range(1, 1202)]
    assert [len(chunk) for chunk in import_chunks(small)] == [MAX_IMPORT_ROWS, MAX_IMPORT_ROWS, 201]
    notes = "n" * 1000
    paths = [f"/{'p' * 500}"] * 100  # the largest row the bounds allow: ~100 KB encoded
    big = [
        ImportRow(line=n, command=AllowDomainRequest(domain=f"d{n}.example", notes=notes, allowed_paths=paths, by="i"))
        for n in range(1, 21)
    ]
    chunks = list(import_chunks(big))
    assert sum(len(chunk) for chunk in chunks) == 20 and len(chunks) > 1
    for chunk in chunks:
        assert sum(len(msgspec.json.encode(row)) for row in chunk) <= _CHUNK_BYTES
