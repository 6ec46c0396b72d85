"""Fuzz fixtures: a whole stack per test (tests/fuzz/stack.py), and the figures each run
leaves for the session's summary (printed at the end of every run that collected these tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fuzz.figures import TALLIES, Tally
from tests.fuzz.stack import Stack, running_stack


@pytest.fixture
async def stack(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(isolated_nats, fresh_database, tmp_path) as running:
        yield running


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    kept = Tally(name=request.node.nodeid.split("::", 1)[-1])
    TALLIES.append(kept)
    yield kept
    kept.finish()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLIES:
        return
    terminalreporter.section("fuzzing figures")
    total = sum(t.examples for t in TALLIES)
    seconds = sum(t.seconds for t in TALLIES)
    for kept in TALLIES:
        for line in kept.summary():
            terminalreporter.write_line(line)
    terminalreporter.write_line(f"fuzzing total: {total} examples in {seconds:.1f} s")
