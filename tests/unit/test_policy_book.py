"""The policy book's subdomain resolution, folded from events without I/O: a host's own entry
wins, then the nearest parent that reaches it (a block always does, an allowance only with
include_subdomains); a host no entry reaches has no policy."""

from __future__ import annotations

import asyncio

import pytest

from ccn_core.domain.domain_policy import policy_id
from ccn_fetch_proxy.policy_book import PolicyBook
from ccn_proto.domains import DomainAllowed, DomainBlocked, DomainPolicyUpdated


def book_of(*events: DomainAllowed | DomainBlocked) -> PolicyBook:
    book = PolicyBook()
    for event in events:
        book.apply(policy_id(event.domain), event)
    return book


def allowed(domain: str, *, subdomains: bool = False, rpm: int | None = None) -> DomainAllowed:
    return DomainAllowed(domain=domain, include_subdomains=subdomains, requests_per_minute=rpm, by="t")


def blocked(domain: str) -> DomainBlocked:
    return DomainBlocked(domain=domain, reason="terms forbid it", by="t")


BOOK = book_of(
    allowed("example.org", subdomains=True, rpm=30),
    allowed("grants.example.org", rpm=6),
    blocked("private.example.org"),
    allowed("open.private.example.org"),
    allowed("narrow.example.net"),
    blocked("example.com"),
    allowed("xn--bcher-stiftung-gsb.example"),
)


@pytest.mark.parametrize(
    ("host", "governed_by", "status"),
    [
        ("example.org", "example.org", "allowed"),
        ("EXAMPLE.ORG.", "example.org", "allowed"),  # case and a trailing dot aside
        ("www.example.org", "example.org", "allowed"),  # subdomains included
        ("a.b.c.example.org", "example.org", "allowed"),
        ("grants.example.org", "grants.example.org", "allowed"),  # the most specific entry wins
        ("x.grants.example.org", "example.org", "allowed"),  # grants' entry does not reach down; its parent's does
        ("private.example.org", "private.example.org", "blocked"),
        ("deep.private.example.org", "private.example.org", "blocked"),  # a blocked parent blocks children
        ("open.private.example.org", "open.private.example.org", "allowed"),  # unless they have their own entry
        ("narrow.example.net", "narrow.example.net", "allowed"),
        ("www.example.com", "example.com", "blocked"),
        ("bücher-stiftung.example", "xn--bcher-stiftung-gsb.example", "allowed"),  # IDN as its A-label
    ],
)
def test_a_host_is_governed_by_its_nearest_entry_that_reaches_it(host: str, governed_by: str, status: str) -> None:
    state = BOOK.policy_for(host)
    assert state is not None
    assert (state.domain, state.status) == (governed_by, status)


@pytest.mark.parametrize(
    "host",
    [
        "www.narrow.example.net",  # an allowance without include_subdomains covers its host only
        "example.net",  # a parent is not covered by its subdomain's entry
        "unknown.test",
        "org",  # a single label is never a domain with a policy
        "127.0.0.1",
        "[::1]",
        "exa mple.org",
        "",
        "a" * 300 + ".org",
    ],
)
def test_a_host_no_entry_reaches_has_no_policy(host: str) -> None:
    assert BOOK.policy_for(host) is None


def test_updates_and_blocks_change_what_a_host_resolves_to() -> None:
    book = book_of(allowed("example.org", subdomains=True, rpm=30))
    book.apply(
        policy_id("example.org"),
        DomainPolicyUpdated(changed=["include_subdomains", "requests_per_minute"], requests_per_minute=5, by="t"),
    )
    assert book.policy_for("www.example.org") is None
    state = book.policy_for("example.org")
    assert state is not None and state.limits.requests_per_minute == 5
    book.apply(policy_id("example.org"), blocked("example.org"))
    state = book.policy_for("example.org")
    assert state is not None and state.status == "blocked" and state.block_reason == "terms forbid it"


def test_a_full_book_follows_the_domains_it_has_and_counts_the_rest() -> None:
    book = PolicyBook(max_domains=2)
    for name in ("a.example", "b.example", "c.example"):
        book.apply(policy_id(name), allowed(name))
    assert len(book) == 2 and book.skipped == 1
    assert book.policy_for("c.example") is None
    book.apply(policy_id("a.example"), blocked("a.example"))  # a known domain still changes
    state = book.policy_for("a.example")
    assert state is not None and state.status == "blocked"


def test_an_event_that_does_not_decode_is_skipped_and_the_position_still_moves() -> None:
    book = PolicyBook()
    book.apply_stored(7, b'{"not": "an envelope"}')
    assert (book.last_seq, book.skipped, len(book)) == (7, 1, 0)
    book.apply_stored(5, b"{}")  # a redelivery behind the position is ignored
    assert book.skipped == 1


async def test_waiting_for_a_position_ends_when_it_is_folded_or_times_out() -> None:
    book = PolicyBook()
    assert not await book.caught_up(3, 0.01)
    waiting = asyncio.create_task(book.caught_up(3, 5.0))
    await asyncio.sleep(0)
    book.apply_stored(2, b"{}")
    assert not waiting.done()
    book.apply_stored(3, b"{}")
    assert await waiting
    assert await book.caught_up(1, 0.0)  # already past it
    assert not book.ready  # not started: a proxy must not fetch on an empty book
