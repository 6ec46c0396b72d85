"""`ccn admin ...`: operators' actions on the running stack, through the edge's admin API with
the stack's admin token. Each area is a module of its own exposing `register(actions)`."""

from __future__ import annotations

import importlib

from ccn_cli.subcommand import Subparsers

ADMIN_MODULES: tuple[str, ...] = (
    "ccn_cli.admin_nodes_cmd",
    "ccn_cli.admin_limits_cmd",
    "ccn_cli.admin_consensus_cmd",
    "ccn_cli.admin_quarantine_cmd",
    "ccn_cli.admin_review_cmd",
    "ccn_cli.admin_retract_cmd",
)


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("admin", help="act on the running stack as its operator (admin token)")
    areas = parser.add_subparsers(dest="admin_area", required=True, metavar="AREA")
    for name in ADMIN_MODULES:
        importlib.import_module(name).register(areas)
