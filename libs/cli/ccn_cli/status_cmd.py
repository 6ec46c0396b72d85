"""`ccn status`: each process of the stack, alive or not, healthy or not. Exit 0 only if all are."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import urlsplit

from rich.table import Table

from ccn_cli.console import fail, out
from ccn_cli.stack.probes import http_ready_problem, jetstream_problem, postgres_problem
from ccn_cli.stack.processes import ProcessRecord, is_alive
from ccn_cli.stack.run_state import RunState, load_state
from ccn_cli.subcommand import Subparsers
from ccn_core.settings import Settings


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("status", help="show every process of the stack and its health")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Row:
    name: str
    pid: str
    port: str
    alive: bool | None  # None: an external server, not ours to watch
    problem: str | None

    @property
    def healthy(self) -> bool:
        return self.alive is not False and self.problem is None


def run(args: argparse.Namespace, settings: Settings) -> int:
    state = load_state(settings.home)
    if state is None:
        fail(f"no stack is running in {settings.home}; start it with `ccn up`")
        return 1
    rows = asyncio.run(_check_all(state))
    table = Table(title=f"Community Compute in {state.home}, started {state.started_at}")
    for column in ("name", "pid", "port", "alive", "health"):
        table.add_column(column)
    for row in rows:
        alive = "-" if row.alive is None else ("[green]yes[/]" if row.alive else "[red]no[/]")
        health = "[green]ok[/]" if row.problem is None else f"[red]{_escape(row.problem)}[/]"
        table.add_row(row.name, row.pid, row.port, alive, health)
    out.print(table)
    return 0 if all(row.healthy for row in rows) else 1


async def _check_all(state: RunState) -> list[Row]:
    checks = [_check_record(record, state) for record in state.processes]
    kinds = {record.kind for record in state.processes}
    if "nats" not in kinds:
        checks.insert(0, _check_external("nats (external)", state.nats_url, jetstream_problem(state.nats_url)))
    if "postgres" not in kinds:
        checks.insert(
            1, _check_external("postgres (external)", state.database_url, postgres_problem(state.database_url))
        )
    return list(await asyncio.gather(*checks))


async def _check_record(record: ProcessRecord, state: RunState) -> Row:
    alive = is_alive(record)
    if not alive:
        problem: str | None = "not running"
    elif record.kind == "nats":
        problem = await jetstream_problem(state.nats_url)
    elif record.kind == "postgres":
        problem = await postgres_problem(state.database_url)
    elif record.kind in ("node", "demo"):
        problem = None  # a node serves nothing, the fixture web no probe; alive is all there is to see
    else:
        problem = await asyncio.to_thread(http_ready_problem, f"{record.url}/readyz")
    return Row(record.name, str(record.pid), str(record.port), alive, problem)


async def _check_external(name: str, url: str, probe: Awaitable[str | None]) -> Row:
    problem = await probe
    return Row(name, "-", str(urlsplit(url).port or "-"), None, problem)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
