"""Processes the stack started, identified by pid *and* start time so a recycled pid is never
mistaken for ours (and never signalled)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import BinaryIO, Literal

import msgspec
import psutil

# demo: a process the demo needs beside the stack (the fixture web)
ProcessKind = Literal["nats", "postgres", "service", "node", "ccn", "demo"]


class ProcessRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: ProcessKind
    pid: int
    # psutil's create_time: with the pid it names one process for the life of the machine
    create_time: float
    port: int
    # where it is reached: the NATS URL, the database DSN, a service's base URL
    url: str
    log: str


def record_process(name: str, kind: ProcessKind, pid: int, port: int, url: str, log: Path) -> ProcessRecord:
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        created = 0.0
    return ProcessRecord(name=name, kind=kind, pid=pid, create_time=created, port=port, url=url, log=str(log))


def live_process(record: ProcessRecord) -> psutil.Process | None:
    """The process if it is still the one we started and has not exited (a zombie has)."""
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc


def is_alive(record: ProcessRecord) -> bool:
    return live_process(record) is not None


def terminate(records: list[ProcessRecord], grace_s: float, *, whole_group: bool = False) -> list[ProcessRecord]:
    """SIGTERM every process, wait up to grace_s for all of them together, then SIGKILL the rest.
    Returns the ones that had to be killed. `whole_group` signals the process group a
    session leader heads, so children it forked go too."""
    procs = {record.pid: (record, proc) for record in records if (proc := live_process(record)) is not None}
    for _, proc in procs.values():
        _signal(proc, signal.SIGTERM, group=whole_group)
    alive = wait_all_gone([proc for _, proc in procs.values()], grace_s)
    for proc in alive:
        _signal(proc, signal.SIGKILL, group=whole_group)
    wait_all_gone(alive, 5.0)
    return [procs[proc.pid][0] for proc in alive]


def wait_gone(proc: psutil.Process, timeout_s: float) -> bool:
    """Wait for the process to exit; True if it did."""
    return not wait_all_gone([proc], timeout_s)


def wait_all_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process has exited; returns those still running at the deadline.
    An exited process counts as gone even while a zombie: whoever reaps orphans here (a
    container's pid 1) may take a second or more, and the stop is complete before that."""
    deadline = time.monotonic() + timeout_s
    alive = list(procs)
    while True:
        alive = [proc for proc in alive if not _exited(proc)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _exited(proc: psutil.Process) -> bool:
    try:
        if proc.status() != psutil.STATUS_ZOMBIE:
            return False
    except psutil.NoSuchProcess:
        return True
    # a zombie: reap it if it is our child (psutil waits without blocking on timeout=0)
    with contextlib.suppress(psutil.Error, ChildProcessError):
        proc.wait(timeout=0)
    return True


def _signal(proc: psutil.Process, sig: signal.Signals, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        if group and os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)


def open_log(path: Path) -> BinaryIO:
    """Append, so a restart keeps the previous run's lines for whoever is debugging it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def log_tail(path: Path | str, lines: int = 30) -> str:
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in tail) or f"(log {path} is empty)"
