"""`ccn`: run and inspect the Community Compute stack.

Each subcommand lives in a module of its own exposing `register(subparsers)`, which adds its
parser and sets `run=` a `ccn_cli.subcommand.Handler` (args, settings) -> exit code. A new subcommand is a new module
named in SUBCOMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import msgspec

from ccn_cli.console import fail
from ccn_cli.stack.errors import StackError
from ccn_core.settings import SettingsError, settings_from_env

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "ccn_cli.up_cmd",
    "ccn_cli.down_cmd",
    "ccn_cli.status_cmd",
    "ccn_cli.env_cmd",
    "ccn_cli.migrate_cmd",
    "ccn_cli.topology_cmd",
    "ccn_cli.serve_cmd",
    "ccn_cli.schema_cmd",
    "ccn_cli.node_cmd",
    "ccn_cli.log_cmd",
    "ccn_cli.jobs_cmd",
    "ccn_cli.deadletter_cmd",
    "ccn_cli.crawl_cmd",
    "ccn_cli.admin_cmd",
    "ccn_cli.domains_cmd",
    "ccn_cli.datasets_cmd",
    "ccn_cli.new_job_type_cmd",
    "ccn_cli.receipts_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ccn",
        description="Run and inspect the Community Compute stack. Configuration comes from CCN_* variables "
        "(CCN_HOME, CCN_NATS_URL, CCN_DATABASE_URL, CCN_NATS_PORT, CCN_POSTGRES_PORT, ...).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_env()
    except SettingsError as exc:
        fail(str(exc))
        return 2
    # absolute, so every message, the state file and the services agree on one directory
    settings = msgspec.structs.replace(settings, home=settings.home.resolve())
    try:
        code: int = args.run(args, settings)
    except StackError as exc:
        fail(str(exc))
        return 1
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
