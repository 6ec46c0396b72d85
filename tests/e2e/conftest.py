"""The whole stack as real processes: `ccn up` starts every service against the session's NATS
and PostgreSQL (CCN_NATS_URL / CCN_DATABASE_URL set, so nothing embedded starts)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ccn_core.settings import Settings
from tests.conftest import free_port
from tests.support.servers import start_nats

CCN = str(Path(sys.executable).parent / "ccn")


class Stack(msgspec.Struct, frozen=True):
    home: Path
    env: dict[str, str]
    nats_url: str
    database_url: str
    edge: str
    analytics: str
    admin_token: str
    up_output: list[str] = msgspec.field(default_factory=list)

    def ccn(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CCN, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def stack(settings: Settings, postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stack")
    # NATS and a database of its own (migrated by `ccn up`): its projections hold their leader
    # locks and durable consumers for the whole session, and must not fight the ones that
    # integration tests start for themselves
    nats = start_nats(home / "nats")
    database = f"ccn_e2e_{secrets.token_hex(4)}"
    postgres_server.create_database(database)
    database_url = str(postgres_server.dsn(database))
    edge_port, analytics_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CCN_")},
        "CCN_HOME": str(home),
        "CCN_NATS_URL": nats.url,
        "CCN_DATABASE_URL": database_url,
        "CCN_EDGE_PORT": str(edge_port),
        "CCN_ANALYTICS_PORT": str(analytics_port),
        "CCN_REGISTRY_HEALTH_PORT": str(free_port()),
        "CCN_SCHEDULER_HEALTH_PORT": str(free_port()),
        "CCN_SCHEDULER_PROJECTOR_HEALTH_PORT": str(free_port()),
        "CCN_FETCH_PROXY_HEALTH_PORT": str(free_port()),
        "CCN_CRAWLER_HEALTH_PORT": str(free_port()),
        "CCN_VALIDATION_HEALTH_PORT": str(free_port()),
        "CCN_MERGE_HEALTH_PORT": str(free_port()),
        "CCN_DEMO_WEB_PORT": str(free_port()),
        "CCN_ADMIN_TOKEN": settings.admin_token,
        "CCN_TOKEN_SECRET": settings.token_secret,
        "CCN_IP_HASH_SALT": settings.ip_hash_salt,
        "CCN_MAX_BODY_BYTES": "4096",
    }
    running = Stack(
        home=home,
        env=env,
        nats_url=nats.url,
        database_url=database_url,
        edge=f"http://127.0.0.1:{edge_port}",
        analytics=f"http://127.0.0.1:{analytics_port}",
        admin_token=settings.admin_token,
    )
    # with the demo: three reference nodes and a batch of jobs, as `make run` starts them
    # the demo's merge scene alone may wait demo_merge.REVIEW_WAIT_S on a slow machine
    started = running.ccn("up", "--demo", timeout=240)
    running.up_output.extend(started.stdout.splitlines())
    if started.returncode != 0:
        logs = "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in (home / "logs").glob("*.log"))
        pytest.fail(f"ccn up failed:\n{started.stdout}\n{started.stderr}\n{logs}")
    yield running
    running.ccn("down")
    nats.stop()
