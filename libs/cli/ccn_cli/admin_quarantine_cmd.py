"""`ccn admin quarantine list|show|release|discard`: results the validation service rejected, and
the admins' decisions on them. `list` and `show` read the analytics service's quarantine read
model; `release` and `discard` go through the edge's admin quarantine API, which asks the
validation service: the decision is an event naming the admin token's name and the comment, so
the audit trail has who decided and why. Exit 0 on success, 1 when refused or unreachable, 2 on
bad arguments."""

from __future__ import annotations

import argparse
import json
import re
import urllib.parse
from typing import Any

import msgspec

from ccn_cli.console import fail, say
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.log_cmd import LogUnavailable, admin_token, analytics_base_url, fetch_all_pages, fetch_json
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings
from ccn_proto.constraints import line_problem
from ccn_proto.results import MAX_COMMENT_CHARS

_JOB_ID = r"[A-Za-z0-9_-]{1,64}"
_NODE_ID = r"[A-Za-z0-9_-]{1,64}"
_CHECKSUM = r"[0-9A-Za-z_-]{1,128}"
_LIST_PAGE = 500
# a listing prints at most this many results; narrow it with the filters for more
MAX_LISTED = 10_000


def register(groups: Subparsers) -> None:
    parser = groups.add_parser("quarantine", help="list and show rejected results; release or discard one")
    actions = parser.add_subparsers(dest="quarantine_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="rejected results, oldest first, with their status")
    listing.add_argument("--status", choices=("rejected", "released", "discarded"))
    listing.add_argument("--node", help="only this node's results")
    listing.add_argument("--job-type", help="only results of this job type")
    listing.add_argument("--json", action="store_true", help="one JSON object per result")
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", help="a job's rejected results, every reason and decision")
    show.add_argument("job_id")
    show.add_argument("--json", action="store_true", help="the whole view as JSON")
    show.set_defaults(run=run_show)

    for action, help_text in (
        ("release", "accept a rejected result anyway: it becomes the job's answer"),
        ("discard", "confirm a rejection: the result is never used"),
    ):
        command = actions.add_parser(action, help=help_text)
        command.add_argument("job_id")
        command.add_argument("--node", required=True, help="the node that submitted the result")
        command.add_argument("--attempt", required=True, type=int, help="the job attempt it answered")
        command.add_argument("--checksum", required=True, help="the result's checksum, as `list` shows it")
        command.add_argument("--comment", required=True, help="why (one line; kept in the audit trail)")
        command.set_defaults(run=guarded(run_decision), action=action)


def decision_request(args: argparse.Namespace) -> tuple[str, bytes]:
    """The edge path and body of a release or discard; EdgeError naming the bad argument."""
    if not re.fullmatch(_JOB_ID, args.job_id):
        raise EdgeError(f"not a job id: {args.job_id!r} (letters, digits, '_' and '-', at most 64)")
    if not re.fullmatch(_NODE_ID, args.node):
        raise EdgeError(f"not a node id: {args.node!r} (letters, digits, '_' and '-', at most 64)")
    if not 0 <= args.attempt <= 2**31 - 1:
        raise EdgeError(f"not an attempt: {args.attempt} (0 or more)")
    if not re.fullmatch(_CHECKSUM, args.checksum):
        raise EdgeError(f"not a checksum: {args.checksum!r}")
    comment = args.comment
    if not comment.strip() or len(comment) > MAX_COMMENT_CHARS:
        raise EdgeError(f"the comment must be 1 to {MAX_COMMENT_CHARS} characters")
    if (problem := line_problem(comment)) is not None:
        raise EdgeError(f"the comment {problem}")
    body = {"node_id": args.node, "attempt": args.attempt, "checksum": args.checksum, "comment": comment}
    return f"/admin/quarantine/{args.job_id}/{args.action}", msgspec.json.encode(body)


def run_decision(args: argparse.Namespace, edge: EdgeClient) -> int:
    path, body = decision_request(args)
    reply: dict[str, Any] = edge.post(path, body, dict)
    decided = "released" if args.action == "release" else "discarded"
    done = decided if reply.get("changed") else f"already {decided}: nothing changed"
    say(f"{args.action} {args.job_id} (node {args.node}, attempt {args.attempt}): {done}")
    if args.action == "release":
        error = reply.get("settle_error")
        if error:
            fail(f"the job did not take it: {error.get('message')}")
            return 1
        say(f"job {args.job_id} is {reply.get('job_status')}")
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    params = {k: v for k, v in (("status", args.status), ("node_id", args.node), ("job_type", args.job_type)) if v}
    try:
        results = fetch_all_pages(
            analytics_base_url(settings), admin_token(settings), "/admin/quarantine", "results", params, _LIST_PAGE
        )
    except LogUnavailable as exc:
        fail(str(exc))
        return 1
    if args.json:
        for result in results[:MAX_LISTED]:
            say(json.dumps(result, sort_keys=True))
        return 0
    for line in list_lines(results[:MAX_LISTED]):
        say(line)
    return 0


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    if not re.fullmatch(_JOB_ID, args.job_id):
        fail(f"not a job id: {args.job_id!r} (letters, digits, '_' and '-', at most 64)")
        return 2
    try:
        path = f"/admin/quarantine/{urllib.parse.quote(args.job_id)}"
        view = fetch_json(analytics_base_url(settings), admin_token(settings), path)
    except LogUnavailable as exc:
        fail(str(exc))
        return 1
    if args.json:
        say(json.dumps(view, indent=2, sort_keys=True))
        return 0
    for line in show_lines(view):
        say(line)
    return 0


_LIST_COLUMNS = ("rejected at (UTC)", "job", "type", "node", "attempt", "status", "by", "reasons")


def list_lines(results: list[dict[str, Any]]) -> list[str]:
    rows = [
        (
            result["rejected_at"][:19].replace("T", " "),
            result["job_id"],
            result["job_type"],
            result["node_id"],
            str(result["attempt"]),
            result["status"],
            result.get("decided_by") or "-",
            ", ".join(sorted({reason["code"] for reason in result["reasons"]})),
        )
        for result in results
    ]
    widths = [max(len(row[i]) for row in [_LIST_COLUMNS, *rows]) for i in range(len(_LIST_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_LIST_COLUMNS, *rows]
    ]


def show_lines(view: dict[str, Any]) -> list[str]:
    lines = [f"job {view['job_id']}"]
    for result in view["results"]:
        lines += [
            f"- node {result['node_id']}, attempt {result['attempt']}, checksum {result['checksum']}",
            f"  {result['job_type']} {result['job_type_version'] or '-'} (rules {result['rules_version'] or '-'}), "
            f"rejected at {result['rejected_at']}",
            f"  status   {result['status']}"
            + (
                f" by {result['decided_by']} at {result['decided_at']}: {result['comment']}"
                if result["decided_by"]
                else ""
            ),
        ]
        lines += [
            f"  reason   {reason['code']}"
            + (f" at {reason['field']}" if reason.get("field") else "")
            + f": {reason['message']}"
            for reason in result["reasons"]
        ]
        if result["reasons_truncated"]:
            lines.append("  (more reasons were found than are kept)")
    return lines
