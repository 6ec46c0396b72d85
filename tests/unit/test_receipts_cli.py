"""`ccn receipts verify|keys|rotate`: typed exit codes for valid, invalid, malformed input and
unavailable keys, against a key ring in a temporary CCN_HOME; and once end to end as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from ccn_cli.main import main
from ccn_cli.receipts_cmd import INVALID, MALFORMED, UNAVAILABLE, VALID
from ccn_core.receipts import KeyRing, ensure_key_ring, rotate_key_ring
from ccn_proto.receipts import MAX_RECEIPT_BYTES, Receipt


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CCN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CCN_RECEIPT_KEYS_DIR", raising=False)
    return tmp_path / "home"


def _ring(home: Path) -> KeyRing:
    return ensure_key_ring(home / "receipt-keys", datetime.now(UTC) - timedelta(hours=1))


def _receipt(ring: KeyRing, **overrides: object) -> Receipt:
    receipt = ring.issue_receipt(
        job_id="job-1",
        attempt=1,
        node_id="node-1",
        result_checksum="c" * 64,
        verdict="validated",
        now=datetime.now(UTC),
    )
    return msgspec.structs.replace(receipt, **overrides)


def _write(path: Path, data: bytes | Receipt) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else msgspec.json.encode(data))
    return path


def test_a_valid_receipt_exits_0_with_the_stacks_own_keys(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = _write(tmp_path / "r.json", _receipt(_ring(home)))
    assert main(["receipts", "verify", str(receipt)]) == VALID
    out = capsys.readouterr().out
    assert "VALID" in out and "job job-1" in out and "not signed by the node" in out


def test_a_tampered_receipt_exits_1_with_the_reason(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = _write(tmp_path / "r.json", _receipt(_ring(home), verdict="finalised"))
    assert main(["receipts", "verify", str(receipt)]) == INVALID
    assert "INVALID: the signature does not match the receipt" in capsys.readouterr().err


def test_an_unknown_key_exits_1(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    receipt = _write(tmp_path / "r.json", _receipt(_ring(home), key_id="rk-elsewhere"))
    assert main(["receipts", "verify", str(receipt)]) == INVALID
    assert "no published key has id 'rk-elsewhere'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[1, 2, 3]",
        b'{"job_id": "x"}',
        b"\x00\x01\x02",
        b" " * (MAX_RECEIPT_BYTES + 1),
        b"[" * 100_000,
    ],
    ids=["broken-json", "an-array", "fields-missing", "binary", "huge", "deep"],
)
def test_malformed_input_exits_2(
    home: Path, tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    _ring(home)
    assert main(["receipts", "verify", str(_write(tmp_path / "r.json", content))]) == MALFORMED
    assert "ccn: error:" in capsys.readouterr().err


def test_control_characters_in_a_field_exit_2_naming_it(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = msgspec.to_builtins(_receipt(_ring(home)))
    body["node_id"] = "node-1\x1b[31m"
    assert main(["receipts", "verify", str(_write(tmp_path / "r.json", msgspec.json.encode(body)))]) == MALFORMED
    err = capsys.readouterr().err
    assert "malformed receipt" in err and "node_id" in err and "\x1b" not in err


def test_a_missing_file_a_directory_and_a_fifo_exit_2(home: Path, tmp_path: Path) -> None:
    _ring(home)
    assert main(["receipts", "verify", str(tmp_path / "absent.json")]) == MALFORMED
    assert main(["receipts", "verify", str(tmp_path)]) == MALFORMED
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["receipts", "verify", str(fifo)]) == MALFORMED


def test_keys_from_a_file_and_malformed_key_files(home: Path, tmp_path: Path) -> None:
    receipt = _write(tmp_path / "r.json", _receipt(_ring(home)))
    keys = tmp_path / "keys.json"
    assert main(["receipts", "keys", "--out", str(keys)]) == 0
    assert main(["receipts", "verify", str(receipt), "--keys", str(keys)]) == VALID
    _write(keys, b'{"keys": [{"key_id": "x"}]}')
    assert main(["receipts", "verify", str(receipt), "--keys", str(keys)]) == MALFORMED
    assert main(["receipts", "verify", str(receipt), "--keys", str(tmp_path / "none.json")]) == MALFORMED


def test_no_keys_to_be_had_exits_3(home: Path, tmp_path: Path) -> None:
    other = ensure_key_ring(tmp_path / "elsewhere", datetime.now(UTC) - timedelta(hours=1))
    receipt = _write(tmp_path / "r.json", _receipt(other))
    assert main(["receipts", "verify", str(receipt)]) == UNAVAILABLE  # this home has no ring
    assert main(["receipts", "verify", str(receipt), "--edge", "http://127.0.0.1:9"]) == UNAVAILABLE
    assert main(["receipts", "verify", str(receipt), "--edge", "file:///etc/passwd"]) == UNAVAILABLE


def test_rotation_keeps_earlier_receipts_valid(home: Path, tmp_path: Path) -> None:
    ring = _ring(home)
    before = _write(tmp_path / "before.json", _receipt(ring))
    assert main(["receipts", "rotate"]) == 0
    assert main(["receipts", "verify", str(before)]) == VALID
    rotated = rotate_key_ring(home / "receipt-keys", datetime.now(UTC))
    after = _write(tmp_path / "after.json", _receipt(rotated))
    assert main(["receipts", "verify", str(after)]) == VALID
    assert main(["receipts", "verify", str(before)]) == VALID


def test_the_command_end_to_end_as_a_process(home: Path, tmp_path: Path) -> None:
    receipt = _write(tmp_path / "r.json", _receipt(_ring(home)))
    env = {**os.environ, "CCN_HOME": str(home)}
    command = [sys.executable, "-m", "ccn_cli.main", "receipts", "verify", str(receipt)]
    valid = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert valid.returncode == VALID, valid.stderr
    assert "VALID" in valid.stdout
    tampered = msgspec.json.encode(msgspec.json.decode(receipt.read_bytes()) | {"attempt": 9})
    receipt.write_bytes(tampered)
    invalid = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert invalid.returncode == INVALID
    assert "INVALID" in invalid.stderr
