"""`ccn admin ...`: operators' commands against the running stack, with its admin token."""

from __future__ import annotations

from ccn_cli import admin_nodes_cmd
from ccn_cli.subcommand import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("admin", help="operators' commands: nodes (ban, drain, budgets, ...)")
    groups = parser.add_subparsers(dest="admin_group", required=True, metavar="GROUP")
    admin_nodes_cmd.register(groups)
