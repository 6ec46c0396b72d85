"""`ccn env`: `export CCN_...=` lines for the running stack, so `eval "$(ccn env)"` gives a shell
its URLs, ports and secrets."""

from __future__ import annotations

import argparse
import shlex
import sys

from ccn_cli.console import fail
from ccn_cli.stack.run_state import load_state
from ccn_cli.stack.secrets_file import SECRET_FIELDS, read_secrets_file, secrets_path
from ccn_cli.stack.settings_env import env_var
from ccn_cli.stack.supervisor import service_spec
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("env", help='print export lines for the running stack: eval "$(ccn env)"')
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    state = load_state(settings.home)
    if state is None:
        fail(f"no stack is running in {settings.home}; start it with `ccn up`")
        return 1
    values = {
        "CCN_HOME": state.home,
        "CCN_NATS_URL": state.nats_url,
        "CCN_DATABASE_URL": state.database_url,
    }
    for record in state.processes:
        if record.kind == "service":
            values[service_spec(record.name).port_env] = str(record.port)
    stored = read_secrets_file(secrets_path(settings.home))
    for field in SECRET_FIELDS:
        value = getattr(settings, field) or stored.get(env_var(field), "")
        if value:
            values[env_var(field)] = value
    # plain stdout, not rich: this text is evaluated by a shell
    sys.stdout.write(
        "# the running stack; note that with CCN_NATS_URL / CCN_DATABASE_URL set, "
        "`ccn up` uses these servers instead of starting its own\n"
    )
    sys.stdout.write("".join(f"export {key}={shlex.quote(value)}\n" for key, value in values.items()))
    return 0
