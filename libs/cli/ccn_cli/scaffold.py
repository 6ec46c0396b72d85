"""What `ccn new-job-type NAME` writes: a job type's module (payload and result Structs, a pure
handler, a version, sample payloads), its registration in ccn_jobs.registry.JOB_TYPES (which the
scheduler, the node, the edge and the schema export all read), and a test module whose last
test fails until someone says what the job must do.

Pure apart from the files under `root`, so it is tested on a copy of the few files it touches."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MAX_NAME_CHARS = 28  # so that every line the templates make stays within 120 characters
REGISTRY = Path("libs/jobs/ccn_jobs/registry.py")
JOBS_PACKAGE = Path("libs/jobs/ccn_jobs")
UNIT_TESTS = Path("tests/unit")
# the lines of registry.py a new entry goes between; anything else is not a shape to edit blind
_TUPLE_OPEN = "        for job in (\n"
_TUPLE_CLOSE = "        )\n"
_IMPORT = re.compile(r"^from ccn_jobs\.[a-z0-9_.]+ import .+$")


class ScaffoldError(ValueError):
    """The job type cannot be created as asked; the message says why."""


@dataclass(frozen=True)
class Scaffolded:
    module: Path
    test: Path
    registry: Path


def check_name(name: str, known: frozenset[str], root: Path) -> None:
    if not NAME_PATTERN.match(name) or len(name) > MAX_NAME_CHARS:
        raise ScaffoldError(
            f"{name!r} is not a job type name: use lower-case letters, digits and single underscores, "
            f"starting with a letter, at most {MAX_NAME_CHARS} characters (like extract_text)"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword")
    if name in known:
        raise ScaffoldError(f"a job type {name!r} is already registered")
    for path in (root / JOBS_PACKAGE / f"{name}.py", root / JOBS_PACKAGE / name, root / UNIT_TESTS / _test_file(name)):
        if path.exists():
            raise ScaffoldError(f"{path} already exists")


def scaffold_job_type(name: str, root: Path, known: frozenset[str]) -> Scaffolded:
    """Write the module and the test, and register the job type; ScaffoldError, with nothing
    written, when the name or the tree will not do."""
    check_name(name, known, root)
    registry_path = root / REGISTRY
    if not registry_path.is_file():
        raise ScaffoldError(f"{registry_path} not found: run this in a Community Compute source tree (or give --root)")
    registry = _registered(registry_path.read_text(encoding="utf-8"), name)
    module = root / JOBS_PACKAGE / f"{name}.py"
    test = root / UNIT_TESTS / _test_file(name)
    values = {"name": name, "camel": _camel(name), "constant": name.upper()}
    module.write_text(Template(MODULE_TEMPLATE).substitute(values), encoding="utf-8")
    test.write_text(Template(TEST_TEMPLATE).substitute(values), encoding="utf-8")
    registry_path.write_text(registry, encoding="utf-8")
    return Scaffolded(module=module, test=test, registry=registry_path)


def _registered(source: str, name: str) -> str:
    """registry.py with the job type imported (among the ccn_jobs imports, in order) and added
    last to the JOB_TYPES tuple."""
    lines = source.splitlines(keepends=True)
    try:
        open_at = lines.index(_TUPLE_OPEN)
        close_at = lines.index(_TUPLE_CLOSE, open_at)
    except ValueError:
        raise ScaffoldError(
            f"{REGISTRY} does not list JOB_TYPES in the expected shape; register {name.upper()} there by hand"
        ) from None
    lines.insert(close_at, f"            {name.upper()},\n")
    import_line = f"from ccn_jobs.{name} import {name.upper()}\n"
    imports = [i for i, line in enumerate(lines[:open_at]) if _IMPORT.match(line.rstrip("\n"))]
    if not imports:
        raise ScaffoldError(f"{REGISTRY} has no ccn_jobs imports to add {name} to; register it by hand")
    position = next((i for i in imports if lines[i] > import_line), imports[-1] + 1)
    lines.insert(position, import_line)
    return "".join(lines)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _test_file(name: str) -> str:
    return f"test_jobs_{name}.py"


MODULE_TEMPLATE = '''"""Job type `$name`: say here what it computes, from what, and why a node does it.

The contract (docs/job-types.md): the handler is pure (no clock, no randomness, no network, no
files but its package's own data), deterministic (the same payload gives a result that encodes
to the same bytes on every node), bounded (every input and output field has a size limit, and
the work grows at most with the input), and versioned (bump VERSION whenever some payload's
result would change)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ccn_jobs.job_type import JobType
from ccn_proto.constraints import MULTI_LINE_PATTERN

NAME = "$name"
VERSION = "1"

MAX_TEXT_CHARS = 100_000


class ${camel}Payload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS, pattern=MULTI_LINE_PATTERN)]


class ${camel}Result(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    chars: Annotated[int, msgspec.Meta(ge=0, le=MAX_TEXT_CHARS)]


def $name(payload: ${camel}Payload) -> ${camel}Result:
    """The work: so far it counts the text's characters."""
    return ${camel}Result(version=VERSION, chars=len(payload.text))


SAMPLE_PAYLOADS: tuple[${camel}Payload, ...] = (
    ${camel}Payload(text="A representative input"),
    ${camel}Payload(text=""),
)

${constant} = JobType(
    name=NAME,
    version=VERSION,
    payload_type=${camel}Payload,
    result_type=${camel}Result,
    handler=$name,
    consent_scope="documents",  # which consent covers it: one of ccn_proto.nodes.CONSENT_SCOPES
    description="$name: one line on what it computes",
    sample_payloads=SAMPLE_PAYLOADS,
)
'''

TEST_TEMPLATE = '''"""$name: what it computes, on representative and hostile inputs."""

from __future__ import annotations

import pytest

from ccn_jobs import $name as job_module
from ccn_jobs.registry import JOB_TYPES


def test_it_is_registered_with_sample_payloads() -> None:
    assert JOB_TYPES["$name"].handler is job_module.$name
    assert job_module.SAMPLE_PAYLOADS


def test_every_result_carries_the_version() -> None:
    for payload in job_module.SAMPLE_PAYLOADS:
        assert job_module.$name(payload).version == job_module.VERSION


def test_it_does_its_job() -> None:
    pytest.fail("$name is scaffolded: test what it must do here, then write the handler")
'''
