"""`ccn admin review list | approve ID --comment C | reject ID --comment C`: the merge review
queue, through the edge's admin API. `list` shows each held change with its field-by-field
before/after and why it waits; a decision names the admin token's name and keeps the comment in
the dataset's history and the audit trail. Exit 0 on success, 1 when refused or unreachable."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import msgspec

from ccn_cli.console import say
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.subcommand import Subparsers
from ccn_proto.merge import DEFAULT_DATASET

_REVIEW_ID = r"^rev-[0-9a-f]{24}$"


def register(groups: Subparsers) -> None:
    parser = groups.add_parser("review", help="changes to the datasets waiting for a reviewer: list, approve, reject")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"the dataset (default {DEFAULT_DATASET})")
    actions = parser.add_subparsers(dest="review_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="pending changes with their before/after and why they wait")
    listing.add_argument("--json", action="store_true", help="the pending reviews as JSON")
    listing.set_defaults(run=guarded(run_list))

    for action, help_text in (("approve", "apply a held change"), ("reject", "never apply a held change")):
        command = actions.add_parser(action, help=help_text)
        command.add_argument("review_id", metavar="ID")
        command.add_argument("--comment", required=True, help="why (kept in the audit trail)")
        if action == "approve":
            command.add_argument("--record", help="for an ambiguous match: the existing record it joins")
        command.set_defaults(run=guarded(run_decision), action=action)


def _cell(value: Any) -> str:
    return "-" if value is None else ", ".join(value) if isinstance(value, list) else str(value)


def review_lines(review: dict[str, Any]) -> list[str]:
    p = review["provenance"]
    lines = [
        f"{review['review_id']}  {review['kind']} {review['record_id']}  "
        f"(job {p['job_id']}, node {p['node_id']}, source {p['source']})",
        f"  why: {'; '.join(review['reasons'])}",
    ]
    lines += [f"  {c['field']}: {_cell(c['before'])} -> {_cell(c['after'])}" for c in review["changes"]]
    if review["stitch_candidates"]:
        lines.append(f"  could be: {', '.join(review['stitch_candidates'])}")
    return lines


def run_list(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = msgspec.json.decode(edge.call("GET", f"/admin/review?dataset={args.dataset}"))
    if args.json:
        say(json.dumps(body, indent=2, sort_keys=True))
        return 0
    if not body["reviews"]:
        say(f"no change waits for review in {body['dataset']}")
        return 0
    for review in body["reviews"]:
        for line in review_lines(review):
            say(line)
    if body["pending"] > len(body["reviews"]):
        say(f"... and {body['pending'] - len(body['reviews'])} more")
    return 0


def run_decision(args: argparse.Namespace, edge: EdgeClient) -> int:
    if re.fullmatch(_REVIEW_ID, args.review_id) is None:
        raise EdgeError(f"not a review id: {args.review_id!r} (rev- and 24 hex digits)")
    decision: dict[str, Any] = {"comment": args.comment, "dataset": args.dataset}
    if getattr(args, "record", None):
        decision["record_id"] = args.record
    body: dict[str, Any] = edge.post(
        f"/admin/review/{args.review_id}/{args.action}", msgspec.json.encode(decision), dict
    )
    say(f"{body['review_id']} {body['status']}: record {body['record_id']}, {len(body['changes'])} field(s)")
    return 0
