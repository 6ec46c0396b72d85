"""`ccn crawl ...`: the crawl. `stats`: crawl analytics per domain (ccn_cli.crawl_stats_cmd)."""

from __future__ import annotations

from ccn_cli.crawl_stats_cmd import add_stats_command
from ccn_cli.subcommand import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("crawl", help="the crawl: analytics per domain")
    actions = parser.add_subparsers(dest="crawl_action", required=True, metavar="ACTION")
    add_stats_command(actions)
