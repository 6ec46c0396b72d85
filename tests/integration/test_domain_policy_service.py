"""The domain-policy commands against real NATS: allow, update, block, get and import decided by
the decider and appended with optimistic concurrency (a stale replica re-decides, it never
overwrites), and the policy book of every proxy replica following each change live."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.commands import CommandClient, CommandContext
from ccn_core.domain.domain_policy import DomainPolicyDecider, policy_id
from ccn_core.domain_requests import decision_of
from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_core.eventstore import EventStore
from ccn_core.service import Runtime, open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import POLICY
from ccn_fetch_proxy.policy_book import PolicyBook
from ccn_fetch_proxy.policy_handlers import DomainPolicyHandlers
from ccn_fetch_proxy.policy_service import start_domain_policy
from ccn_proto.domains import (
    AllowDomainRequest,
    BlockDomainRequest,
    DomainEvent,
    DomainPolicyReply,
    DomainPolicyView,
    GetDomainPolicy,
    ImportDomains,
    ImportDomainsReply,
    ImportRow,
    UpdateDomainRequest,
)
from ccn_proto.envelope import Actor


class Proxy:
    def __init__(self, runtime: Runtime, book: PolicyBook) -> None:
        self.runtime = runtime
        self.book = book


@pytest.fixture
async def proxies(settings: Settings) -> AsyncIterator[list[Proxy]]:
    """Two fetch-proxy replicas' domain-policy parts, sharing the commands' queue group."""
    async with (
        open_runtime("fetch-proxy", settings, needs_postgres=False) as one,
        open_runtime("fetch-proxy", settings, needs_postgres=False) as two,
    ):
        yield [Proxy(one, await start_domain_policy(one)), Proxy(two, await start_domain_policy(two))]


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[CommandClient]:
    nc = await nats.connect(nats_url)
    yield CommandClient(nc, timeout=5.0)
    await nc.drain()


def unique_domain() -> str:
    return f"grants-{uuid.uuid4().hex[:10]}.example.org"


async def call(client: CommandClient, name: str, request: object, reply_type: type[object]) -> object:
    return await client.call("domains", name, request, reply_type, correlation_id=f"t-{uuid.uuid4().hex[:8]}")  # type: ignore[arg-type]


async def test_allow_update_block_and_get_each_reach_every_replicas_book(
    proxies: list[Proxy], client: CommandClient
) -> None:
    domain = unique_domain()
    reviewed = datetime(2026, 11, 30, tzinfo=UTC)
    allow = AllowDomainRequest(
        domain=domain.upper(),
        include_subdomains=True,
        requests_per_minute=30,
        allowed_paths=["/grants"],
        reviewer="a.reviewer",
        reviewed_at=reviewed,
        by="admin",
    )
    reply = await call(client, "allow", allow, DomainPolicyReply)
    assert isinstance(reply, DomainPolicyReply) and reply.changed
    assert (reply.policy.domain, reply.policy.permission, reply.policy.requests_per_minute) == (domain, "allowed", 30)
    for proxy in proxies:
        assert await proxy.book.caught_up(reply.policy.version, 5.0)
        state = proxy.book.policy_for(f"www.{domain}")
        assert state is not None and state.permits("/grants/2026") and not state.permits("/about")

    again = await call(client, "allow", allow, DomainPolicyReply)
    assert isinstance(again, DomainPolicyReply) and not again.changed  # nothing recorded twice
    assert again.policy.version == reply.policy.version

    update = UpdateDomainRequest(domain=domain, requests_per_minute=6, clear=["allowed_paths"], by="admin")
    updated = await call(client, "update", update, DomainPolicyReply)
    assert isinstance(updated, DomainPolicyReply) and updated.changed
    assert (updated.policy.requests_per_minute, updated.policy.allowed_paths) == (6, [])
    assert updated.policy.reviewer == "a.reviewer"  # what was not named stays
    for proxy in proxies:
        assert await proxy.book.caught_up(updated.policy.version, 5.0)
        state = proxy.book.policy_for(domain)
        assert state is not None and state.limits.requests_per_minute == 6 and state.permits("/about")

    block = BlockDomainRequest(domain=domain, reason="terms of use section 4.2", by="admin")
    blocked = await call(client, "block", block, DomainPolicyReply)
    assert isinstance(blocked, DomainPolicyReply) and blocked.policy.permission == "blocked"
    for proxy in proxies:
        assert await proxy.book.caught_up(blocked.policy.version, 5.0)
        state = proxy.book.policy_for(f"deep.www.{domain}")
        assert state is not None and state.status == "blocked" and not state.permits("/")

    view = await call(client, "get", GetDomainPolicy(domain=domain), DomainPolicyView)
    assert isinstance(view, DomainPolicyView)
    assert (view.permission, view.block_reason, view.version) == (
        "blocked",
        "terms of use section 4.2",
        blocked.policy.version,
    )


async def test_refusals_are_typed_and_name_what_is_wrong(proxies: list[Proxy], client: CommandClient, nc: NATS) -> None:
    domain = unique_domain()
    with pytest.raises(NotFound, match="no policy for"):
        await call(client, "get", GetDomainPolicy(domain=domain), DomainPolicyView)
    with pytest.raises(NotFound, match="no policy for"):
        await call(
            client, "update", UpdateDomainRequest(domain=domain, max_concurrent=2, by="admin"), DomainPolicyReply
        )
    with pytest.raises(BadInput, match="IP address") as refused:
        await call(client, "allow", AllowDomainRequest(domain="10.0.0.1", by="admin"), DomainPolicyReply)
    assert refused.value.field == "domain"
    with pytest.raises(BadInput, match="single-label"):
        await call(client, "allow", AllowDomainRequest(domain="intranet", by="admin"), DomainPolicyReply)
    with pytest.raises(BadInput, match="in the future") as future:
        await call(
            client,
            "allow",
            AllowDomainRequest(domain=domain, reviewed_at=datetime(2999, 1, 1, tzinfo=UTC), by="admin"),
            DomainPolicyReply,
        )
    assert future.value.field == "reviewed_at"
    await call(client, "block", BlockDomainRequest(domain=domain, reason="no", by="admin"), DomainPolicyReply)
    with pytest.raises(Conflict, match="is blocked"):
        await call(
            client, "update", UpdateDomainRequest(domain=domain, max_concurrent=2, by="admin"), DomainPolicyReply
        )
    with pytest.raises(BadInput, match="not a policy field") as clear:
        await call(client, "update", UpdateDomainRequest(domain=domain, clear=["by"], by="admin"), DomainPolicyReply)
    assert clear.value.field == "clear"
    # bounds are the wire types': a rate of 0 (a body no typed client sends) is refused naming its field
    raw = b'{"type": "allow", "domain": "x.example.org", "requests_per_minute": 0, "by": "admin"}'
    answer = await nc.request("ccn.cmd.domains.allow", raw, timeout=5)
    assert b'"field":"requests_per_minute"' in answer.data


async def test_a_replica_with_a_stale_state_re_decides_instead_of_overwriting(nc: NATS, proxies: list[Proxy]) -> None:
    """Two writers of one policy: the second appends against the version it cached, the server's
    OCC check refuses it, and it re-decides on the state the first one wrote."""
    stores = [EventStore(nc, timeout=10), EventStore(nc, timeout=10)]
    for store in stores:
        await store.start()
    try:
        repositories = [
            AggregateRepository(store, DomainPolicyDecider(), DomainEvent, stream=POLICY.name) for store in stores
        ]
        first, second = (DomainPolicyHandlers(repository) for repository in repositories)
        ctx = CommandContext("occ-test", None, "allow")
        domain = unique_domain()
        await first.change(AllowDomainRequest(domain=domain, requests_per_minute=10, by="one"), ctx)
        await repositories[1].load(policy_id(domain))  # the second replica caches this version
        await first.change(UpdateDomainRequest(domain=domain, max_concurrent=3, by="one"), ctx)
        # the repository appends against its cached version: the server refuses, it re-decides
        stale = decision_of(UpdateDomainRequest(domain=domain, requests_per_minute=20, by="two"))
        meta = EventMeta(correlation_id="occ-test", actor=Actor(kind="admin", id="two"))
        executed = await repositories[1].execute(policy_id(domain), stale, meta)
        assert repositories[1].conflicts == 1
        # both changes stand: the second was decided again on the first's state
        assert (executed.state.limits.max_concurrent, executed.state.limits.requests_per_minute) == (3, 20)
        history = await repositories[0].history(policy_id(domain))
        assert [event.type for event in history] == ["domain.allowed", "domain.policy_updated", "domain.policy_updated"]
        assert [event.actor.id for event in history] == ["one", "one", "two"]

        # a refusal or an "already so" appends nothing, so no OCC check would catch a stale cache:
        # the handlers decide on the stored state (the first replica cached the policy as allowed)
        await second.change(BlockDomainRequest(domain=domain, reason="terms", by="two"), ctx)
        with pytest.raises(Conflict, match="is blocked"):
            await first.change(UpdateDomainRequest(domain=domain, max_concurrent=1, by="one"), ctx)
        allowed = await first.change(AllowDomainRequest(domain=domain, requests_per_minute=20, by="one"), ctx)
        assert allowed.changed and allowed.policy.permission == "allowed"

        # many racing writers of one policy, through both replicas: every change lands once
        writers = [
            (first if n % 2 else second).change(UpdateDomainRequest(domain=domain, notes=f"note {n}", by=f"w{n}"), ctx)
            for n in range(12)
        ]
        await asyncio.gather(*writers)
        history = await repositories[0].history(policy_id(domain))
        assert sorted(event.actor.id for event in history[5:]) == sorted(f"w{n}" for n in range(12))
    finally:
        for store in stores:
            await store.close()


async def test_an_import_decides_each_row_on_its_own(proxies: list[Proxy], client: CommandClient) -> None:
    good, stale, bad_date = unique_domain(), unique_domain(), unique_domain()
    await call(client, "block", BlockDomainRequest(domain=stale, reason="earlier", by="admin"), DomainPolicyReply)
    rows = [
        ImportRow(line=2, command=AllowDomainRequest(domain=good, requests_per_minute=12, by="importer")),
        ImportRow(line=3, command=AllowDomainRequest(domain="192.168.0.1", by="importer")),
        ImportRow(line=4, command=BlockDomainRequest(domain=stale, reason="earlier", by="importer")),
        ImportRow(
            line=5,
            command=AllowDomainRequest(domain=bad_date, reviewed_at=datetime(2999, 1, 1, tzinfo=UTC), by="importer"),
        ),
    ]
    reply = await call(client, "import", ImportDomains(rows=rows), ImportDomainsReply)
    assert isinstance(reply, ImportDomainsReply)
    assert [(row.line, row.domain, row.changed) for row in reply.accepted] == [(2, good, True), (4, stale, False)]
    assert [(row.line, row.domain) for row in reply.rejected] == [(3, "192.168.0.1"), (5, bad_date)]
    assert "IP address" in reply.rejected[0].reason and "future" in reply.rejected[1].reason
    again = await call(client, "import", ImportDomains(rows=rows), ImportDomainsReply)
    assert isinstance(again, ImportDomainsReply)
    assert [row.changed for row in again.accepted] == [False, False]  # the same file twice writes nothing


async def test_a_book_started_late_replays_what_was_decided_before_it(
    settings: Settings, client: CommandClient
) -> None:
    async with open_runtime("fetch-proxy", settings, needs_postgres=False) as runtime:
        await start_domain_policy(runtime)
        domain = unique_domain()
        await call(client, "allow", AllowDomainRequest(domain=domain, max_concurrent=2, by="admin"), DomainPolicyReply)
    async with open_runtime("fetch-proxy", settings, needs_postgres=False) as runtime:
        book = await start_domain_policy(runtime)
        assert book.ready
        state = book.policy_for(domain)
        assert state is not None and state.limits.max_concurrent == 2
