"""What `ccn up` started, in <home>/run/state.json: read by status, env and down, and by a second
`ccn up` to refuse starting twins. Saved after every process starts, so a crash midway still
leaves `ccn down` a list of what to stop."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec

from ccn_cli.stack.errors import StackError
from ccn_cli.stack.processes import ProcessRecord, is_alive


class RunState(msgspec.Struct, kw_only=True):
    home: str
    started_at: str
    nats_url: str
    database_url: str
    processes: list[ProcessRecord] = msgspec.field(default_factory=list)
    # the `ccn up --foreground` watching the stack: `ccn down` asks it to stop everything, so
    # one process does the stopping and the attached terminal sees it happen
    attached: ProcessRecord | None = None

    def alive(self) -> list[ProcessRecord]:
        return [record for record in self.processes if is_alive(record)]


def state_path(home: Path) -> Path:
    return home / "run" / "state.json"


def load_state(home: Path) -> RunState | None:
    path = state_path(home)
    try:
        return msgspec.json.decode(path.read_bytes(), type=RunState)
    except FileNotFoundError:
        return None
    except msgspec.DecodeError as exc:
        raise StackError(f"{path} is unreadable ({exc}); stop leftovers with `ccn down` after removing it") from None


def save_state(home: Path, state: RunState) -> None:
    path = state_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(state)))
    os.replace(tmp, path)  # readers never see half a file


def clear_state(home: Path) -> None:
    state_path(home).unlink(missing_ok=True)


@contextlib.contextmanager
def stack_lock(home: Path) -> Iterator[None]:
    """One `ccn up` or `ccn down` at a time per home; held while starting or stopping, not while
    a foreground `ccn up` merely watches, so `ccn down` from another shell still works."""
    path = home / "run" / "ccn.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(f"another `ccn up` or `ccn down` is starting or stopping the stack in {home}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
