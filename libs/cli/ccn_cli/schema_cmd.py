"""`ccn schema export|check`: the JSON Schema of every event, command and frame in ccn_proto,
and of every job type's payload and result (ccn_jobs), written to proto/schema/ (what a node or
service in another language codes against)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ccn_cli.console import fail, say
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings
from ccn_jobs.schemas import job_families
from ccn_proto.schema_export import FAMILIES, SCHEMA_DIR, Families, drifted, export


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("schema", help="export or check the JSON Schema of ccn_proto and the job types")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export_parser = actions.add_parser("export", help=f"write the schemas (default {SCHEMA_DIR})")
    export_parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="write here instead")
    export_parser.set_defaults(run=run_export)
    check_parser = actions.add_parser("check", help="exit 1 if the checked-in schemas differ from the Structs")
    check_parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="check this directory instead")
    check_parser.set_defaults(run=run_check)


def all_families() -> Families:
    return {**FAMILIES, **job_families()}


def run_export(args: argparse.Namespace, _: Settings) -> int:
    for path in export(args.dir, all_families()):
        say(f"wrote {path}")
    return 0


def run_check(args: argparse.Namespace, _: Settings) -> int:
    stale = drifted(args.dir, all_families())
    if stale:
        fail(f"schemas out of date: {', '.join(stale)}; run `ccn schema export`")
        return 1
    say(f"schemas in {args.dir} match ccn_proto and the job types")
    return 0
