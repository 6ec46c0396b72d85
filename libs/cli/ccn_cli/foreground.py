"""`ccn up --foreground`: watch the stack until Ctrl-C, SIGTERM or SIGHUP, then stop it in order.
Also ends when NATS or PostgreSQL dies (nothing works without them) or when `ccn down` from
another shell asks it to stop."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from ccn_cli.stack.lifecycle import Report, stop_stack
from ccn_cli.stack.processes import is_alive, log_tail
from ccn_cli.stack.run_state import RunState


def stay_attached(state: RunState, report: Report) -> int:
    stopping = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        # only sets a flag: a second Ctrl-C must not interrupt an orderly stop halfway
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    report("attached: Ctrl-C stops the stack")
    code = 0
    gone: set[int] = set()
    while not stopping.wait(0.5):
        for record in state.processes:
            if record.pid in gone or is_alive(record):
                continue
            gone.add(record.pid)
            report(f"{record.name} (pid {record.pid}) exited; the end of its log {record.log}:\n{log_tail(record.log)}")
            if record.kind in ("nats", "postgres"):
                report(f"stopping the stack: nothing works without {record.name}")
                code = 1
                stopping.set()
    report("stopping the stack")
    stop_stack(state, report)
    report("stopped")
    return code
