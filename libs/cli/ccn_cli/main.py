"""`ccn`: run and inspect the Community Compute stack.

Each subcommand lives in a module of its own exposing `register(subparsers)`, which adds its
parser and sets `run=` a `ccn_cli.subcommand.Handler` (args, settings) -> exit code. A new
subcommand is a new module, named with its command in SUBCOMMAND_MODULES.
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

# command → the module that registers it. Only the command being run is imported: the modules
# between them import every service library and job type (three seconds of a `ccn --help`),
# which `ccn log` or `ccn status` has no use for.
SUBCOMMAND_MODULES: dict[str, str] = {
    "up": "ccn_cli.up_cmd",
    "down": "ccn_cli.down_cmd",
    "status": "ccn_cli.status_cmd",
    "env": "ccn_cli.env_cmd",
    "migrate": "ccn_cli.migrate_cmd",
    "topology": "ccn_cli.topology_cmd",
    "serve": "ccn_cli.serve_cmd",
    "schema": "ccn_cli.schema_cmd",
    "node": "ccn_cli.node_cmd",
    "log": "ccn_cli.log_cmd",
    "jobs": "ccn_cli.jobs_cmd",
    "deadletter": "ccn_cli.deadletter_cmd",
    "crawl": "ccn_cli.crawl_cmd",
    "admin": "ccn_cli.admin_cmd",
    "domains": "ccn_cli.domains_cmd",
    "datasets": "ccn_cli.datasets_cmd",
    "new-job-type": "ccn_cli.new_job_type_cmd",
    "receipts": "ccn_cli.receipts_cmd",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI; with `command`, only that command's part (the rest is not imported)."""
    parser = argparse.ArgumentParser(
        prog="ccn",
        description="Run and inspect the Community Compute stack. Configuration comes from CCN_* variables "
        "(CCN_HOME, CCN_NATS_URL, CCN_DATABASE_URL, CCN_NATS_PORT, CCN_POSTGRES_PORT, ...).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in SUBCOMMAND_MODULES.items():
        if command is None or name == command:
            importlib.import_module(module).register(subparsers)
    return parser


def command_named(argv: Sequence[str]) -> str | None:
    """The command `argv` runs, when it names one; None for a bare `ccn`, `ccn --help` or an
    unknown word (the whole parser then lists every command)."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in SUBCOMMAND_MODULES else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(command_named(argv)).parse_args(argv)
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
