"""The contract between `ccn`'s main and each subcommand module.

A module defines `register(subparsers: Subparsers) -> None`, adds its parser there and sets
`parser.set_defaults(run=handler)`; main reads Settings once and calls `handler(args, settings)`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from ccn_core.settings import Settings

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[argparse.Namespace, Settings], int]
