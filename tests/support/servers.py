"""Real NATS and PostgreSQL servers for tests, started by the same stack modules `ccn up` uses.

When CCN_NATS_URL / CCN_DATABASE_URL are set, the helpers hand back the external servers they
name and never start an embedded one. Ports default to free ones the kernel hands out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

from ccn_cli.stack.nats_server import NatsServerSpec, RunningNats, start_nats_server, stop_nats_process
from ccn_cli.stack.ports import free_port
from ccn_cli.stack.postgres import PostgresSpec, RunningPostgres, start_postgres_server, stop_postgres_server
from ccn_cli.stack.psql import create_database
from ccn_cli.stack.urls import with_database


@dataclass(frozen=True)
class EmbeddedNats:
    running: RunningNats

    @property
    def url(self) -> str:
        return self.running.url

    def stop(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            stop_nats_process(psutil.Process(self.running.pid))
        self.running.process.wait(timeout=10)  # reap our child


@dataclass(frozen=True)
class ExternalNats:
    url: str

    def stop(self) -> None:
        """Not ours to stop."""


def start_nats(
    tmpdir: Path, port: int | None = None, *, sync_interval: str = "2m", monitor_port: int | None = None
) -> EmbeddedNats | ExternalNats:
    """A JetStream-enabled nats-server with its store and log under tmpdir, ready when returned;
    with `monitor_port`, its HTTP monitoring endpoint (/varz) on that port."""
    external = os.environ.get("CCN_NATS_URL")
    if external:
        return ExternalNats(external)
    spec = NatsServerSpec(
        root=tmpdir,
        port=port or free_port(),
        log=tmpdir / "nats.log",
        monitor_port=monitor_port,
        sync_interval=sync_interval,
    )
    return EmbeddedNats(start_nats_server(spec))


@dataclass(frozen=True)
class EmbeddedPostgres:
    running: RunningPostgres

    @property
    def port(self) -> int:
        return self.running.spec.port

    def dsn(self, dbname: str = "ccn") -> str:
        """A URL connecting as role ccn (trusted on loopback) to dbname."""
        return self.running.dsn(dbname)

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE name owned by role ccn, copied from template (template1 by default)."""
        self.running.create_database(name, template=template)

    def stop(self) -> None:
        # no checkpoint: a test server's data is thrown away, and checkpointing the hundreds of
        # databases a session makes took seconds at the end of every run
        stop_postgres_server(self.running.spec.data_dir, timeout_s=30, mode="immediate")
        self.running.process.wait(timeout=10)  # reap our child


@dataclass(frozen=True)
class ExternalPostgres:
    url: str

    def dsn(self, dbname: str = "ccn") -> str:
        return with_database(self.url, dbname)

    def create_database(self, name: str, template: str | None = None) -> None:
        create_database(self.url, name, template=template)

    def stop(self) -> None:
        """Not ours to stop."""


def start_postgres(tmpdir: Path, port: int | None = None) -> EmbeddedPostgres | ExternalPostgres:
    """A PostgreSQL with role and database ccn, data and log under tmpdir, ready when returned."""
    external = os.environ.get("CCN_DATABASE_URL")
    if external:
        return ExternalPostgres(external)
    spec = PostgresSpec(
        root=tmpdir,
        port=port or free_port(),
        log=tmpdir / "postgres.log",
        # a throwaway cluster: skip initdb's fsync of ~1000 files (about a second)
        durable_initdb=False,
    )
    return EmbeddedPostgres(start_postgres_server(spec))


async def until_ready(http: aiohttp.ClientSession, base_url: str, *, timeout_s: float = 15.0) -> None:
    """Until the service at `base_url` answers 200 on /readyz (it started and reached its
    dependencies); TimeoutError past `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base_url}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
