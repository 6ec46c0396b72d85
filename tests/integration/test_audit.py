"""The audit trail against real NATS and Postgres: node events become audit rows with the right
who, what, when, correlation and causation and no secrets; GET /admin/audit filters, pages and
refuses; dropping the table and replaying the stream rebuilds it row for row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.aio.client import Client as NATS

from ccn_analytics.__main__ import start_analytics
from ccn_analytics.app import create_app
from ccn_analytics.audit_projection import AuditLogProjection
from ccn_core import ids
from ccn_core.aggregate import AggregateRepository, EventMeta
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.domain.node import EndSession, NodeDecider, OptOut, RecordConsent, Register, StartSession
from ccn_core.eventstore import EventStore
from ccn_core.projection import rebuild
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import AUDIT_LOG, NODES, ensure_streams
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.nodes import CONSENT_SCOPES, NodeEvent, NodeRegistered

NodeRepository = AggregateRepository[Any, Any, Any]
ADMIN = Actor(kind="admin", id="admin-7")


@pytest.fixture
async def nc(nats_url: str, settings: Settings) -> AsyncIterator[NATS]:
    """A connection of this test's own (the event store's inbox dies with it)."""
    client = await nats.connect(nats_url)
    await ensure_streams(client.jetstream(), settings)
    yield client
    await client.drain()


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(pg_dsn, min_size=1, max_size=4) as created:
        yield created


@pytest.fixture
async def repo(nc: NATS) -> AsyncIterator[NodeRepository]:
    store = EventStore(nc, timeout=10)
    await store.start()
    yield AggregateRepository(store, NodeDecider(consent_catalogue()), NodeEvent, stream=NODES.name)
    await store.close()


@asynccontextmanager
async def running_analytics(settings: Settings) -> AsyncIterator[None]:
    """The analytics service as wired by its __main__, inside the test's loop."""
    async with open_runtime("analytics", settings) as runtime:
        await start_analytics(runtime)
        async with httpx.AsyncClient(base_url=base_url(settings)) as client, asyncio.timeout(10):
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        yield


def base_url(settings: Settings) -> str:
    return f"http://{settings.analytics_host}:{settings.analytics_port}"


@pytest.fixture
async def analytics(settings: Settings) -> AsyncIterator[None]:
    async with running_analytics(settings):
        yield


@pytest.fixture
async def admin(settings: Settings, analytics: None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    async with httpx.AsyncClient(base_url=base_url(settings), headers=headers) as client:
        yield client


async def wait_projected(nc: NATS, pool: asyncpg.Pool) -> None:
    """Until the audit checkpoint reaches the stream's last event."""
    last = (await nc.jetstream().stream_info(NODES.name)).state.last_seq
    async with asyncio.timeout(20):
        while True:
            done = await pool.fetchval(
                "SELECT last_seq FROM projection_checkpoints WHERE projection = $1", AUDIT_LOG.durable
            )
            if done is not None and done >= last:
                return
            await asyncio.sleep(0.05)


class Written(msgspec.Struct):
    envelope: Envelope[Any]
    seq: int


class Story(msgspec.Struct):
    """Two nodes' histories, interleaved in the stream as a busy registry would write them."""

    started: datetime
    node_a: str
    node_b: str
    admin_correlation: str
    events: list[Written]
    secrets: list[str]  # every hash written: none may reach an audit row

    def of(self, node: str) -> list[Written]:
        return [w for w in self.events if w.envelope.aggregate_id == node]


async def write_story(repo: NodeRepository) -> Story:
    started = datetime.now(UTC)
    tag = ids.new_public_id()[:8]
    version = current_consent_version()
    events: list[Written] = []
    hashes: list[str] = []

    async def do(node: str, command: Any, meta: EventMeta) -> Envelope[Any]:
        executed = await repo.execute(node, command, meta)
        assert len(executed.events) == 1
        events.append(Written(envelope=executed.events[0], seq=executed.version))
        return executed.events[0]

    async def register(label: str) -> tuple[str, str, Envelope[Any]]:
        node, secret = ids.new_public_id(), ids.new_secret()
        registered = NodeRegistered(
            node_id=node,
            api_token_hash=ids.token_hash(secret),
            session_id=ids.new_public_id(),
            session_token_hash=ids.token_hash("s" + secret),
            consent_flag=True,
            user_agent=f"ccn-node/0.1 {label}",
            user_id=f"user-{label}",
            node_version="0.1.0",
            ip_hash=ids.ip_hash("192.0.2.7", "salt"),
            idempotency_key_hash=ids.token_hash("key" + secret),
            request_fingerprint=ids.token_hash("body" + secret),
        )
        hashes.extend(
            h
            for h in (
                registered.api_token_hash,
                registered.session_token_hash,
                registered.ip_hash,
                registered.idempotency_key_hash,
                registered.request_fingerprint,
            )
            if h
        )
        meta = EventMeta(correlation_id=f"reg-{label}-{tag}", actor=Actor(kind="node", id=node))
        return node, secret, await do(node, Register(registered=registered), meta)

    consent = RecordConsent(api_secret="", consent_version=version, consent_hash=consent_catalogue()[version])
    node_a, secret_a, registered_a = await register("a")
    node_b, secret_b, _ = await register("b")
    # A's consent as a reactor would record it: caused by the registration, in its correlation
    reactor = EventMeta(
        correlation_id=registered_a.correlation_id,
        causation_id=registered_a.event_id,
        actor=Actor(kind="service", id="registry-test"),
    )
    await do(node_a, msgspec.structs.replace(consent, api_secret=secret_a), reactor)
    meta_b = EventMeta(correlation_id=f"consent-b-{tag}", actor=Actor(kind="node", id=node_b))
    await do(node_b, msgspec.structs.replace(consent, api_secret=secret_b), meta_b)
    session, session_secret = ids.new_public_id(), ids.new_secret()
    session_meta = EventMeta(correlation_id=f"session-a-{tag}", actor=Actor(kind="node", id=node_a))
    start = StartSession(
        api_secret=secret_a,
        session_id=session,
        session_token_hash=ids.token_hash(session_secret),
        user_agent="ccn-node/0.1 a",
        ip_hash=ids.ip_hash("198.51.100.9", "salt"),
    )
    hashes.extend([start.session_token_hash, start.ip_hash or ""])
    await do(node_a, start, session_meta)
    await do(node_a, EndSession(session_id=session, session_secret=session_secret, reason="bye"), session_meta)
    # one admin action opting out both nodes: one correlation id across two aggregates
    admin_meta = EventMeta(correlation_id=f"admin-{tag}", actor=ADMIN)
    await do(node_a, OptOut(api_secret=secret_a, reason="volunteer asked"), admin_meta)
    await do(node_b, OptOut(api_secret=secret_b, reason="volunteer asked"), admin_meta)
    return Story(
        started=started,
        node_a=node_a,
        node_b=node_b,
        admin_correlation=admin_meta.correlation_id,
        events=events,
        secrets=hashes,
    )


@pytest.fixture
async def story(repo: NodeRepository, nc: NATS, pool: asyncpg.Pool, analytics: None) -> Story:
    written = await write_story(repo)
    await wait_projected(nc, pool)
    return written


def event_ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["event_id"] for entry in entries]


def ids_of(written: list[Written]) -> list[str]:
    return [w.envelope.event_id for w in written]


async def test_each_node_event_is_one_row_with_who_what_when_and_why(story: Story, pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "SELECT * FROM audit_log WHERE aggregate_id = ANY($1) ORDER BY stream_seq", [story.node_a, story.node_b]
    )
    assert [str(row["event_id"]) for row in rows] == ids_of(story.events)
    for row, written in zip(rows, story.events, strict=True):
        env = written.envelope
        assert row["stream"] == "CCN_NODES" and row["stream_seq"] == written.seq
        assert row["occurred_at"] == env.occurred_at
        assert row["recorded_at"] >= env.occurred_at
        assert (row["aggregate_type"], row["aggregate_id"]) == ("node", env.aggregate_id)
        assert (row["event_type"], row["schema_version"]) == (env.type, 1)
        assert (row["actor_kind"], row["actor_id"]) == (env.actor.kind, env.actor.id)
        assert (row["correlation_id"], row["causation_id"]) == (env.correlation_id, env.causation_id)
    consent_a = rows[2]
    assert consent_a["event_type"] == "node.consent_recorded"
    assert consent_a["causation_id"] == str(rows[0]["event_id"]), "caused by A's registration"
    assert consent_a["actor_kind"] == "service"
    assert [(r["actor_kind"], r["actor_id"]) for r in rows[-2:]] == [("admin", "admin-7")] * 2


async def test_details_keep_what_an_auditor_needs_and_no_secret(story: Story, pool: asyncpg.Pool) -> None:
    rows = await pool.fetch(
        "SELECT event_type, details::text AS details FROM audit_log WHERE aggregate_id = $1 ORDER BY stream_seq",
        story.node_a,
    )
    details = {row["event_type"]: msgspec.json.decode(row["details"]) for row in rows}
    registered, _, started, ended, _ = (w.envelope.data for w in story.of(story.node_a))
    version = current_consent_version()
    assert details == {
        "node.registered": {
            "node_id": story.node_a,
            "session_id": registered.session_id,
            "consent_flag": True,
            "user_agent": "ccn-node/0.1 a",
            "user_id": "user-a",
            "node_version": "0.1.0",
            "public_key": None,  # the key its results are signed with: none registered here
        },
        "node.consent_recorded": {
            "consent_version": version,
            "consent_hash": consent_catalogue()[version],
            "previous_version": None,
            "scopes": list(CONSENT_SCOPES),
        },
        "node.session_started": {"session_id": started.session_id, "user_agent": "ccn-node/0.1 a"},
        "node.session_ended": {"session_id": ended.session_id, "reason": "bye"},
        "node.opted_out": {"ended_session_ids": [registered.session_id], "reason": "volunteer asked"},
    }
    stored = await pool.fetchval(
        "SELECT string_agg(details::text, ' ') FROM audit_log WHERE aggregate_id = ANY($1)",
        [story.node_a, story.node_b],
    )
    assert story.secrets and all(secret not in stored for secret in story.secrets)
    assert "hash" not in stored.replace("consent_hash", ""), "no *_hash key other than the consent document's"


async def test_each_filter_returns_exactly_the_expected_rows(story: Story, admin: httpx.AsyncClient) -> None:
    async def audit(**params: Any) -> list[str]:
        response = await admin.get("/admin/audit", params=params)
        assert response.status_code == 200, response.text
        return event_ids(response.json()["entries"])

    node_a = story.of(story.node_a)
    assert await audit(node_id=story.node_a) == ids_of(node_a)
    assert await audit(node_id=story.node_b) == ids_of(story.of(story.node_b))
    admin_action = [w for w in story.events if w.envelope.correlation_id == story.admin_correlation]
    assert len(admin_action) == 2
    assert await audit(correlation_id=story.admin_correlation) == ids_of(admin_action)
    # the registration and the consent it caused share A's registration correlation id
    assert await audit(correlation_id=node_a[0].envelope.correlation_id) == ids_of(node_a[:2])
    consents = [w for w in story.events if w.envelope.type == "node.consent_recorded"]
    since = story.started.isoformat()
    assert await audit(type="node.consent_recorded", since=since) == ids_of(consents)
    assert await audit(node_id=story.node_a, since=node_a[2].envelope.occurred_at.isoformat()) == ids_of(node_a[2:])
    assert await audit(node_id=story.node_b, type="node.session_started") == []
    # an unencoded "+00:00" arrives as " 00:00": still read as the offset it was meant to be
    plus = node_a[3].envelope.occurred_at.isoformat()
    assert await audit(node_id=story.node_a, since=plus.replace("+", " ")) == ids_of(node_a[3:])


async def test_entries_carry_the_row_and_page_by_cursor(story: Story, admin: httpx.AsyncClient) -> None:
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"node_id": story.node_a, "limit": 2}
    while True:
        page = (await admin.get("/admin/audit", params=params)).json()
        pages.append(page)
        params["cursor"] = page["next_cursor"]
        if not page["has_more"]:
            break
    assert [len(p["entries"]) for p in pages] == [2, 2, 1]
    entries = [entry for p in pages for entry in p["entries"]]
    assert event_ids(entries) == ids_of(story.of(story.node_a))
    first, env = entries[0], story.events[0].envelope
    assert first["actor"] == {"kind": "node", "id": story.node_a}
    assert datetime.fromisoformat(first["occurred_at"]) == env.occurred_at
    assert (first["event_type"], first["correlation_id"], first["causation_id"]) == (env.type, env.correlation_id, None)
    assert (first["stream"], first["stream_seq"]) == ("CCN_NODES", story.events[0].seq)
    # at the end, the same cursor comes back until something new is audited
    tail = (await admin.get("/admin/audit", params=params)).json()
    assert tail == {"entries": [], "next_cursor": params["cursor"], "has_more": False}


async def test_the_admin_api_refuses_callers_without_the_token(
    story: Story, settings: Settings, admin: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=base_url(settings)) as anonymous:
        wrong = f"Bearer {settings.admin_token}x"
        for headers in ({}, {"Authorization": wrong}, {"Authorization": f"Basic {settings.admin_token}"}):
            # bad parameters too: the guard answers before anything about them is said
            response = await anonymous.get("/admin/audit", params={"limit": 0}, headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            body = response.json()
            assert (body["code"], body["field"]) == ("unauthorized", None)
            assert body["correlation_id"] == response.headers["x-correlation-id"]
    assert (await admin.get("/admin/audit", params={"node_id": story.node_a})).status_code == 200


async def test_the_admin_api_is_closed_when_no_token_is_configured(pool: asyncpg.Pool) -> None:
    async def ready() -> tuple[bool, dict[str, str]]:
        return True, {}

    app = create_app(pool=pool, admin_token="", ready=ready, body_timeout_s=10.0)
    async with AsyncTestClient(app) as client:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
            response = await client.get("/admin/audit", headers=headers)
            assert response.status_code == 503
            assert response.json()["message"] == "admin token not configured"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-01-31T12:00:00"}, "since"),  # no offset: ambiguous
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"type": "node.registered;drop"}, "type"),
        ({"type": "Node.Registered"}, "type"),
        ({"node_id": "a.b"}, "node_id"),
        ({"correlation_id": "x" * 129}, "correlation_id"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_bad_parameters_are_400_naming_the_field(
    admin: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await admin.get("/admin/audit", params=params, headers={"X-Correlation-ID": "audit-test.1"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["field"], body["correlation_id"]) == ("bad_input", field, "audit-test.1")
    assert body["message"]
    assert response.headers["x-correlation-id"] == "audit-test.1"


async def test_correlation_ids_are_taken_when_sane_and_made_otherwise(admin: httpx.AsyncClient) -> None:
    taken = await admin.get("/admin/audit", params={"limit": 1}, headers={"X-Correlation-ID": "req-42_a.b"})
    assert taken.headers["x-correlation-id"] == "req-42_a.b"
    for insane in ("has space", "x" * 129, "semi;colon"):
        made = await admin.get("/admin/audit", params={"limit": 1}, headers={"X-Correlation-ID": insane})
        assert made.headers["x-correlation-id"] not in (insane, "")
        assert len(made.headers["x-correlation-id"]) == 36  # a fresh UUIDv7
    missing = await admin.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.json()["correlation_id"] == missing.headers["x-correlation-id"]


async def test_probes_and_the_openapi_schema(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/healthz")).json() == {"status": "alive", "service": "analytics"}
    ready = await admin.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"nats": "ok", "postgres": "ok"}}
    schema = (await admin.get("/schema/openapi.json")).json()
    operation = schema["paths"]["/admin/audit"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "node_id",
        "correlation_id",
        "type",
        "since",
        "cursor",
        "limit",
    }
    assert operation["security"] == [{"AdminToken": []}]


async def snapshot(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    # recorded_at says when a row was projected, so it is the one column a replay changes
    return [
        tuple(row)
        for row in await pool.fetch(
            "SELECT event_id, stream, stream_seq, occurred_at, aggregate_type, aggregate_id, event_type,"
            " schema_version, actor_kind, actor_id, correlation_id, causation_id, details::text"
            " FROM audit_log ORDER BY stream, stream_seq"
        )
    ]


async def test_rebuild_by_replay_equals_the_live_table(
    settings: Settings, repo: NodeRepository, nc: NATS, pool: asyncpg.Pool
) -> None:
    async with running_analytics(settings):
        story = await write_story(repo)
        await wait_projected(nc, pool)
    live = await snapshot(pool)
    assert {str(row[0]) for row in live} >= set(ids_of(story.events))

    await rebuild(pool, AuditLogProjection())
    assert await snapshot(pool) == []
    async with running_analytics(settings):
        await wait_projected(nc, pool)
    assert await snapshot(pool) == live
