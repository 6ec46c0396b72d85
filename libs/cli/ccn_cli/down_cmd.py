"""`ccn down`: stop everything `ccn up` started, services first, Postgres last. Idempotent."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from ccn_cli.console import say
from ccn_cli.stack.lifecycle import stop_stack
from ccn_cli.stack.processes import live_process, wait_gone
from ccn_cli.stack.run_state import RunState, load_state, stack_lock
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings

# an attached `ccn up` gives services 10 s, then stops NATS and Postgres
_ATTACHED_STOP_S = 60.0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("down", help="stop the stack (services, then NATS, then PostgreSQL)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    home = settings.home
    with stack_lock(home):
        state = load_state(home)
        if state is not None and state.attached is not None:
            attached = live_process(state.attached)
            if attached is not None:
                say(f"asking the attached `ccn up` (pid {attached.pid}) to stop the stack")
                attached.terminate()
                if not wait_gone(attached, _ATTACHED_STOP_S):
                    say("it did not finish in time; stopping the stack from here")
                state = load_state(home) or _nothing_recorded(settings)
        # with no state file, still look for servers of this home left by a crashed `ccn up`
        stopped = stop_stack(state or _nothing_recorded(settings), say)
    if stopped or state is not None:
        say(f"the stack in {home} is stopped")
    else:
        say(f"nothing was running in {home}")
    return 0


def _nothing_recorded(settings: Settings) -> RunState:
    return RunState(
        home=str(settings.home),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        nats_url=settings.effective_nats_url,
        database_url=settings.effective_database_url,
    )
