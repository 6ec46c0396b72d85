"""`ccn admin retract-node NODE [--since T] [--reason R]`: withdraw every contribution of a node
found to be malicious from every dataset (each affected field falls back to its next-best
candidate, and a new version records it) and re-queue every job whose result the node
contributed, for other nodes. Nothing is deleted from the event history; retrying creates no
job twice. Exit 0 on success, 1 when refused or unreachable, 2 on bad arguments."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import msgspec

from ccn_cli.console import say
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.subcommand import Subparsers


def register(groups: Subparsers) -> None:
    parser = groups.add_parser("retract-node", help="withdraw a node's contributions to the datasets; redo its jobs")
    parser.add_argument("node_id", metavar="NODE")
    parser.add_argument("--since", metavar="T", help="only what it contributed from this time on (ISO 8601, with zone)")
    parser.add_argument("--reason", default="", help="why (kept in the audit trail)")
    parser.set_defaults(run=guarded(run_retract))


def run_retract(args: argparse.Namespace, edge: EdgeClient) -> int:
    request: dict[str, Any] = {"node_id": args.node_id, "reason": args.reason}
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise EdgeError(f"--since {args.since!r} is not an ISO 8601 time") from None
        if since.utcoffset() is None:
            raise EdgeError("--since needs a time zone (e.g. 2026-01-31T12:00:00+00:00)")
        request["since"] = since.isoformat()
    body: dict[str, Any] = edge.post("/admin/retractions", msgspec.json.encode(request), dict)
    for dataset in body["datasets"]:
        if dataset["version"] is None:
            say(f"{dataset['dataset']}: nothing of node {body['node_id']} left to retract")
        else:
            say(
                f"{dataset['dataset']}: {dataset['candidates_dropped']} value(s) withdrawn, "
                f"{dataset['fields_changed']} field(s) fell back, {dataset['reviews_dropped']} review(s) dropped; "
                f"version {dataset['version']} published"
            )
    created = sum(1 for job in body["requeued"] if job["created"])
    say(f"{len(body['requeued'])} job(s) re-queued ({created} new, {len(body['requeued']) - created} already)")
    for job in body["requeued"]:
        say(f"  {job['job_id']} -> {job['new_job_id']}")
    return 0
