"""`ccn migrate`: apply the numbered SQL migrations to the configured database (the embedded one,
which must be running, or CCN_DATABASE_URL)."""

from __future__ import annotations

import argparse
import asyncio

from ccn_cli.console import say
from ccn_cli.stack.backends import migrate
from ccn_cli.stack.urls import redact_password
from ccn_cli.subcommand import Subparsers
from ccn_core.migrations import bundled_migrations
from ccn_core.settings import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("migrate", help="apply database migrations and print what was applied")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.effective_database_url
    applied = asyncio.run(migrate(url))
    where = redact_password(url)
    if applied:
        say(f"applied to {where}: {', '.join(applied)}")
    else:
        say(f"{where} is up to date ({len(bundled_migrations())} migrations)")
    return 0
