"""`ccn admin consensus show|accept|reject GROUP`: a consensus group (a job and its replicas,
named by the first job's id) and the reviewer's decision on one its replicas could not settle
(GET /admin/consensus/{group}, POST .../accept, .../reject). `accept` takes the agreement class
of the result whose checksum it names; `reject` accepts none and cancels the group's jobs."""

from __future__ import annotations

import argparse
import urllib.parse

import msgspec

from ccn_cli.console import say
from ccn_cli.jobs_cmd import EdgeClient, guarded
from ccn_cli.subcommand import Subparsers
from ccn_proto.consensus import ConsensusGroupView


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("consensus", help="see a consensus group; settle one in review")
    actions = parser.add_subparsers(dest="consensus_action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="a group's results, agreement classes and answer")
    show.add_argument("group", help="the group's first job's id")
    show.add_argument("--json", action="store_true", help="print the JSON view")
    show.set_defaults(run=guarded(run_show))
    accept = actions.add_parser("accept", help="settle a group in review with one agreement class")
    accept.add_argument("group")
    accept.add_argument("--checksum", required=True, help="a result of the class to take")
    accept.add_argument("--comment", default="", help="why (kept on the group's record)")
    accept.set_defaults(run=guarded(run_accept))
    reject = actions.add_parser("reject", help="end a group in review with no answer (its jobs are cancelled)")
    reject.add_argument("group")
    reject.add_argument("--comment", required=True, help="why (kept on the group's record)")
    reject.set_defaults(run=guarded(run_reject))


def run_show(args: argparse.Namespace, edge: EdgeClient) -> int:
    view = edge.get(f"/admin/consensus/{_segment(args.group)}", ConsensusGroupView)
    if args.json:
        say(msgspec.json.format(msgspec.json.encode(view)).decode())
        return 0
    say(describe(view))
    return 0


def run_accept(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = msgspec.json.encode({"checksum": args.checksum, "comment": args.comment})
    view = edge.post(f"/admin/consensus/{_segment(args.group)}/accept", body, ConsensusGroupView)
    say(describe(view))
    return 0


def run_reject(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = msgspec.json.encode({"comment": args.comment})
    view = edge.post(f"/admin/consensus/{_segment(args.group)}/reject", body, ConsensusGroupView)
    say(describe(view))
    return 0


def describe(view: ConsensusGroupView) -> str:
    lines = [
        f"group {view.group_id} ({view.job_type or 'no result yet'}): {view.status}, "
        f"{view.results} result(s), {len(view.replicas)} replica(s) issued, {len(view.lost)} lost",
    ]
    if view.answer:
        lines.append(f"answer: the result of job {view.answer}")
    for index, members in enumerate(view.classes, start=1):
        lines.append(f"  class {index}: checksum {members.checksum[:16]}…  nodes {', '.join(members.nodes)}")
    return "\n".join(lines)


def _segment(group: str) -> str:
    """The group id as one path segment, whatever it holds: the edge refuses a malformed id."""
    return urllib.parse.quote(group, safe="")
