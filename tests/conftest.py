"""Real servers for the whole session: one NATS (JetStream) and one PostgreSQL, embedded or
external (CCN_NATS_URL / CCN_DATABASE_URL). Tests isolate by unique ids, by a database of
their own (`fresh_database`) or by a NATS server of their own (`isolated_nats`), never by
restarting the shared servers."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_cli.stack.ports import FREE_PORT_SHARE_ENV, free_port
from ccn_core.migrations import apply_migrations
from ccn_core.service import Runtime, open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import apply_topology, ensure_streams
from ccn_registry.app import start_registry
from tests.support.servers import start_nats, start_postgres


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker picks its free ports from a share of its own (ccn_cli.stack.ports), and
    so do the servers and `ccn` commands it starts: two workers never take the same port in the
    gap between picking it and binding it (a test once talked to the other worker's edge)."""
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        index = int(str(worker["workerid"]).removeprefix("gw"))
        os.environ[FREE_PORT_SHARE_ENV] = f"{index}/{worker['workercount']}"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_nats(tmp_path_factory.mktemp("nats"), free_port())
    yield server
    server.stop()


async def with_topology(url: str) -> str:
    """The streams and buckets applied, as `ccn topology apply` does before services start
    (a service only checks they are there). Settings' defaults are the tests' (make_settings)."""
    client = await nats.connect(url)
    try:
        await apply_topology(client.jetstream(), Settings(nats_url=url))
    finally:
        await client.drain()
    return url


@pytest.fixture(scope="session")
async def nats_url(nats_server: Any) -> str:
    return await with_topology(str(nats_server.url))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_postgres(tmp_path_factory.mktemp("pg"), free_port())
    yield server
    server.stop()


async def migrated_database(postgres_server: Any, name: str) -> str:
    postgres_server.create_database(name)
    dsn = str(postgres_server.dsn(name))
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


@pytest.fixture(scope="session")
async def pg_dsn(postgres_server: Any) -> str:
    return await migrated_database(postgres_server, f"ccn_session_{secrets.token_hex(4)}")


@pytest.fixture
async def fresh_database(postgres_server: Any) -> str:
    """A migrated database of this test's own: for tests that drop, rebuild or compare tables."""
    return await migrated_database(postgres_server, f"ccn_t_{secrets.token_hex(6)}")


@pytest.fixture
async def isolated_nats(tmp_path: Path) -> AsyncIterator[str]:
    """A NATS server of this test's own, topology applied: for tests that replay whole streams
    or kill consumers."""
    if os.environ.get("CCN_NATS_URL"):
        pytest.skip("needs its own NATS server; CCN_NATS_URL points at a shared one")
    server = start_nats(tmp_path / "nats", free_port())
    try:
        yield await with_topology(str(server.url))
    finally:
        server.stop()


def make_settings(nats_url: str, database_url: str, home: Path) -> Settings:
    return Settings(
        home=home,
        nats_url=nats_url,
        database_url=database_url,
        edge_port=free_port(),
        analytics_port=free_port(),
        registry_health_port=free_port(),
        validation_health_port=free_port(),
        admin_token=secrets.token_urlsafe(24),
        token_secret=secrets.token_urlsafe(32),
        ip_hash_salt=secrets.token_urlsafe(16),
        duplicate_window_s=120.0,
        log_format="json",
        replica_id="",
    )


@pytest.fixture(scope="session")
def settings(nats_url: str, pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(nats_url, pg_dsn, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
async def nc(nats_url: str, settings: Settings) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    await ensure_streams(client.jetstream(), settings)
    yield client
    await client.drain()


@pytest.fixture(scope="session")
async def registry(settings: Settings) -> AsyncIterator[Runtime]:
    """The registry service, running in the test session's loop against the shared servers."""
    async with open_runtime("registry", settings) as runtime:
        await start_registry(runtime, health=False, observe=False)
        yield runtime
