"""`ccn crawl start|status|pause|resume`: crawl campaigns, through the edge's admin campaign API
(the crawler owns them). `start` names the campaign and its seeds, rules and schedule; starting it
again with the same settings changes nothing. `ccn crawl stats`: crawl analytics per domain, from
the analytics service (ccn_cli.crawl_stats_cmd). Exit 0 on success, 1 when refused or unreachable,
2 on bad arguments."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import msgspec

from ccn_cli.console import say
from ccn_cli.crawl_stats_cmd import add_stats_command
from ccn_cli.jobs_cmd import EdgeClient, EdgeError, guarded
from ccn_cli.subcommand import Subparsers
from ccn_proto.crawl import MAX_SEEDS, CampaignList, CampaignSettings, CampaignView

_CAMPAIGN_ID = r"^[a-z0-9][a-z0-9-]{0,39}$"
# a rules file is a job payload's field: it has the same bound as a payload
_MAX_RULES_BYTES = 256 * 1024
_MAX_SEEDS_FILE_BYTES = 4 * 1024 * 1024
_COLUMNS = ("campaign", "status", "pages", "crawled", "in_flight", "changed", "unchanged", "failed", "near_dup", "due")


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("crawl", help="crawl campaigns: start, status, pause, resume; stats per domain")
    actions = parser.add_subparsers(dest="crawl_action", required=True, metavar="ACTION")

    start = actions.add_parser("start", help="start a campaign from seed URLs (allow-listed domains only)")
    start.add_argument("campaign_id", help="a slug: lowercase letters, digits and '-', at most 40")
    start.add_argument("--seed", action="append", default=[], metavar="URL", help="a seed URL (repeatable)")
    start.add_argument("--seeds-file", type=Path, metavar="FILE", help="seed URLs, one per line")
    start.add_argument("--name", help="a name for people (default: the id)")
    start.add_argument(
        "--fields",
        type=Path,
        metavar="FILE.json",
        help="extraction rules (crawl_domain_page's fields) every page applies",
    )
    start.add_argument("--max-pages", type=int, default=1000)
    start.add_argument("--max-depth", type=int, default=3)
    start.add_argument("--max-in-flight", type=int, default=200)
    start.add_argument("--max-in-flight-per-host", type=int, default=4, help="one site's pages crawled at once")
    start.add_argument("--include-subdomains", action="store_true")
    start.add_argument("--allow", action="append", default=[], metavar="PATTERN", help="path pattern to follow")
    start.add_argument("--deny", action="append", default=[], metavar="PATTERN", help="path pattern never to follow")
    start.add_argument("--first-interval", type=float, default=86400.0, metavar="S", help="first recrawl after")
    start.add_argument("--recrawl-min", type=float, default=3600.0, metavar="S")
    start.add_argument("--recrawl-max", type=float, default=30 * 86400.0, metavar="S")
    start.add_argument("--no-recrawl", action="store_true", help="crawl each page once")
    start.set_defaults(run=guarded(run_start))

    status = actions.add_parser("status", help="campaigns and their progress")
    status.add_argument("campaign_id", nargs="?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=guarded(run_status))

    pause = actions.add_parser("pause", help="schedule no more pages (jobs in flight finish)")
    pause.add_argument("campaign_id")
    pause.add_argument("--reason")
    pause.set_defaults(run=guarded(run_pause))

    resume = actions.add_parser("resume", help="schedule pages again")
    resume.add_argument("campaign_id")
    resume.set_defaults(run=guarded(run_resume))

    add_stats_command(actions)


def _path(campaign_id: str, suffix: str = "") -> str:
    if not re.fullmatch(_CAMPAIGN_ID, campaign_id):
        raise EdgeError(f"not a campaign id: {campaign_id!r} (lowercase letters, digits and '-', at most 40)")
    return f"/admin/crawl/campaigns/{campaign_id}{suffix}"


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise EdgeError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise EdgeError(f"{what} {path} is over {limit} bytes")
    return data


def campaign_settings(args: argparse.Namespace) -> CampaignSettings:
    seeds = list(args.seed)
    if args.seeds_file is not None:
        text = _read_bounded(args.seeds_file, _MAX_SEEDS_FILE_BYTES, "seeds file").decode("utf-8", "replace")
        seeds.extend(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if not seeds:
        raise EdgeError("no seeds: give --seed URL or --seeds-file FILE")
    if len(seeds) > MAX_SEEDS:
        raise EdgeError(f"{len(seeds)} seeds: at most {MAX_SEEDS}")
    fields: Any = []
    if args.fields is not None:
        try:
            fields = json.loads(_read_bounded(args.fields, _MAX_RULES_BYTES, "fields file"))
        except ValueError as exc:
            raise EdgeError(f"fields file {args.fields} is not JSON: {exc}") from None
        if not isinstance(fields, list):
            raise EdgeError(f"fields file {args.fields} must hold a JSON list of fields")
    raw = {
        "name": args.name or args.campaign_id,
        "seeds": seeds,
        "fields": fields,
        "include_subdomains": args.include_subdomains,
        "allowed_patterns": args.allow,
        "denied_patterns": args.deny,
        "max_depth": args.max_depth,
        "max_pages": args.max_pages,
        "max_in_flight": args.max_in_flight,
        "max_in_flight_per_host": args.max_in_flight_per_host,
        "first_interval_s": args.first_interval,
        "recrawl_min_s": args.recrawl_min,
        "recrawl_max_s": args.recrawl_max,
        "recrawl": not args.no_recrawl,
    }
    try:
        return msgspec.convert(raw, CampaignSettings)
    except msgspec.ValidationError as exc:
        raise EdgeError(f"bad campaign settings: {exc}") from None


def run_start(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = msgspec.json.encode(campaign_settings(args))
    view = msgspec.json.decode(
        edge.call("PUT", _path(args.campaign_id), body, {"Content-Type": "application/json"}), type=CampaignView
    )
    say(f"campaign {view.campaign_id} {view.status}: {view.pages} pages in its frontier")
    return 0


def run_status(args: argparse.Namespace, edge: EdgeClient) -> int:
    if args.campaign_id:
        views = [edge.get(_path(args.campaign_id), CampaignView)]
    else:
        views = edge.get("/admin/crawl/campaigns", CampaignList).campaigns
    if args.json:
        for view in views:
            say(msgspec.json.encode(view).decode())
        return 0
    for line in status_lines(views):
        say(line)
    return 0


def status_lines(views: list[CampaignView]) -> list[str]:
    rows: list[tuple[Any, ...]] = [_COLUMNS]
    rows.extend(
        (
            view.campaign_id,
            view.status,
            view.pages,
            view.crawled,
            view.in_flight,
            view.changed,
            view.unchanged,
            view.failed,
            view.near_duplicates,
            view.due,
        )
        for view in views
    )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return lines if views else ["no campaigns yet: start one with `ccn crawl start ID --seed URL`"]


def run_pause(args: argparse.Namespace, edge: EdgeClient) -> int:
    body = msgspec.json.encode({"reason": args.reason})
    view = edge.post(_path(args.campaign_id, "/pause"), body, CampaignView)
    say(f"campaign {view.campaign_id} {view.status}; {view.in_flight} pages still in flight")
    return 0


def run_resume(args: argparse.Namespace, edge: EdgeClient) -> int:
    view = edge.post(_path(args.campaign_id, "/resume"), b"{}", CampaignView)
    say(f"campaign {view.campaign_id} {view.status}; {view.due} pages due")
    return 0
