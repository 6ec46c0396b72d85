"""`ccn`'s command table: every module registers the command it is listed under, and running a
command imports that command's module and no other."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from ccn_cli.main import SUBCOMMAND_MODULES, build_parser, command_named


def registered_commands(parser: argparse.ArgumentParser) -> list[str]:
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return list(actions[0].choices)


@pytest.mark.parametrize(("command", "module"), SUBCOMMAND_MODULES.items())
def test_each_module_registers_the_command_it_is_listed_under(command: str, module: str) -> None:
    subparsers = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(module).register(subparsers)
    assert list(subparsers.choices) == [command]


def test_the_whole_parser_has_every_command_and_a_named_one_only_its_own() -> None:
    assert registered_commands(build_parser()) == list(SUBCOMMAND_MODULES)
    assert registered_commands(build_parser("log")) == ["log"]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["log", "--job", "j1"], "log"),
        (["--help"], None),
        ([], None),
        (["-h", "new-job-type"], "new-job-type"),
        (["bogus", "up"], None),  # the first word decides; an unknown one gets the whole list
    ],
)
def test_the_command_is_the_first_word(argv: list[str], command: str | None) -> None:
    assert command_named(argv) == command


def test_running_one_command_imports_no_other_commands_module() -> None:
    probe = (
        "import json, sys\n"
        "from ccn_cli.main import SUBCOMMAND_MODULES, main\n"
        "try:\n"
        "    main(['log', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(m for m in SUBCOMMAND_MODULES.values() if m in sys.modules)))\n"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(ran.stdout.splitlines()[-1]) == ["ccn_cli.log_cmd"]
