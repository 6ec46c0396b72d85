"""`ccn domains import FILE.csv | list | show DOMAIN | allow DOMAIN | block DOMAIN`: the crawl
allow-list. `import`, `allow` and `block` go through the edge's admin domain API (each change an
event naming the admin token's name); `list` and `show` read the analytics service (the
allow-list's read model, and a domain's history from the event stream). The CSV's columns are in
docs/domain-policy.md, with an example in docs/examples/domains.csv. Exit 0 on success, 1 when
refused, unreachable, or when an import rejected any row (the other rows are imported all the
same), 2 on bad arguments."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from ccn_cli.console import fail, say
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.log_cmd import LogUnavailable, admin_token, analytics_base_url, fetch_all_pages, fetch_json
from ccn_cli.subcommand import Subparsers
from ccn_core.domain_csv import MAX_CSV_BYTES
from ccn_core.settings import Settings

_LIST_PAGE = 500
_IMPORT_TIMEOUT_S = 300.0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("domains", help="the crawl allow-list: import a CSV, list, show, allow, block")
    actions = parser.add_subparsers(dest="domains_action", required=True, metavar="ACTION")

    importing = actions.add_parser("import", help="load an allow-list CSV (docs/domain-policy.md gives its columns)")
    importing.add_argument("file", type=Path)
    importing.set_defaults(run=guarded(run_import))

    listing = actions.add_parser("list", help="every reviewed domain with its limits and review")
    listing.add_argument("--permission", choices=("allowed", "blocked"))
    listing.add_argument("--json", action="store_true", help="one JSON object per domain")
    listing.set_defaults(run=run_list)

    show = actions.add_parser("show", help="a domain's policy and every change to it")
    show.add_argument("domain")
    show.add_argument("--json", action="store_true", help="the policy and its history as JSON")
    show.set_defaults(run=run_show)

    allow = actions.add_parser("allow", help="allow a domain, with its limits (the whole set: omitted is default)")
    allow.add_argument("domain")
    allow.add_argument("--rpm", type=int, metavar="N", help="requests per minute (1-600)")
    allow.add_argument("--rph", type=int, metavar="N", help="requests per hour (1-36000)")
    allow.add_argument("--concurrent", type=int, metavar="N", help="fetches at once (1-64)")
    allow.add_argument("--include-subdomains", action="store_true", help="cover every subdomain too")
    allow.add_argument("--path", action="append", default=[], metavar="PREFIX", help="an allowed path prefix")
    allow.add_argument("--pattern", action="append", default=[], metavar="PATTERN", help="a robots-style pattern")
    _review_arguments(allow)
    allow.add_argument("--notes", help="what robots.txt and the terms say")
    allow.set_defaults(run=guarded(run_allow))

    block = actions.add_parser("block", help="block a domain: every fetch for it is refused")
    block.add_argument("domain")
    block.add_argument("--reason", required=True, help="why (kept in the domain's history)")
    _review_arguments(block)
    block.set_defaults(run=guarded(run_block))


def _review_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reviewer", help="who reviewed robots.txt and the terms")
    parser.add_argument("--reviewed-at", metavar="WHEN", help="ISO 8601 date-time with a UTC offset")


def _domain_path(domain: str, suffix: str = "") -> str:
    return f"/admin/domains/{urllib.parse.quote(domain, safe='')}{suffix}"


def run_import(args: argparse.Namespace, edge: EdgeClient) -> int:
    try:
        with args.file.open("rb") as handle:
            data = handle.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise EdgeError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    if len(data) > MAX_CSV_BYTES:
        raise EdgeError(f"{args.file} is larger than {MAX_CSV_BYTES} bytes: split it into several files")
    client = EdgeClient(edge.base_url, edge.token, edge.home, timeout_s=_IMPORT_TIMEOUT_S)
    answer = client.call("POST", "/admin/domains/import", data, headers={"Content-Type": "text/csv; charset=utf-8"})
    report = msgspec.json.decode(answer)
    for line in import_lines(report):
        say(line)
    return 1 if report["rejected"] else 0


def import_lines(report: dict[str, Any]) -> list[str]:
    accepted, rejected = report["accepted"], report["rejected"]
    changed = sum(1 for row in accepted if row["changed"])
    lines = [
        f"{report['rows']} rows: {len(accepted)} accepted ({changed} changed, {len(accepted) - changed} unchanged), "
        f"{len(rejected)} rejected"
    ]
    lines += [f"  line {row['line']} {row['domain'] or '-'}: {row['reason']}" for row in rejected]
    return lines


def _review(args: argparse.Namespace) -> dict[str, Any]:
    review: dict[str, Any] = {}
    if args.reviewer:
        review["reviewer"] = args.reviewer
    if args.reviewed_at:
        try:
            datetime.fromisoformat(args.reviewed_at)
        except ValueError:
            raise EdgeError(f"--reviewed-at {args.reviewed_at!r} is not an ISO 8601 date-time") from None
        review["reviewed_at"] = args.reviewed_at
    return review


def run_allow(args: argparse.Namespace, edge: EdgeClient) -> int:
    limits = {
        "requests_per_minute": args.rpm,
        "requests_per_hour": args.rph,
        "max_concurrent": args.concurrent,
        "notes": args.notes,
    }
    body = {
        **{key: value for key, value in limits.items() if value is not None},
        "include_subdomains": args.include_subdomains,
        "allowed_paths": args.path,
        "allowed_patterns": args.pattern,
        **_review(args),
    }
    reply: dict[str, Any] = edge.post(_domain_path(args.domain, "/allow"), msgspec.json.encode(body), dict)
    return _changed(reply, "allowed")


def run_block(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = {"reason": args.reason, **_review(args)}
    reply: dict[str, Any] = edge.post(_domain_path(args.domain, "/block"), msgspec.json.encode(body), dict)
    return _changed(reply, "blocked")


def _changed(reply: dict[str, Any], done: str) -> int:
    policy = reply["policy"]
    say(f"{policy['domain']}: {done}" if reply["changed"] else f"{policy['domain']}: nothing to change")
    for line in policy_lines(policy):
        say(f"  {line}")
    return 0


def policy_lines(policy: dict[str, Any]) -> list[str]:
    def limit(value: Any) -> str:
        return "default" if value is None else str(value)

    lines = [
        f"permission    {policy['permission']}" + (f": {policy['block_reason']}" if policy.get("block_reason") else "")
    ]
    if policy["permission"] == "allowed":
        lines += [
            f"subdomains    {'included' if policy['include_subdomains'] else 'not included'}",
            f"limits        {limit(policy['requests_per_minute'])}/min, {limit(policy['requests_per_hour'])}/hour, "
            f"{limit(policy['max_concurrent'])} at once",
            f"paths         {', '.join(policy['allowed_paths'] + policy['allowed_patterns']) or 'every path'}",
        ]
    if policy.get("notes"):
        lines.append(f"notes         {policy['notes']}")
    reviewed = policy.get("reviewed_at")
    lines.append(f"reviewed      {policy.get('reviewer') or '-'}" + (f" on {reviewed}" if reviewed else ""))
    return lines


def _analytics(settings: Settings, path: str) -> Any:
    return fetch_json(analytics_base_url(settings), admin_token(settings), path)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    params = {"permission": args.permission} if args.permission else {}
    try:
        base_url, token = analytics_base_url(settings), admin_token(settings)
        domains = fetch_all_pages(base_url, token, "/admin/domains", "domains", params, _LIST_PAGE)
    except LogUnavailable as exc:
        fail(str(exc))
        return 1
    if args.json:
        for domain in domains:
            say(json.dumps(domain, sort_keys=True))
        return 0
    for line in list_lines(domains):
        say(line)
    return 0


_LIST_COLUMNS = ("domain", "permission", "subdomains", "rpm", "rph", "concurrent", "reviewer", "reviewed", "by")


def list_lines(domains: list[dict[str, Any]]) -> list[str]:
    rows = [
        (
            d["domain"],
            d["permission"],
            "yes" if d["include_subdomains"] else "no",
            *(
                "-" if d[key] is None else str(d[key])
                for key in ("requests_per_minute", "requests_per_hour", "max_concurrent")
            ),
            d["reviewer"] or "-",
            (d["reviewed_at"] or "-")[:10],
            d["changed_by"],
        )
        for d in domains
    ]
    widths = [max(len(row[i]) for row in [_LIST_COLUMNS, *rows]) for i in range(len(_LIST_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_LIST_COLUMNS, *rows]
    ]


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    try:
        detail = _analytics(settings, _domain_path(args.domain))
    except LogUnavailable as exc:
        fail(str(exc))
        return 1
    if args.json:
        say(json.dumps(detail, indent=2, sort_keys=True))
        return 0
    say(f"domain        {detail['domain']}")
    policy = detail["policy"]
    if policy is None:
        say("  (the allow-list read model has not caught up yet; the history below is the stream's)")
    else:
        for line in policy_lines(policy):
            say(line)
    say("history")
    for change in detail["history"]:
        data = {k: v for k, v in change["data"].items() if k not in ("type", "by") and v not in (None, [], False)}
        facts = ", ".join(f"{k}={v}" for k, v in data.items())
        say(f"  {change['occurred_at'][:19]}  {change['event_type']:<22} by {change['actor']['id']}: {facts}")
    if detail["history_truncated"]:
        say("  (older changes: GET /admin/audit on the analytics service)")
    return 0
