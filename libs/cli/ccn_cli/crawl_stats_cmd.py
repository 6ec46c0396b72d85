"""`ccn crawl stats [--csv] [--breaker STATE]`: crawl analytics
per domain (pages, success rate, failures, refusals, latency, extraction yield, breaker, alerts)
from the running stack's analytics API (GET /admin/crawl/domains) with the stack's admin token;
`--csv` prints every column of it as CSV (one column per failure cause and refusal stage), for
a spreadsheet or a BI load. Exit 0 when the stack answered, 1 when it could not."""

from __future__ import annotations

import argparse
import urllib.parse
from collections.abc import Iterator, Sequence
from datetime import datetime

import msgspec

from ccn_cli.console import fail, say, warn
from ccn_cli.log_cmd import LogUnavailable, admin_token, analytics_base_url, fetch_admin, fetch_json
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings

PAGE_SIZE = 500
PATH = "/admin/crawl/domains"
NEXT_CURSOR_HEADER = "x-next-cursor"
BREAKER_STATES = ("closed", "open", "half_open")


def add_stats_command(actions: Subparsers) -> None:
    """`stats` in the `crawl` command group (ccn_cli.crawl_cmd)."""
    stats = actions.add_parser("stats", help="crawl analytics per domain: pages, failures, latency, yield, breaker")
    stats.add_argument("--csv", action="store_true", help="print every column as CSV")
    stats.add_argument("--breaker", choices=BREAKER_STATES, help="only domains whose breaker is in this state")
    stats.add_argument(
        "--max", type=int, default=100_000, metavar="N", help="stop after N domains (default %(default)s)"
    )
    stats.set_defaults(run=run_stats)


class DomainLine(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a domain's stats the table prints (the API sends more)."""

    domain: str
    pages_fetched: int
    success_rate: float | None
    failed: int
    refused: int
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    extraction_yield: float | None
    breaker_state: str
    limit_alerts: int
    last_seen_at: datetime | None


class Page(msgspec.Struct, frozen=True, kw_only=True):
    domains: list[DomainLine]
    next_cursor: str | None
    has_more: bool


_COLUMNS = ("domain", "pages", "success", "failed", "refused", "avg ms", "p95 ms", "yield", "breaker", "alerts")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def table_lines(lines: Sequence[DomainLine]) -> list[str]:
    rows = [
        (
            line.domain or "(no host)",
            str(line.pages_fetched),
            _percent(line.success_rate),
            str(line.failed),
            str(line.refused),
            _ms(line.avg_latency_ms),
            _ms(line.p95_latency_ms),
            _percent(line.extraction_yield),
            line.breaker_state,
            str(line.limit_alerts),
        )
        for line in lines
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_COLUMNS, *rows]
    ]


def all_domains(base_url: str, token: str, filters: dict[str, str], at_most: int) -> Iterator[DomainLine]:
    params = dict(filters)
    taken = 0
    while taken < at_most:
        params["limit"] = str(min(PAGE_SIZE, at_most - taken))
        page = msgspec.convert(fetch_json(base_url, token, f"{PATH}?{urllib.parse.urlencode(params)}"), Page)
        yield from page.domains
        taken += len(page.domains)
        if not page.has_more or page.next_cursor is None:
            return
        params["cursor"] = page.next_cursor


def all_csv_lines(base_url: str, token: str, filters: dict[str, str], at_most: int) -> Iterator[str]:
    """The CSV pages as one CSV: the header row once, then every domain's row."""
    params = {**filters, "format": "csv"}
    taken = 0
    header_sent = False
    while taken < at_most:
        params["limit"] = str(min(PAGE_SIZE, at_most - taken))
        body, headers = fetch_admin(base_url, token, f"{PATH}?{urllib.parse.urlencode(params)}", accept="text/csv")
        header, *rows = body.decode("utf-8").splitlines()
        if not header_sent:
            yield header
            header_sent = True
        yield from rows
        taken += len(rows)
        cursor = {name.lower(): value for name, value in headers.items()}.get(NEXT_CURSOR_HEADER)
        if not cursor:
            return
        params["cursor"] = cursor


def run_stats(args: argparse.Namespace, settings: Settings) -> int:
    if args.max < 1:
        fail("--max must be at least 1")
        return 2
    filters = {"breaker": args.breaker} if args.breaker else {}
    try:
        base_url = analytics_base_url(settings)
        token = admin_token(settings)
        if args.csv:
            for line in all_csv_lines(base_url, token, filters, args.max):
                say(line)
            return 0
        domains = list(all_domains(base_url, token, filters, args.max))
    except LogUnavailable as exc:
        fail(str(exc))
        return 1
    if not domains:
        say("no crawl yet: no domain was fetched, refused or failed for")
        return 0
    for line in table_lines(domains):
        say(line)
    if len(domains) >= args.max:
        warn(f"stopped after {args.max} domains; raise --max")
    return 0
