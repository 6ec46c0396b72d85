"""The image's recipe, read as text: hadolint (in `make lint`) judges the Dockerfile's form,
these its agreement with the project (every workspace member installed from the lock with the
Makefile's uv, a numeric non-root user, a context holding only what the image needs)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_every_workspace_member_is_copied_before_the_locked_sync() -> None:
    members = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    copied = set(re.findall(r"^COPY (\S+)/pyproject\.toml \1/$", DOCKERFILE, re.MULTILINE))
    assert copied == set(members)
    syncs = re.findall(r"^RUN uv sync (.+)$", DOCKERFILE, re.MULTILINE)
    assert len(syncs) == 2
    assert all("--frozen" in sync and "--no-dev" in sync and "--all-packages" in sync for sync in syncs)


def test_the_image_uses_the_makefiles_uv() -> None:
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile_uv is not None
    assert f"uv=={makefile_uv[1]}" in DOCKERFILE


def test_the_default_target_runs_as_a_numeric_non_root_user_on_a_slim_base() -> None:
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)
    last = stages[-1]
    assert last.startswith("base AS runtime")
    assert re.search(r"^USER 10001:10001$", last, re.MULTILINE)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE, re.MULTILINE)
    assert 'ENTRYPOINT ["ccn"]' in DOCKERFILE


def test_the_build_context_admits_only_the_sources_and_the_lock() -> None:
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"
    admitted = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert admitted == {"pyproject.toml", "uv.lock", "libs", "proto", "services"}


def test_hadolint_passes_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
