"""`ccn new-job-type`: run on a copy of the files it touches. The module it writes imports,
registers, runs its samples and passes ruff; its test fails until filled in; bad names, taken
names and trees of the wrong shape are refused with nothing written."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ccn_cli.main import main
from ccn_cli.scaffold import REGISTRY, ScaffoldError, scaffold_job_type
from ccn_jobs.registry import JOB_TYPES

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / REGISTRY).parent.mkdir(parents=True)
    shutil.copy(ROOT / REGISTRY, tmp_path / REGISTRY)
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def cleanup_modules() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        sys.modules.pop(name, None)


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["word_count", "a_name_as_long_as_may_be_xyz"])
def test_it_writes_a_module_a_registration_and_a_failing_test(
    tree: Path, cleanup_modules: list[str], name: str
) -> None:
    assert main(["new-job-type", name, "--root", str(tree)]) == 0
    module_path = tree / f"libs/jobs/ccn_jobs/{name}.py"
    test_path = tree / f"tests/unit/test_jobs_{name}.py"
    registry = (tree / REGISTRY).read_text(encoding="utf-8")
    assert f"from ccn_jobs.{name} import {name.upper()}\n" in registry
    assert f"            {name.upper()},\n        )\n" in registry
    lint = subprocess.run(
        [RUFF, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tree)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    form = subprocess.run(
        [RUFF, "format", "--check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tree)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert form.returncode == 0, form.stdout

    # the new module works, and the edited registry, run against it, registers it
    cleanup_modules += [f"ccn_jobs.{name}", "scaffolded_registry"]
    module = load(f"ccn_jobs.{name}", module_path)
    job = getattr(module, name.upper())
    assert job.name == name and job.sample_payloads
    assert [job.handler(p).version for p in job.sample_payloads] == ["1", "1"]
    scaffolded = load("scaffolded_registry", tree / REGISTRY)
    assert set(scaffolded.JOB_TYPES) == {*JOB_TYPES, name}
    assert scaffolded.JOB_TYPES[name] is job

    test_source = test_path.read_text(encoding="utf-8")
    assert f'pytest.fail("{name} is scaffolded' in test_source


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("WordCount", "not a job type name"),
        ("word-count", "not a job type name"),
        ("_private", "not a job type name"),
        ("double__underscore", "not a job type name"),
        ("x" * 29, "not a job type name"),
        ("class", "keyword"),
        ("extract_text", "already registered"),
    ],
)
def test_bad_and_taken_names_are_refused_with_nothing_written(tree: Path, name: str, why: str) -> None:
    before = (tree / REGISTRY).read_text(encoding="utf-8")
    with pytest.raises(ScaffoldError, match=why):
        scaffold_job_type(name, tree, frozenset(JOB_TYPES))
    assert (tree / REGISTRY).read_text(encoding="utf-8") == before
    assert not (tree / "libs/jobs/ccn_jobs" / f"{name}.py").exists()


def test_an_existing_file_or_a_tree_of_another_shape_is_refused(tree: Path) -> None:
    (tree / "libs/jobs/ccn_jobs/places.py").write_text("", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold_job_type("places", tree, frozenset())
    (tree / REGISTRY).write_text("JOB_TYPES = {}\n", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="by hand"):
        scaffold_job_type("word_count", tree, frozenset())
    assert not (tree / "libs/jobs/ccn_jobs/word_count.py").exists()
    assert main(["new-job-type", "word_count", "--root", str(tree / "nowhere")]) == 2
