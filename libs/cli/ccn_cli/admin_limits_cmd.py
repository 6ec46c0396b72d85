"""`ccn admin limits show|set`: the rate limits every edge enforces (GET and PUT /admin/limits).

`set` changes what it is told and keeps the rest: it reads the limits in force, applies each
`--rule SCOPE=RATE/PERIOD:BURST[:CHUNK]` (`per_node.ws.ready=50/1:100`, `per_job_type.crawl=
100/60:20`, `global=5000/1:10000:100`) and `--remove SCOPE`, and writes them back conditionally
on the revision it read, so a concurrent change by another admin is refused rather than lost.
`--file` replaces them all with a JSON document (`-` for stdin), as `show --json` prints it.
Every edge applies the new limits within moments, with no restart."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import msgspec

from ccn_cli.console import say
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.subcommand import Subparsers
from ccn_core.errors import BadInput
from ccn_core.rate_limit_config import ACTIONS, LimitRule, RateLimits, checked, parse_rate_limits

MAX_FILE_BYTES = 1024 * 1024
_RULE = re.compile(
    r"^(?P<scope>[a-z_.0-9]+)=(?P<rate>\d{1,7})/(?P<period>\d{1,5}(?:\.\d{1,3})?)s?:(?P<burst>\d{1,7})(?::(?P<chunk>\d{1,5}))?$"
)


class LimitsView(msgspec.Struct, frozen=True, kw_only=True):
    limits: RateLimits
    revision: int
    source: str
    applied_revision: int


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("limits", help="show or set the nodes' rate limits")
    actions = parser.add_subparsers(dest="limits_action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the rate limits in force")
    show.add_argument("--json", action="store_true", help="print the JSON document (what `set --file` takes)")
    show.set_defaults(run=guarded(run_show))
    change = actions.add_parser("set", help="change rate limits; every edge applies them at once")
    change.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="SCOPE=RATE/PERIOD:BURST[:CHUNK]",
        help="RATE requests per PERIOD seconds, BURST at once; SCOPE is per_node.<action> "
        f"({', '.join(ACTIONS)}), per_job_type.<job type> or global",
    )
    change.add_argument("--remove", action="append", default=[], metavar="SCOPE", help="lift the limit of SCOPE")
    change.add_argument("--enabled", choices=("on", "off"), help="turn every limit on or off")
    change.add_argument("--file", help="replace every limit with this JSON document ('-': stdin)")
    change.set_defaults(run=guarded(run_set))


def run_show(args: argparse.Namespace, edge: EdgeClient) -> int:
    view = edge.get("/admin/limits", LimitsView)
    if args.json:
        say(msgspec.json.format(msgspec.json.encode(view.limits)).decode())
        return 0
    say(describe(view))
    return 0


def run_set(args: argparse.Namespace, edge: EdgeClient) -> int:
    if args.file is not None:
        if args.rule or args.remove or args.enabled:
            raise EdgeError("--file replaces every limit: give it alone")
        limits, revision = parse_rate_limits(read_document(args.file)), None
    else:
        if not (args.rule or args.remove or args.enabled):
            raise EdgeError("nothing to change: give --rule, --remove, --enabled or --file")
        current = edge.get("/admin/limits", LimitsView)
        try:
            limits = changed(current.limits, rules=args.rule, removed=args.remove, enabled=args.enabled)
        except BadInput as exc:
            raise EdgeError(exc.message, field=exc.field) from None
        revision = current.revision
    query = "" if revision is None else f"?revision={revision}"
    body = msgspec.json.encode(limits)
    reply = edge.call("PUT", f"/admin/limits/{query}", body, {"Content-Type": "application/json"})
    say(describe(msgspec.json.decode(reply, type=LimitsView)))
    return 0


def read_document(path: str) -> bytes:
    data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1) if path == "-" else Path(path).read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise EdgeError(f"the limits document is over {MAX_FILE_BYTES} bytes")
    return data


def parse_rule(spec: str) -> tuple[str, LimitRule]:
    """`per_node.ws.ready=50/1:100` → ("per_node.ws.ready", the rule); BadInput when malformed."""
    match = _RULE.match(spec.strip())
    if match is None:
        raise BadInput(f"{spec!r} is not SCOPE=RATE/PERIOD:BURST[:CHUNK] (e.g. per_node.http.job=2/1:10)")
    rule = LimitRule(
        rate=int(match["rate"]),
        period_s=float(match["period"]),
        burst=int(match["burst"]),
        chunk=int(match["chunk"] or 1),
    )
    return match["scope"], rule


def changed(limits: RateLimits, *, rules: list[str], removed: list[str], enabled: str | None) -> RateLimits:
    """The limits with each rule set and each scope removed, checked as the edge will check them."""
    per_node: dict[str, LimitRule] = {str(action): rule for action, rule in limits.per_node.items()}
    per_job_type = dict(limits.per_job_type)
    global_ = limits.global_
    for scope in removed:
        kind, name = _scope(scope)
        if kind == "global":
            global_ = None
        elif (per_node if kind == "per_node" else per_job_type).pop(name, None) is None:
            raise BadInput(f"{scope} has no limit to remove", field=scope)
    for spec in rules:
        scope, rule = parse_rule(spec)
        kind, name = _scope(scope)
        if kind == "global":
            global_ = rule
        elif kind == "per_node":
            per_node[name] = rule
        else:
            per_job_type[name] = rule
    # as a document, so the actions and job type names are checked as the edge decodes them
    document = msgspec.json.encode(
        {
            "enabled": limits.enabled if enabled is None else enabled == "on",
            "per_node": per_node,
            "per_job_type": per_job_type,
            "global": global_,
        }
    )
    return checked(parse_rate_limits(document))


def _scope(scope: str) -> tuple[str, str]:
    if scope == "global":
        return "global", ""
    kind, _, name = scope.partition(".")
    if kind == "per_node" and name in ACTIONS:
        return kind, name
    if kind == "per_job_type" and name:
        return kind, name
    raise BadInput(
        f"unknown scope {scope!r}: per_node.<{'|'.join(ACTIONS)}>, per_job_type.<job type> or global", field=scope
    )


def describe(view: LimitsView) -> str:
    limits = view.limits
    source = f"revision {view.revision}" if view.source == "stored" else "the defaults (none stored)"
    lines = [f"rate limits: {source}; {'enabled' if limits.enabled else 'DISABLED'}"]
    rows = [
        *((f"per_node.{action}", rule) for action, rule in sorted(limits.per_node.items())),
        *((f"per_job_type.{job_type}", rule) for job_type, rule in sorted(limits.per_job_type.items())),
        *([("global", limits.global_)] if limits.global_ is not None else []),
    ]
    width = max((len(scope) for scope, _ in rows), default=0)
    for scope, rule in rows:
        chunk = f", chunks of {rule.chunk}" if rule.chunk > 1 else ""
        lines.append(f"  {scope:<{width}}  {rule.rate} per {rule.period_s:g} s, burst {rule.burst}{chunk}")
    return "\n".join(lines)
