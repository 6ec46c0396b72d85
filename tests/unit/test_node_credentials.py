"""Stored node credentials: owner-only files, atomic writes, reuse, and no token in a repr."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec
import pytest

from ccn_cli.node.credentials import (
    CredentialsError,
    NodeCredentials,
    credentials_path,
    load_credentials,
    new_credentials,
    save_credentials,
)

REGISTERED = NodeCredentials(
    edge_url="http://127.0.0.1:8080",
    idempotency_key="k" * 32,
    node_public_id="node-1",
    api_token="api-secret-token",
    session_token="session-secret-token",
    consent_version="2026-11-01",
)


def test_a_saved_file_is_owner_only_and_reads_back_equal(tmp_path: Path) -> None:
    path = credentials_path(tmp_path, "laptop")
    save_credentials(path, REGISTERED)
    assert path == tmp_path / "node" / "laptop.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_credentials(path) == REGISTERED
    assert [p.name for p in path.parent.iterdir()] == ["laptop.json"]  # no temporary left behind


def test_saving_again_replaces_the_file(tmp_path: Path) -> None:
    path = credentials_path(tmp_path, "n")
    save_credentials(path, REGISTERED)
    renewed = msgspec.structs.replace(REGISTERED, session_token="another")
    save_credentials(path, renewed)
    assert load_credentials(path) == renewed


def test_no_file_means_no_credentials(tmp_path: Path) -> None:
    assert load_credentials(credentials_path(tmp_path, "none")) is None


def test_a_file_others_could_read_is_tightened(tmp_path: Path) -> None:
    path = credentials_path(tmp_path, "n")
    save_credentials(path, REGISTERED)
    os.chmod(path, 0o644)
    assert load_credentials(path) == REGISTERED
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"edge_url": 1}', b"x" * 70_000])
def test_a_file_that_is_not_credentials_is_an_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = credentials_path(tmp_path, "n")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(CredentialsError, match=str(path)):
        load_credentials(path)


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    save_credentials(target, REGISTERED)
    path = credentials_path(tmp_path, "n")
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    with pytest.raises(CredentialsError):
        load_credentials(path)


def test_new_credentials_carry_an_idempotency_key_and_no_node_yet() -> None:
    first, second = new_credentials("http://e"), new_credentials("http://e")
    assert len(first.idempotency_key) >= 16 and first.idempotency_key != second.idempotency_key
    assert not first.registered and REGISTERED.registered


def test_tokens_stay_out_of_repr() -> None:
    shown = repr(REGISTERED) + str(REGISTERED)
    assert "secret" not in shown and "node-1" in shown
