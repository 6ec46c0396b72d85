"""A node's worker processes die with it, even when the node is killed with SIGKILL and runs no
cleanup of its own."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil

NODE_WITH_A_BUSY_WORKER = """
import os, time
from ccn_cli.node.runner import make_executor

executor = make_executor("process")
print(executor.submit(os.getpid).result(), flush=True)
executor.submit(time.sleep, 120)
time.sleep(120)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_worker_dies_when_its_node_is_killed() -> None:
    node = subprocess.Popen([sys.executable, "-c", NODE_WITH_A_BUSY_WORKER], stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        worker = int(node.stdout.readline())
        assert psutil.Process(worker).ppid() == node.pid
        assert not gone(worker)
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not gone(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(worker), f"worker {worker} outlived its node"
    finally:
        node.kill()
        node.wait(timeout=10)
