"""`ccn admin nodes list|show|ban|unban|shadow-ban|drain|budgets`: a node's standing, and the
actions on it. `list` reads the analytics service's node list; the rest go through the edge's
admin node API, which asks the registry: `show` is the node's state folded from its own history
(reputation with its inputs), and each action is an event naming the admin token's name and the
reason, so the audit trail has who did it and why. Exit 0 on success, 1 when refused or
unreachable, 2 on bad arguments."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from ccn_cli.console import fail, say
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.log_cmd import LogUnavailable, admin_token, analytics_base_url, fetch_all_pages
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings

_NODE_ID = r"^[0-9A-Za-z-]{1,64}$"
_LIST_PAGE = 500


def register(groups: Subparsers) -> None:
    parser = groups.add_parser("nodes", help="list nodes; show, ban, unban, shadow-ban, drain a node; set its budgets")
    actions = parser.add_subparsers(dest="nodes_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="nodes with standing, health, backoff and totals")
    listing.add_argument("--health", choices=("healthy", "unstable", "offline", "banned"))
    listing.add_argument("--standing", choices=("banned", "shadow_banned", "draining"))
    listing.add_argument("--json", action="store_true", help="one JSON object per node")
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", help="a node's standing, reputation and the record behind it")
    show.add_argument("node_id")
    show.add_argument("--json", action="store_true", help="the whole view as JSON")
    show.set_defaults(run=guarded(run_show))

    for action, help_text in (
        ("ban", "refuse every request of the node (403); its jobs go back"),
        ("unban", "lift a ban, a shadow-ban and a drain"),
        ("shadow-ban", "keep giving the node work, never accept its results"),
        ("drain", "let the node finish its jobs, give it no new ones, then say bye"),
    ):
        command = actions.add_parser(action, help=help_text)
        command.add_argument("node_id")
        command.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        command.set_defaults(run=guarded(run_action), action=action)

    budgets = actions.add_parser("budgets", help="set a node's resource budgets (omitted: no limit of that kind)")
    budgets.add_argument("node_id")
    budgets.add_argument("--max-cpu-time-s", type=float, metavar="S", help="CPU seconds per job")
    budgets.add_argument("--max-memory-mb", type=int, metavar="MB", help="memory per job")
    budgets.add_argument("--max-bandwidth-per-min", type=int, metavar="BYTES", help="bytes fetched per minute")
    budgets.set_defaults(run=guarded(run_budgets))


def _node_path(node_id: str, suffix: str = "") -> str:
    if not re.fullmatch(_NODE_ID, node_id):
        raise EdgeError(f"not a node id: {node_id!r} (letters, digits and '-', at most 64)")
    return f"/admin/nodes/{node_id}{suffix}"


def run_show(args: argparse.Namespace, edge: EdgeClient) -> int:
    view = msgspec.json.decode(edge.call("GET", _node_path(args.node_id)))
    if args.json:
        say(json.dumps(view, indent=2, sort_keys=True))
        return 0
    for line in show_lines(view):
        say(line)
    return 0


def show_lines(view: dict[str, Any]) -> list[str]:
    standing = [name for name in ("banned", "shadow_banned", "draining") if view.get(name)] or ["ordinary"]
    reputation = view["reputation"]
    lines = [
        f"node          {view['node_id']} ({view['status']}, {view['active_sessions']} active sessions)",
        f"standing      {', '.join(standing)}" + (f": {view['ban_reason']}" if view.get("ban_reason") else ""),
        f"health        {view['health']}",
        f"backoff       {view['backoff_stage']}"
        + (f" until {view['backoff_until']}" if view.get("backoff_until") else ""),
        f"consent       {view.get('consent_version') or '-'}, scopes: {_scopes(view.get('consent_scopes'))}",
        f"daily quota   {view['daily_quota']}",
        f"budgets       {_budgets(view.get('budgets'))}",
        f"reputation    {reputation['score']:.1f} / 100",
    ]
    lines += [f"  {name:<12}{share:6.2f}" for name, share in reputation["components"].items()]
    lines.append("  from")
    lines += [f"  {name:<18}{'-' if value is None else value}" for name, value in reputation["inputs"].items()]
    return lines


def _scopes(scopes: list[str] | None) -> str:
    return ", ".join(scopes) if scopes else "none"


def _budgets(budgets: dict[str, Any] | None) -> str:
    if not budgets:
        return "none"
    limits = {k: v for k, v in budgets.items() if k not in ("type", "by") and v is not None}
    return ", ".join(f"{k}={v}" for k, v in limits.items()) + f" (set by {budgets.get('by')})" if limits else "none"


def run_action(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = msgspec.json.encode({"reason": args.reason})
    reply: dict[str, Any] = edge.post(_node_path(args.node_id, f"/{args.action}"), body, dict)
    done = "done" if reply.get("changed") else "nothing to change: the node already was so"
    say(f"{args.action} {args.node_id}: {done}")
    return 0


def run_budgets(args: argparse.Namespace, edge: EdgeClient) -> int:
    limits = {
        "max_cpu_time_per_job_s": args.max_cpu_time_s,
        "max_memory_mb": args.max_memory_mb,
        "max_bandwidth_per_min": args.max_bandwidth_per_min,
    }
    body = msgspec.json.encode({k: v for k, v in limits.items() if v is not None})
    answer = edge.call("PUT", _node_path(args.node_id, "/budgets"), body, headers={"Content-Type": "application/json"})
    reply = msgspec.json.decode(answer)
    say(f"budgets of {args.node_id}: {'set' if reply.get('changed') else 'unchanged'}")
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        base_url = analytics_base_url(settings)
        token = admin_token(settings)
        params = {k: v for k, v in (("health", args.health), ("standing", args.standing)) if v}
        nodes = fetch_all_pages(base_url, token, "/admin/nodes", "nodes", params, _LIST_PAGE)
    except LogUnavailable as exc:
        fail(str(exc))
        return 1
    if args.json:
        for node in nodes:
            say(json.dumps(node, sort_keys=True))
        return 0
    for line in list_lines(nodes):
        say(line)
    return 0


_LIST_COLUMNS = ("node", "health", "standing", "backoff", "completed", "failed", "refused", "last seen (UTC)")


def list_lines(nodes: list[dict[str, Any]]) -> list[str]:
    rows = []
    for node in nodes:
        standing = [
            n
            for n, key in (("banned", "is_banned"), ("shadow", "is_shadow_banned"), ("draining", "is_draining"))
            if node[key]
        ]
        if not node["is_active"]:
            standing.append("opted out")
        seen = node.get("last_seen_at")
        rows.append(
            (
                node["node_id"],
                node["health"],
                ",".join(standing) or "-",
                node["backoff_stage"],
                str(node["jobs_completed"]),
                str(node["jobs_failed"]),
                str(node["requests_refused"]),
                datetime.fromisoformat(seen).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if seen else "-",
            )
        )
    widths = [max(len(row[i]) for row in [_LIST_COLUMNS, *rows]) for i in range(len(_LIST_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_LIST_COLUMNS, *rows]
    ]
