"""Terminal output. Messages are printed without rich markup (log tails contain "[INF]" and
the like) and never re-wrapped (a URL or token must stay copyable)."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def say(message: str) -> None:
    out.print(message, markup=False)


def warn(message: str) -> None:
    err.print(message, markup=False, style="yellow")


def fail(message: str) -> None:
    err.print(f"ccn: error: {message}", markup=False, style="bold red")
