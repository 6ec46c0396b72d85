"""A node's worker processes die with it, even when the node is killed with SIGKILL and runs no
cleanup of its own; so does the child a worker forks for a budgeted job."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

NODE_WITH_A_BUSY_WORKER = """
import os, time
from ccn_cli.node.runner import make_executor

executor = make_executor("process")
print(executor.submit(os.getpid).result(), flush=True)
executor.submit(time.sleep, 120)
time.sleep(120)
"""


NODE_WITH_A_BUSY_BUDGETED_JOB = """
import functools, os, time
from ccn_cli.node.budgets import allowance_for
from ccn_cli.node.runner import make_executor
from ccn_cli.node.worker import run_in_child
from ccn_proto.budgets import JobBudget
from tests.unit.test_node_job_budgets import hog

executor = make_executor("process")
print(executor.submit(os.getpid).result(), flush=True)
work = functools.partial(run_in_child, hog, allowance_for(JobBudget(max_memory_mb=64), None, 120.0))
executor.submit(work, "sleep", {"do": "sleep", "s": 120})
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


def test_a_budgeted_jobs_child_dies_with_its_worker_when_the_node_is_killed() -> None:
    node = subprocess.Popen(
        [sys.executable, "-c", NODE_WITH_A_BUSY_BUDGETED_JOB], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert node.stdout is not None
        worker = int(node.stdout.readline())
        deadline = time.monotonic() + 30  # the worker loads the job libraries, then forks
        children: list[psutil.Process] = []
        while not children and time.monotonic() < deadline:
            children = psutil.Process(worker).children()
            time.sleep(0.05)
        assert len(children) == 1, "the worker forked no child for the budgeted job"
        child = children[0].pid
        node.send_signal(signal.SIGKILL)
        node.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not (gone(worker) and gone(child)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(worker), f"worker {worker} outlived its node"
        assert gone(child), f"the budgeted job's child {child} outlived its worker"
    finally:
        node.kill()
        node.wait(timeout=10)
