"""The embedded stack as real processes: nats-server and PostgreSQL through the test helpers, and
`ccn up` / `status` / `env` / `down` end to end in a home of their own, on free ports.

Services may or may not exist yet (`ccn up` skips those without a __main__), so the CLI tests
assert on NATS, PostgreSQL and the run state, not on which services run."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import nats
import psutil
import pytest

from ccn_cli.stack.errors import PortInUse, StackError
from ccn_cli.stack.nats_server import NatsServerSpec, render_config
from ccn_cli.stack.ports import free_port, port_is_free, require_free_port
from ccn_cli.stack.settings_env import settings_to_env
from ccn_core.receipts import decode_key_set, load_key_ring
from ccn_core.settings import Settings, settings_from_env
from tests.support.servers import EmbeddedPostgres, start_nats, start_postgres

CCN = str(Path(sys.executable).parent / "ccn")


async def test_nats_helper_gives_a_server_whose_jetstream_answers(tmp_path: Path) -> None:
    server = start_nats(tmp_path / "nats")
    try:
        nc = await nats.connect(server.url)
        info = await nc.jetstream().account_info()
        await nc.close()
        assert info.limits is not None
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    if not isinstance(server, EmbeddedPostgres):
        pytest.skip("CCN_DATABASE_URL names an external server; these tests check the embedded one")
    yield server
    server.stop()


async def test_postgres_helper_serves_role_ccn_on_loopback(postgres: EmbeddedPostgres) -> None:
    name = f"stack_{secrets.token_hex(4)}"
    postgres.create_database(name)
    conn = await asyncpg.connect(postgres.dsn(name))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_user") == "ccn"
        assert await conn.fetchval("SELECT current_database()") == name
        # the database is ccn's, so migrations run as ccn can create tables in it
        await conn.execute("CREATE TABLE probe (id int)")
    finally:
        await conn.close()


def test_busy_port_is_named_with_the_variable_that_moves_it(postgres: EmbeddedPostgres) -> None:
    assert not port_is_free(postgres.port)
    with pytest.raises(PortInUse, match=rf"^port {postgres.port} \(PostgreSQL\) is in use; set CCN_POSTGRES_PORT"):
        require_free_port(postgres.port, "PostgreSQL", "CCN_POSTGRES_PORT")


def test_a_bad_sync_interval_is_refused_before_nats_starts(tmp_path: Path) -> None:
    spec = NatsServerSpec(root=tmp_path, port=1, log=tmp_path / "nats.log", sync_interval="soon")
    with pytest.raises(StackError, match="CCN_NATS_SYNC_INTERVAL='soon' must be 'always' or a duration"):
        render_config(spec)
    assert 'sync_interval: "always"' in render_config(dataclasses.replace(spec, sync_interval="always"))


def test_settings_survive_the_trip_through_service_environment_variables() -> None:
    """Every field set to a non-default value: a field settings_to_env forgot would come back default."""
    values: dict[str, object] = {}
    for field in msgspec.structs.fields(Settings):
        if field.name == "home":
            values[field.name] = Path("/srv/ccn-home")
        elif field.type is int:
            values[field.name] = 3
        elif field.type is float:
            values[field.name] = 3.5
        else:
            values[field.name] = f"value-of-{field.name}"
    settings = Settings(**values)  # type: ignore[arg-type]
    assert settings_from_env(settings_to_env(settings)) == settings


# --- `ccn` end to end -------------------------------------------------------------------------


def stack_env(home: Path) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("CCN_")}
    return {
        **inherited,
        "COLUMNS": "200",  # rich's table would wrap at 80 columns without a terminal
        "CCN_HOME": str(home),
        "CCN_NATS_PORT": str(free_nats_port()),
        "CCN_POSTGRES_PORT": str(free_port()),
        "CCN_EDGE_PORT": str(free_port()),
        "CCN_ANALYTICS_PORT": str(free_port()),
        "CCN_REGISTRY_HEALTH_PORT": str(free_port()),
        "CCN_SCHEDULER_HEALTH_PORT": str(free_port()),
        "CCN_SCHEDULER_PROJECTOR_HEALTH_PORT": str(free_port()),
        "CCN_FETCH_PROXY_HEALTH_PORT": str(free_port()),
        "CCN_CRAWLER_HEALTH_PORT": str(free_port()),
        "CCN_VALIDATION_HEALTH_PORT": str(free_port()),
    }


def free_nats_port() -> int:
    """A free port whose monitoring port (port + 4000) is free too."""
    while True:
        port = free_port()
        if port + 4000 < 65536 and port_is_free(port + 4000):
            return port


def ccn(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CCN, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def row(status_output: str, name: str) -> str:
    return next(line for line in status_output.splitlines() if re.search(rf"\b{name}\b", line))


def recorded_pids(home: Path) -> dict[str, int]:
    state = json.loads((home / "run" / "state.json").read_text())
    return {record["name"]: record["pid"] for record in state["processes"]}


def test_ccn_up_status_env_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = stack_env(home)
    nats_port, pg_port = env["CCN_NATS_PORT"], env["CCN_POSTGRES_PORT"]
    # a state file from a run whose processes are gone (the start time does not match) must not block a start
    (home / "run").mkdir(parents=True)
    stale = {
        "home": str(home),
        "started_at": "then",
        "nats_url": "",
        "database_url": "",
        "processes": [
            {"name": "nats", "kind": "nats", "pid": 999_999, "create_time": 1.0, "port": 1, "url": "", "log": ""}
        ],
    }
    (home / "run" / "state.json").write_text(json.dumps(stale))

    up = ccn(env, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "removing stale run state" in up.stdout
    assert "NATS (JetStream) started" in up.stdout and f"nats://127.0.0.1:{nats_port}" in up.stdout
    assert "PostgreSQL started" in up.stdout and f"postgresql://ccn@127.0.0.1:{pg_port}/ccn" in up.stdout
    secrets_file = home / "secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    admin_token = re.search(r"^CCN_ADMIN_TOKEN=(\S{40,})$", secrets_file.read_text(), re.M)
    assert admin_token is not None and admin_token[1] in up.stdout
    # the receipt keys were made on this first start, and the edge publishes their public half
    ring = load_key_ring(home / "receipt-keys")
    assert stat.S_IMODE((home / "receipt-keys").stat().st_mode) == 0o700
    edge_url = f"http://127.0.0.1:{env['CCN_EDGE_PORT']}"
    with urllib.request.urlopen(f"{edge_url}/receipts/keys", timeout=10) as response:  # noqa: S310 - our edge
        assert decode_key_set(response.read()) == ring.keys
    receipt = ring.issue_receipt(
        job_id="job-1",
        attempt=1,
        node_id="node-1",
        result_checksum="0" * 64,
        verdict="validated",
        now=datetime.now(UTC),
    )
    (tmp_path / "receipt.json").write_bytes(msgspec.json.encode(receipt))
    verified = ccn(env, "receipts", "verify", str(tmp_path / "receipt.json"), "--edge", edge_url)
    assert verified.returncode == 0 and "VALID" in verified.stdout, verified.stdout + verified.stderr
    pids = recorded_pids(home)
    assert psutil.Process(pids["nats"]).name() == "nats-server"
    assert psutil.Process(pids["postgres"]).name() == "postgres"

    status = ccn(env, "status")
    for name, port in (("nats", nats_port), ("postgres", pg_port)):
        line = row(status.stdout, name)
        assert str(pids[name]) in line and port in line and "yes" in line and "ok" in line, status.stdout
    # every service joins, the fetch proxy among them, each with its readiness
    proxy_line = row(status.stdout, "fetch-proxy")
    assert str(pids["fetch-proxy"]) in proxy_line and env["CCN_FETCH_PROXY_HEALTH_PORT"] in proxy_line, status.stdout
    assert "ok" in proxy_line, status.stdout

    again = ccn(env, "up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and f"nats (pid {pids['nats']})" in again.stdout
    assert recorded_pids(home) == pids  # no twins

    exports = ccn(env, "env").stdout
    assert f"export CCN_NATS_URL=nats://127.0.0.1:{nats_port}\n" in exports
    assert f"export CCN_ADMIN_TOKEN={admin_token[1]}\n" in exports

    down = ccn(env, "down")
    assert down.returncode == 0, down.stderr
    assert "NATS stopped" in down.stdout and "PostgreSQL stopped" in down.stdout
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids.values()
    )
    assert not (home / "run" / "state.json").exists()
    assert port_is_free(int(nats_port)) and port_is_free(int(pg_port))

    assert ccn(env, "status").returncode == 1
    repeat = ccn(env, "down")
    assert repeat.returncode == 0 and "nothing was running" in repeat.stdout


def test_ccn_up_refuses_a_busy_port_and_starts_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = stack_env(home)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["CCN_POSTGRES_PORT"])))
        squatter.listen()
        up = ccn(env, "up")
    assert up.returncode == 1
    assert f"port {env['CCN_POSTGRES_PORT']} (PostgreSQL) is in use; set CCN_POSTGRES_PORT" in up.stderr
    assert not (home / "run" / "state.json").exists()
    assert port_is_free(int(env["CCN_NATS_PORT"]))  # checked before NATS was started


def test_ccn_up_foreground_stops_everything_on_sigterm(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = stack_env(home)
    attached = subprocess.Popen(
        [CCN, "up", "--foreground"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert attached.stdout is not None
    seen = []
    for line in attached.stdout:
        seen.append(line)
        if line.startswith("attached"):
            break
    else:
        pytest.fail("ccn up --foreground ended before attaching:\n" + "".join(seen))
    pids = recorded_pids(home)
    attached.send_signal(signal.SIGTERM)
    rest, _ = attached.communicate(timeout=60)
    assert attached.returncode == 0, "".join(seen) + rest
    assert "NATS stopped" in rest and "PostgreSQL stopped" in rest
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids.values()
    )
    assert not (home / "run" / "state.json").exists()
