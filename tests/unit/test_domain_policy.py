"""The domain-policy aggregate's rules as a table: (given events, command) → expected events or
error; then the allow-list check and the aggregate id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ccn_core.decider import fold
from ccn_core.domain.domain_policy import (
    AllowDomain,
    BlockDomain,
    DomainPolicyDecider,
    PolicyLimits,
    UpdateDomainPolicy,
    canonical_domain,
    domain_of,
    pattern_matches,
    policy_id,
)
from ccn_core.errors import BadInput, CcnError, Conflict, NotFound
from ccn_proto.domains import DomainAllowed, DomainBlocked, DomainEvent, DomainPolicyUpdated

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
REVIEWED = datetime(2026, 11, 30, tzinfo=UTC)
DOMAIN = "grants.example.org"
ID = policy_id(DOMAIN)
decider = DomainPolicyDecider()

LIMITS = PolicyLimits(
    requests_per_minute=30,
    allowed_paths=("/grants",),
    notes="robots.txt reviewed",
    reviewer="ana",
    reviewed_at=REVIEWED,
)
ALLOWED = DomainAllowed(
    domain=DOMAIN,
    requests_per_minute=30,
    allowed_paths=["/grants"],
    notes="robots.txt reviewed",
    reviewer="ana",
    reviewed_at=REVIEWED,
    by="admin",
)
BLOCKED = DomainBlocked(domain=DOMAIN, reason="terms forbid crawling", by="admin")

CASES: list[tuple[str, list[DomainEvent], object, list[DomainEvent] | type[CcnError]]] = [
    ("allow a new domain", [], AllowDomain(domain=DOMAIN, limits=LIMITS, by="admin"), [ALLOWED]),
    (
        "the domain is read as a host: case, trailing dot",
        [],
        AllowDomain(domain="Grants.Example.ORG.", limits=LIMITS, by="admin"),
        [ALLOWED],
    ),
    (
        "allowing again with the same limits records nothing",
        [ALLOWED],
        AllowDomain(domain=DOMAIN, limits=LIMITS, by="x"),
        [],
    ),
    (
        "allowing again with other limits records what changed",
        [ALLOWED],
        AllowDomain(domain=DOMAIN, limits=msgspec.structs.replace(LIMITS, requests_per_minute=10), by="bob"),
        [DomainPolicyUpdated(changed=["requests_per_minute"], requests_per_minute=10, by="bob")],
    ),
    (
        "allowing a blocked domain allows it afresh",
        [ALLOWED, BLOCKED],
        AllowDomain(domain=DOMAIN, limits=LIMITS, by="admin"),
        [ALLOWED],
    ),
    (
        "block an allowed domain",
        [ALLOWED],
        BlockDomain(domain=DOMAIN, reason="terms forbid crawling", by="admin"),
        [BLOCKED],
    ),
    ("block an unknown domain", [], BlockDomain(domain=DOMAIN, reason="terms forbid crawling", by="admin"), [BLOCKED]),
    (
        "blocking again for the same reason records nothing",
        [BLOCKED],
        BlockDomain(domain=DOMAIN, reason="terms forbid crawling", by="other"),
        [],
    ),
    (
        "blocking again for another reason is recorded",
        [BLOCKED],
        BlockDomain(domain=DOMAIN, reason="asked us to stop", by="admin"),
        [DomainBlocked(domain=DOMAIN, reason="asked us to stop", by="admin")],
    ),
    (
        "update only what is given",
        [ALLOWED],
        UpdateDomainPolicy(domain=DOMAIN, max_concurrent=2, allowed_patterns=("/*.pdf$",), by="bob"),
        [
            DomainPolicyUpdated(
                changed=["max_concurrent", "allowed_patterns"], max_concurrent=2, allowed_patterns=["/*.pdf$"], by="bob"
            )
        ],
    ),
    (
        "an update to None clears a field back to its default",
        [ALLOWED],
        UpdateDomainPolicy(domain=DOMAIN, requests_per_minute=None, notes=None, by="bob"),
        [DomainPolicyUpdated(changed=["requests_per_minute", "notes"], by="bob")],
    ),
    (
        "an update that changes nothing records nothing",
        [ALLOWED],
        UpdateDomainPolicy(domain=DOMAIN, requests_per_minute=30, by="bob"),
        [],
    ),
    (
        "updating an unknown domain: not found",
        [],
        UpdateDomainPolicy(domain=DOMAIN, max_concurrent=1, by="b"),
        NotFound,
    ),
    (
        "updating a blocked domain: conflict",
        [BLOCKED],
        UpdateDomainPolicy(domain=DOMAIN, max_concurrent=1, by="b"),
        Conflict,
    ),
    (
        "a rate of zero is refused",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(requests_per_minute=0), by="a"),
        BadInput,
    ),
    (
        "a rate beyond the bound is refused",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(requests_per_hour=10**6), by="a"),
        BadInput,
    ),
    (
        "a path must start with '/'",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(allowed_paths=("grants",)), by="a"),
        BadInput,
    ),
    (
        "a path may not hold spaces or controls",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(allowed_patterns=("/a b",)), by="a"),
        BadInput,
    ),
    (
        "at most 100 paths",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(allowed_paths=tuple(f"/p{i}" for i in range(101))), by="a"),
        BadInput,
    ),
    (
        "a note with a control character is refused",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(notes="bell\x07"), by="a"),
        BadInput,
    ),
    (
        "an update is checked as strictly",
        [ALLOWED],
        UpdateDomainPolicy(domain=DOMAIN, max_concurrent=1000, by="b"),
        BadInput,
    ),
    (
        "a review in the future is refused",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(reviewed_at=NOW + timedelta(days=1)), by="a"),
        BadInput,
    ),
    (
        "a review a minute ahead is clock skew",
        [],
        AllowDomain(domain=DOMAIN, limits=PolicyLimits(reviewed_at=NOW + timedelta(minutes=1)), by="a"),
        [DomainAllowed(domain=DOMAIN, reviewed_at=NOW + timedelta(minutes=1), by="a")],
    ),
    (
        "a review time without an offset is refused",
        [],
        BlockDomain(domain=DOMAIN, reason="r", reviewed_at=datetime(2026, 11, 30), by="a"),
        BadInput,
    ),
    ("an empty block reason is refused", [], BlockDomain(domain=DOMAIN, reason="", by="a"), BadInput),
    ("another domain's command is refused", [], AllowDomain(domain="other.example.org", by="a"), BadInput),
    ("an IP address is not a domain", [], AllowDomain(domain="93.184.215.14", by="a"), BadInput),
    ("a single label is not a domain", [], AllowDomain(domain="intranet", by="a"), BadInput),
    ("a bad host is not a domain", [], AllowDomain(domain="exa mple.org", by="a"), BadInput),
]


@pytest.mark.parametrize(("given", "command", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_domain_policy_rules(
    given: list[DomainEvent], command: object, expected: list[DomainEvent] | type[CcnError]
) -> None:
    state = fold(decider, ID, given)
    if isinstance(expected, list):
        assert decider.decide(command, state, NOW) == expected  # type: ignore[arg-type]
    else:
        with pytest.raises(expected):
            decider.decide(command, state, NOW)  # type: ignore[arg-type]


def test_every_change_folds_into_the_state_it_describes() -> None:
    history: list[DomainEvent] = []
    commands: list[object] = [
        AllowDomain(domain=DOMAIN, limits=LIMITS, by="admin"),
        UpdateDomainPolicy(domain=DOMAIN, max_concurrent=2, allowed_paths=(), reviewer="bob", by="bob"),
        BlockDomain(domain=DOMAIN, reason="asked us to stop", reviewer="cy", reviewed_at=NOW, by="cy"),
    ]
    for command in commands:
        history.extend(decider.decide(command, fold(decider, ID, history), NOW))  # type: ignore[arg-type]
    assert [type(event) for event in history] == [DomainAllowed, DomainPolicyUpdated, DomainBlocked]
    state = fold(decider, ID, history)
    assert state.status == "blocked" and state.block_reason == "asked us to stop"
    assert state.limits.reviewer == "cy" and state.limits.reviewed_at == NOW
    assert state.limits.max_concurrent == 2 and state.limits.allowed_paths == ()
    # and back through the wire: events decode to the same state
    wire: list[DomainEvent] = [msgspec.json.decode(msgspec.json.encode(e), type=DomainEvent) for e in history]
    assert fold(decider, ID, wire) == state


def test_permits_follows_status_paths_and_patterns() -> None:
    allowed_everywhere: list[DomainEvent] = [DomainAllowed(domain=DOMAIN, by="a")]
    everything = fold(decider, ID, allowed_everywhere)
    assert everything.permits("/anything?x=1")
    allowed_some: list[DomainEvent] = [
        DomainAllowed(
            domain=DOMAIN, allowed_paths=["/grants/"], allowed_patterns=["/*.pdf$", "/news/*/funding"], by="a"
        )
    ]
    limited = fold(decider, ID, allowed_some)
    assert limited.permits("/grants/2026")
    assert limited.permits("/reports/annual.pdf")
    assert limited.permits("/news/2026/funding-round")
    assert not limited.permits("/grantsx")
    assert not limited.permits("/reports/annual.pdf?download=1")
    assert not limited.permits("/news/funding")
    assert not fold(decider, ID, [*allowed_everywhere, BLOCKED]).permits("/")
    assert not decider.initial_state(ID).permits("/")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/a", "/a/b", True),
        ("/a$", "/a", True),
        ("/a$", "/a/b", False),
        ("/*.pdf", "/x/y.pdf?z", True),
        ("/*.pdf$", "/x/y.pdf", True),
        ("/*.pdf$", "/x/y.pdfs", False),
        ("/a*b*c", "/a-c-b-c", True),
        ("/a*b*c", "/a-c-b", False),
        ("/*", "/", True),
        ("/a**b", "/ab", True),
        ("/a*$", "/a", True),
        ("/ab*ba$", "/aba", False),
    ],
)
def test_pattern_matching(pattern: str, path: str, matches: bool) -> None:
    assert pattern_matches(pattern, path) is matches


def test_pattern_matching_does_not_backtrack() -> None:
    import time

    pattern = "/" + "*a" * 200 + "*b$"
    started = time.perf_counter()
    assert not pattern_matches(pattern, "/" + "a" * 100_000)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("domain", ["grants.example.org", "my_site.example.com", "xn--bcher-kva.example", "a-b.c_d.e"])
def test_policy_ids_are_subject_tokens_and_reversible(domain: str) -> None:
    token = policy_id(domain)
    assert "." not in token and domain_of(token) == domain


def test_canonical_domain() -> None:
    assert canonical_domain(" Bücher.Example. ") == "xn--bcher-kva.example"
    with pytest.raises(BadInput):
        canonical_domain("a" * 60 + "." + "b" * 60 + "." + "c" * 20)
