"""`ccn topology apply | check`: the JetStream streams and key-value buckets of ccn_core.topology.

`apply` creates what is missing and updates the rest, under a lock in NATS, and is run once per
deploy (by `ccn up`, by the Kubernetes Job ccn-topology), never by the services: they only check
at start, as `check` does here, and name what is missing."""

from __future__ import annotations

import argparse
import asyncio

from ccn_cli.console import fail, say
from ccn_cli.stack.backends import declare_streams, topology_gaps
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings
from ccn_core.topology import KEY_VALUES, STREAMS


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "topology", help="apply or check the JetStream streams and key-value buckets the services need"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = actions.add_parser("apply", help="create or update every stream and bucket, under a lock in NATS")
    apply.set_defaults(run=run_apply)
    check = actions.add_parser("check", help="exit 1 and name what is missing when the server lacks any of them")
    check.set_defaults(run=run_check)


def run_apply(args: argparse.Namespace, settings: Settings) -> int:
    created = asyncio.run(declare_streams(settings.effective_nats_url, settings))
    names = [spec.name for spec in STREAMS] + [kv.bucket for kv in KEY_VALUES]
    say(f"created: {', '.join(created)}" if created else "nothing to create")
    say(f"topology applied on {settings.effective_nats_url} at R{settings.stream_replicas}: {', '.join(names)}")
    return 0


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    missing = asyncio.run(topology_gaps(settings.effective_nats_url))
    if missing:
        fail(f"missing on {settings.effective_nats_url}: {'; '.join(missing)}; run `ccn topology apply`")
        return 1
    say(f"topology complete on {settings.effective_nats_url}")
    return 0
