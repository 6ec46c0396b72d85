"""`ccn up --demo`: three reference nodes and a batch of extract_text jobs over the generated
corpus of grant-funding pages (ccn_jobs.demo_corpus, CC0), so a fresh stack shows work flowing.

The nodes are processes of the stack (stopped first by `ccn down`, so they hand their jobs back
and say bye); the batch is one POST /jobs/batch under one correlation id, which is how its whole
life is pulled from the orchestrator log afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from ccn_cli.jobs_cmd import edge_client
from ccn_cli.stack.lifecycle import Report, logs_dir
from ccn_cli.stack.processes import ProcessRecord, open_log, record_process
from ccn_cli.stack.supervisor import service_env
from ccn_core.settings import Settings
from ccn_jobs.demo_corpus import as_jobs_jsonl, grant_pages
from ccn_proto.compute_api import BatchSubmitted

DEMO_NODES = 3
DEMO_PAGES = 60
NODE_CONCURRENCY = 2


class Demo(msgspec.Struct, frozen=True):
    correlation_id: str
    batch_id: str
    jobs: int
    first_job_id: str
    nodes: list[ProcessRecord]


def start_nodes(settings: Settings, count: int = DEMO_NODES) -> list[ProcessRecord]:
    ccn = str(Path(sys.executable).parent / "ccn")
    records = []
    for index in range(1, count + 1):
        name = f"node-demo-{index}"
        log = logs_dir(settings.home) / f"{name}.log"
        with open_log(log) as handle:
            process = subprocess.Popen(
                [ccn, "node", "--name", f"demo-{index}", "--concurrency", str(NODE_CONCURRENCY)],
                env=service_env(settings),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        records.append(record_process(name, "node", process.pid, 0, "", log))
    return records


def submit_corpus(settings: Settings, correlation_id: str, batch_id: str, pages: int = DEMO_PAGES) -> BatchSubmitted:
    edge = edge_client(settings)
    edge.check_reachable()
    return edge.post(
        f"/jobs/batch?batch_id={batch_id}&dataset_source=ccn_jobs.demo_corpus&dataset_version=seed-0",
        as_jobs_jsonl(grant_pages(pages)),
        BatchSubmitted,
        headers={"X-Correlation-ID": correlation_id, "Content-Type": "application/x-ndjson"},
    )


def start_demo(settings: Settings, report: Report, *, on_nodes: Callable[[list[ProcessRecord]], None]) -> Demo:
    """`on_nodes` records the node processes in the run state as soon as they exist, so a
    failure after this point still leaves them for `ccn down` to stop."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    correlation_id, batch_id = f"demo-{stamp}", f"demo-grant-pages-{stamp}"
    nodes = start_nodes(settings)
    on_nodes(nodes)
    report(f"demo: {len(nodes)} reference nodes started (logs {logs_dir(settings.home)}/node-demo-*.log)")
    submitted = submit_corpus(settings, correlation_id, batch_id)
    report(f"demo: {submitted.jobs} extract_text jobs submitted as batch {batch_id}")
    return Demo(
        correlation_id=correlation_id,
        batch_id=batch_id,
        jobs=submitted.jobs,
        first_job_id=submitted.job_ids[0],
        nodes=nodes,
    )


def print_demo(demo: Demo, report: Report) -> None:
    report("")
    report("Watch the demo batch from another shell:")
    report(f"  ccn log --correlation-id {demo.correlation_id}    every step of every job in the batch")
    report(f"  ccn jobs tail {demo.first_job_id}    one job's life as it happens")
    report(f"  ccn jobs result {demo.first_job_id}    its extracted text, title and language")
