"""`ccn node`: run a reference node against an edge until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio

from ccn_cli.console import fail
from ccn_cli.node.config import ConfigError, JobLimits, NodeConfig, parse_job_types, validate_config
from ccn_cli.node.node import run_node
from ccn_cli.subcommand import Subparsers
from ccn_core.logging import configure_logging
from ccn_core.settings import Settings
from ccn_jobs.registry import JOB_TYPES


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run a reference node: register, consent, take jobs over WebSocket",
        description="Registers (or reuses the credentials in $CCN_HOME/node/NAME.json), records consent, connects "
        "to the edge and runs up to N jobs at once, reconnecting with backoff. SIGTERM or Ctrl-C finishes the "
        "running jobs within the grace period (a second Ctrl-C hands them back at once) and says bye.",
    )
    parser.add_argument("--edge", help="the edge's URL (default: http://$CCN_EDGE_HOST:$CCN_EDGE_PORT)")
    parser.add_argument("--name", default="default", help="which stored node to run (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=1, help="jobs run at once (default: %(default)s)")
    parser.add_argument(
        "--job-types",
        default=",".join(sorted(JOB_TYPES)),
        help="comma-separated job types to advertise (default: %(default)s)",
    )
    parser.add_argument("--job-timeout", type=float, default=120.0, help="seconds a job may run (default: %(default)s)")
    parser.add_argument(
        "--job-cpu",
        type=int,
        default=JobLimits().cpu_s,
        help="CPU seconds one job may use before its worker is ended (default: %(default)s)",
    )
    parser.add_argument(
        "--job-memory",
        type=int,
        default=JobLimits().memory_mib,
        help="MiB of data a job's worker may hold before its allocations fail (default: %(default)s)",
    )
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds to finish running jobs on shutdown (default: %(default)s)"
    )
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace, settings: Settings) -> NodeConfig:
    config = NodeConfig(
        edge_url=args.edge or f"http://{settings.edge_host}:{settings.edge_port}",
        home=settings.home,
        name=args.name,
        job_types=parse_job_types(args.job_types),
        concurrency=args.concurrency,
        job_timeout_s=args.job_timeout,
        job_limits=JobLimits(cpu_s=args.job_cpu, memory_mib=args.job_memory),
        grace_s=args.grace,
    )
    if config.job_timeout_s <= 0 or config.grace_s < 0:
        raise ConfigError("--job-timeout must be positive and --grace not negative")
    return validate_config(config, frozenset(JOB_TYPES))


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        config = config_from_args(args, settings)
    except ConfigError as exc:
        fail(str(exc))
        return 2
    configure_logging("node", level=settings.log_level, fmt=settings.log_format, replica=config.name)
    return asyncio.run(run_node(config))
