"""`ccn datasets versions | diff V1 V2 [--json] | explain RECORD FIELD | publish`: the canonical
datasets (funders and funding opportunities) through the edge's dataset API with the admin
token. `publish` records a version naming the token's admin. Exit 0 on success, 1 when refused
or unreachable, 2 on bad arguments."""

from __future__ import annotations

import argparse
import json
import re
import urllib.parse
from typing import Any

import msgspec

from ccn_cli.console import say
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.subcommand import Subparsers
from ccn_proto.merge import DEFAULT_DATASET

_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("datasets", help="the merged datasets: versions, diffs, why a field is what it is")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"the dataset (default {DEFAULT_DATASET})")
    actions = parser.add_subparsers(dest="datasets_action", required=True, metavar="ACTION")

    versions = actions.add_parser("versions", help="every published version")
    versions.add_argument("--json", action="store_true", help="the versions as JSON")
    versions.set_defaults(run=guarded(run_versions))

    diff = actions.add_parser("diff", help="records added, removed and changed from version V1 to V2")
    diff.add_argument("from_version", type=int, metavar="V1")
    diff.add_argument("to_version", type=int, metavar="V2")
    diff.add_argument("--json", action="store_true", help="the diff as JSON instead of a table")
    diff.set_defaults(run=guarded(run_diff))

    explain = actions.add_parser("explain", help="why a record's field has its value")
    explain.add_argument("record_id", metavar="RECORD")
    explain.add_argument("field", metavar="FIELD")
    explain.add_argument("--json", action="store_true", help="the explanation as JSON")
    explain.set_defaults(run=guarded(run_explain))

    publish = actions.add_parser("publish", help="publish the next version of the dataset")
    publish.add_argument("--note", default="", help="what this version is (kept with it)")
    publish.set_defaults(run=guarded(run_publish))


def _base(args: argparse.Namespace) -> str:
    if re.fullmatch(_NAME, args.dataset) is None:
        raise EdgeError(f"not a dataset name: {args.dataset!r} (lower-case letters, digits, '-' and '_')")
    return f"/datasets/{args.dataset}"


def run_versions(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = msgspec.json.decode(edge.call("GET", f"{_base(args)}/versions"))
    if args.json:
        say(json.dumps(body, indent=2, sort_keys=True))
        return 0
    if not body["versions"]:
        say(f"dataset {body['dataset']} has no published version yet")
        return 0
    say(f"{'version':>7}  {'records':>8}  {'published':<25}  {'by':<12}  note")
    for v in body["versions"]:
        say(f"{v['version']:>7}  {v['records']:>8}  {v['published_at']:<25}  {v['by']:<12}  {v['note']}")
    return 0


def run_diff(args: argparse.Namespace, edge: EdgeClient) -> int:
    query = urllib.parse.urlencode(
        {"from": args.from_version, "to": args.to_version, "format": "json" if args.json else "table"}
    )
    answer = edge.call("GET", f"{_base(args)}/diff?{query}")
    if args.json:
        say(json.dumps(msgspec.json.decode(answer), indent=2, sort_keys=True))
    else:
        say(answer.decode().rstrip("\n"))
    return 0


def run_explain(args: argparse.Namespace, edge: EdgeClient) -> int:
    record = urllib.parse.quote(args.record_id, safe="")
    field = urllib.parse.quote(args.field, safe="")
    body = msgspec.json.decode(edge.call("GET", f"{_base(args)}/records/{record}/explain/{field}"))
    say(json.dumps(body, indent=2, sort_keys=True) if args.json else body["text"])
    return 0


def run_publish(args: argparse.Namespace, edge: EdgeClient) -> int:
    body: dict[str, Any] = edge.post(f"{_base(args)}/versions", msgspec.json.encode({"note": args.note}), dict)
    say(f"published version {body['version']} of {body['dataset']}: {body['records']} records, {body['content_hash']}")
    return 0
