"""`make bench` is no part of `make test` and lint does not type-check bench/, so a name a bench
module imports that a change renamed would only show when someone ran the bench: importing the
report's entry point imports every group."""

from __future__ import annotations

import importlib


def test_every_bench_group_imports() -> None:
    main = importlib.import_module("bench.__main__")
    assert callable(main.run) and callable(main.main)
