"""`ccn serve SERVICE`: run one service in the foreground, as a container does.

The image's one entrypoint is `ccn`; a Deployment picks its service by argument (`serve edge`),
its Jobs by command (`migrate`, `topology apply`). The service replaces this process (exec), so it
is PID 1 of its container and receives the kubelet's SIGTERM itself. Nothing embedded starts:
the service reads CCN_NATS_URL and CCN_DATABASE_URL like any other.

Without CCN_NATS_URL it joins the embedded stack of CCN_HOME (`ccn up --no-services`, Tilt's
local mode) and takes the secrets that stack generated, as `ccn up` hands them to its services;
with it (a container), nothing is read from or written to disk."""

from __future__ import annotations

import argparse
import os
import sys

from ccn_cli.console import fail
from ccn_cli.stack.secrets_file import with_secrets
from ccn_cli.stack.supervisor import SERVICES, service_env, service_spec, why_not_runnable
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="run one service in the foreground (a container's command)", description=__doc__
    )
    parser.add_argument("service", choices=[spec.name for spec in SERVICES], help="the service to run")
    parser.set_defaults(run=run)


def service_argv(name: str) -> list[str]:
    """The command line that runs the service: the same `python -m` as `ccn up` uses."""
    return [sys.executable, "-m", service_spec(name).module]


def run(args: argparse.Namespace, settings: Settings) -> int:
    reason = why_not_runnable(service_spec(args.service).module)
    if reason is not None:
        fail(f"cannot serve {args.service}: {reason}")
        return 2
    if settings.embedded_nats:
        settings = with_secrets(settings)
    argv = service_argv(args.service)
    # the service becomes this process, signals and all; execve returns only by raising
    os.execve(argv[0], argv, service_env(settings))  # noqa: S606
