"""The README's command snippets, run as a new user would, so they cannot rot. Only snippets
that are safe against a shared stack run: the walkthrough and the read-only `ccn` commands."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import CCN, Stack

README = Path(__file__).resolve().parents[2] / "README.md"


def snippets() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def snippet_containing(marker: str) -> str:
    found = [s for s in snippets() if marker in s]
    assert len(found) == 1, f"README should have exactly one sh snippet with {marker!r}"
    return found[0]


def test_the_four_commands_come_first() -> None:
    first = snippets()[0]
    assert [line.split()[1] for line in first.strip().splitlines()] == ["run", "test", "bench", "lint"]


def test_the_walkthrough_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    script = snippet_containing("/compute/register-node")
    edge_port = stack.edge.rsplit(":", 1)[1]
    analytics_port = stack.analytics.rsplit(":", 1)[1]
    # the README speaks of the default ports and /tmp; the test stack has its own
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{edge_port}").replace(
        "127.0.0.1:8081", f"127.0.0.1:{analytics_port}"
    )
    script = script.replace("/tmp/ccn-node.json", str(tmp_path / "node.json"))
    script = script.replace("readme-demo-1", f"readme-{tmp_path.name}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script + "\necho"],
        env={**stack.env, "CCN_ADMIN_TOKEN": stack.admin_token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    consent, heartbeat, opt_out, audit = (json.loads(part) for part in _json_documents(lines))
    assert consent["consent_version"] == "2026-11-01"
    assert heartbeat["node_public_id"] == consent["node_public_id"]
    assert opt_out["sessions_ended"] == 1
    types = [entry["event_type"] for entry in audit["entries"]]
    assert types == ["node.registered", "node.consent_recorded", "node.opted_out"]


def _json_documents(lines: list[str]) -> list[str]:
    """curl prints each body without a newline after it; split the concatenation back apart."""
    text = "".join(lines)
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while index < len(text):
        _, end = decoder.raw_decode(text, index)
        documents.append(text[index:end])
        index = end
    return documents


@pytest.mark.parametrize("command", ["status", "env", "deadletter list", "admin limits show", "admin nodes list"])
def test_read_only_operating_commands_run(stack: Stack, command: str) -> None:
    assert f".venv/bin/ccn {command}" in snippet_containing(".venv/bin/ccn status")
    result = subprocess.run(
        [CCN, *command.split()], env=stack.env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
