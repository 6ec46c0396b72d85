"""`ccn up`: start the stack (or say it already runs), print where everything is, and return,
or with --foreground stay attached until Ctrl-C / SIGTERM stops it all."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from ccn_cli.console import say, warn
from ccn_cli.demo import Demo, demo_settings, print_demo, start_demo, start_fixture_web
from ccn_cli.foreground import stay_attached
from ccn_cli.jobs_cmd import EdgeError
from ccn_cli.stack.errors import StackError
from ccn_cli.stack.lifecycle import ServicePlan, check_ports, logs_dir, plan_services, start_stack
from ccn_cli.stack.nats_server import monitor_port_for
from ccn_cli.stack.ports import require_free_port
from ccn_cli.stack.processes import ProcessRecord, record_process
from ccn_cli.stack.run_state import RunState, clear_state, load_state, save_state, stack_lock
from ccn_cli.stack.secrets_file import secrets_path, with_secrets
from ccn_cli.stack.urls import redact_password
from ccn_cli.subcommand import Subparsers
from ccn_core.receipts import KeyRingError, ensure_key_ring
from ccn_core.settings import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start NATS, PostgreSQL and every service",
        description="Start the stack under CCN_HOME: an embedded NATS (JetStream) and PostgreSQL unless "
        "CCN_NATS_URL / CCN_DATABASE_URL name external ones, migrations, streams, then every service.",
    )
    parser.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C or SIGTERM stops it all")
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="wait this long for each service to be ready"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also start three reference nodes and submit a batch of extract_text jobs over the demo corpus",
    )
    parser.add_argument(
        "--no-services",
        action="store_true",
        help="start only NATS and PostgreSQL, migrated and with the topology applied; the services are run "
        "apart (`ccn serve NAME`, as Tilt's local mode does)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    home = settings.home
    with stack_lock(home):
        state = load_state(home)
        if state is not None:
            alive = state.alive()
            if alive:
                pids = ", ".join(f"{record.name} (pid {record.pid})" for record in alive)
                say(f"the stack in {home} is already running: {pids}")
                say("see `ccn status`; stop it with `ccn down`")
                return 0
            say(f"removing stale run state {home / 'run' / 'state.json'}: none of its processes is running")
            clear_state(home)
        settings = with_secrets(settings)
        # the receipt signing keys: made here on the first start, never fetched from anywhere
        try:
            ensure_key_ring(settings.receipt_keys_path, datetime.now(UTC))
        except KeyRingError as exc:
            raise StackError(f"receipt keys: {exc.message}") from None
        if args.demo:
            settings = demo_settings(settings)
        plan = ServicePlan([], []) if args.no_services else plan_services()
        for spec, reason in plan.skipped:
            say(f"skipping service {spec.name}: {reason}")
        check_ports(settings, plan.to_start)
        if args.demo:
            require_free_port(settings.demo_web_port, "the demo's fixture web", "CCN_DEMO_WEB_PORT")
        state = start_stack(settings, plan.to_start, say, ready_timeout_s=args.timeout)
        demo: Demo | None = None
        if args.demo:
            try:
                _remember(home, state, [start_fixture_web(settings)])
                demo = start_demo(settings, say, on_nodes=lambda nodes: _remember(home, state, nodes))
            except (EdgeError, OSError) as exc:
                warn(f"demo not started: {exc}")
        if args.foreground:
            state.attached = record_process("ccn up", "ccn", os.getpid(), 0, "", logs_dir(home))
            save_state(home, state)
    print_summary(settings, state, plan)
    if demo is not None:
        print_demo(demo, say)
    if args.foreground:
        return stay_attached(state, say)
    return 0


def _remember(home: Path, state: RunState, records: list[ProcessRecord]) -> None:
    state.processes.extend(records)
    save_state(home, state)


def print_summary(settings: Settings, state: RunState, plan: ServicePlan) -> None:
    say("")
    say(f"Community Compute is up (home {settings.home})")
    # the first column fits the longest name (scheduler-projector), with room to spare
    width = max([12, *(len(record.name) + 2 for record in state.processes)])
    for record in state.processes:
        spec = next((spec for spec in plan.to_start if spec.name == record.name), None)
        if spec is None:
            continue
        links = "".join(f"   {label} {record.url}{path}" for label, path in spec.links)
        say(f"  {record.name:<{width}}{record.url}{links}")
    for spec, reason in plan.skipped:
        say(f"  {spec.name:<{width}}not started: {reason}")
    monitor = f"   monitoring http://127.0.0.1:{monitor_port_for(settings.nats_port)}" if settings.embedded_nats else ""
    say(f"  {'NATS':<{width}}{state.nats_url}{monitor}")
    say(f"  {'PostgreSQL':<{width}}{redact_password(state.database_url)}")
    say(f"  {'admin token':<{width}}{settings.admin_token}   (secrets in {secrets_path(settings.home)})")
    say(f"  {'logs':<{width}}{logs_dir(settings.home)}/")
    say('  `ccn status` checks health, `ccn down` stops it, `eval "$(ccn env)"` sets up a shell to talk to it')
