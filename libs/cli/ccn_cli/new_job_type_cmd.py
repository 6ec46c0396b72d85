"""`ccn new-job-type NAME`: scaffold a job type in this source tree (ccn_cli.scaffold), then
regenerate the JSON Schemas so the new payload and result are exported with the rest."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import ccn_jobs
from ccn_cli.console import fail, say
from ccn_cli.scaffold import ScaffoldError, scaffold_job_type
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings
from ccn_jobs.registry import JOB_TYPES

# the source tree this ccn runs from (an editable install of the workspace)
SOURCE_ROOT = Path(ccn_jobs.__file__).resolve().parents[2]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "new-job-type",
        help="scaffold a job type: module, Structs, registration, schema, and a failing test",
        description="Writes libs/jobs/ccn_jobs/NAME.py (payload and result Structs, a pure handler, a version, "
        "sample payloads), registers it in ccn_jobs.registry.JOB_TYPES (the scheduler, the nodes and the schema "
        "export read it), regenerates proto/schema/, and writes tests/unit/test_jobs_NAME.py with a test that "
        "fails until the job's behaviour is written. See docs/job-types.md for the contract.",
    )
    parser.add_argument("name", help="the job type's name, like extract_text")
    parser.add_argument("--root", type=Path, default=SOURCE_ROOT, help="the source tree (default: %(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, _: Settings) -> int:
    root = args.root.resolve()
    try:
        made = scaffold_job_type(args.name, root, frozenset(JOB_TYPES))
    except ScaffoldError as exc:
        fail(str(exc))
        return 2
    for path in (made.module, made.test, made.registry):
        say(f"wrote {path}")
    if root == SOURCE_ROOT:
        # a fresh interpreter, since this one imported the registry before the new type was in it
        export = [sys.executable, "-m", "ccn_cli.main", "schema", "export"]
        if subprocess.run(export, check=False, capture_output=True, timeout=120).returncode == 0:
            say(f"wrote {root / 'proto' / 'schema' / f'job_{args.name}.json'}")
        else:
            fail("the schema export failed: run `ccn schema export` once the module imports")
    else:
        say("then, in that tree: `ccn schema export`")
    say(f"next: make tests/unit/test_jobs_{args.name}.py say what {args.name} must do, and the handler pass it")
    return 0
