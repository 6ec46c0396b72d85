"""`ccn up --demo`: three reference nodes and a batch of extract_text jobs over the generated
corpus of grant-funding pages (ccn_jobs.demo_corpus, CC0), so a fresh stack shows work flowing;
then a second batch with every other job type at work on that corpus and on the generated PDF,
DOCX and text documents (ccn_jobs.demo_job_types), under a correlation id of its own, so that
each kind of result can be looked at; then a crawl: the local fixture web (ccn_cli.fixture_web,
served on loopback by a process of the stack) has its two grant sites allowed on the allow-list,
and a campaign crawls them through the fetch proxy, whose development loopback allowance names
exactly those sites (`ccn up --demo` sets it; nothing else does). Last, the merge scene
(ccn_cli.demo_merge): normalisation jobs whose results merge into the `grants` dataset, one
change held for review, approved through the API, and two versions published.

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
from typing import Any

import msgspec

from ccn_cli.demo_merge import MergeScene, run_merge_scene
from ccn_cli.fixture_web import dev_loopback_setting
from ccn_cli.jobs_cmd import edge_client
from ccn_cli.stack.lifecycle import Report, logs_dir
from ccn_cli.stack.processes import ProcessRecord, open_log, record_process
from ccn_cli.stack.supervisor import service_env
from ccn_core.consent import consent_catalogue, current_consent_version
from ccn_core.domain_csv import allow_list_csv
from ccn_core.settings import Settings
from ccn_jobs.demo_corpus import as_jobs_jsonl, grant_pages
from ccn_jobs.demo_job_types import as_jsonl, job_type_examples
from ccn_jobs.registry import JOB_TYPES, result_to_builtins, run_job
from ccn_proto.canonical import result_checksum
from ccn_proto.compute_api import BatchSubmitted
from ccn_proto.crawl import CampaignSettings, CampaignView
from ccn_proto.scheduler import CreateJobReply, JobOffer

DEMO_NODES = 3
DEMO_CAMPAIGN = "demo-grants"
DEMO_SITES = ("grants.localhost", "foundation.localhost")
# what the demo campaign extracts from each page of the grant site (ccn_jobs.extraction_rules)
DEMO_FIELDS: list[dict[str, Any]] = [
    {"name": "title", "rules": [{"css": "h1.title"}, {"css": "title"}]},
    {"name": "funder", "rules": [{"css": "p.funder"}]},
    {"name": "maximum_grants", "many": True, "rules": [{"css": "td.amount", "convert": "decimal"}]},
    {"name": "closing_dates", "many": True, "rules": [{"css": "td.deadline", "convert": "date"}]},
]
DEMO_PAGES = 60
NODE_CONCURRENCY = 2


class Demo(msgspec.Struct, frozen=True):
    correlation_id: str
    batch_id: str
    jobs: int
    first_job_id: str
    nodes: list[ProcessRecord]
    types_correlation_id: str = ""
    type_examples: list[tuple[str, str]] = []  # (job type, the id of its first job in the second batch)
    campaign: str | None = None
    forged_job_id: str | None = None  # the job a forged result was sent for; consensus outvotes it
    merge_scene: MergeScene | None = None


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
    return _submit(settings, correlation_id, batch_id, "ccn_jobs.demo_corpus", as_jobs_jsonl(grant_pages(pages)))


def submit_job_types(settings: Settings, correlation_id: str, batch_id: str) -> tuple[BatchSubmitted, list[str]]:
    """The second batch, and the job type of each of its jobs, in order."""
    examples = job_type_examples()
    submitted = _submit(settings, correlation_id, batch_id, "ccn_jobs.demo_job_types", as_jsonl(examples))
    return submitted, [name for name, _ in examples]


def _submit(settings: Settings, correlation_id: str, batch_id: str, source: str, lines: bytes) -> BatchSubmitted:
    edge = edge_client(settings)
    edge.check_reachable()
    return edge.post(
        f"/jobs/batch?batch_id={batch_id}&dataset_source={source}&dataset_version=seed-0",
        lines,
        BatchSubmitted,
        headers={"X-Correlation-ID": correlation_id, "Content-Type": "application/x-ndjson"},
    )


# a job type that asks for consensus (ADR 0024): the forged result is compared with the honest
# nodes' results, not merely checked against the job type's rules
FORGED_JOB_TYPE = "classify_document"


def send_a_forged_result(settings: Settings, correlation_id: str) -> tuple[str, str]:
    """Before the honest nodes start, a node of the demo's own registers, takes a job that asks
    for consensus and sends a forged result: well-formed, its checksum true, its values wrong
    (the classifier rules it matched are dropped). Returns (job id, forger's node id).
    Nothing else offers it work: it takes this one job and leaves."""
    edge = edge_client(settings)
    payload = msgspec.to_builtins(JOB_TYPES[FORGED_JOB_TYPE].sample_payloads[0])
    created = msgspec.json.decode(
        edge.call(
            "POST",
            "/jobs",
            msgspec.json.encode({"job_type": FORGED_JOB_TYPE, "payload": payload}),
            {"Content-Type": "application/json", "X-Correlation-ID": correlation_id},
        ),
        type=CreateJobReply,
    )
    node = msgspec.json.decode(
        edge.call(
            "POST",
            "/compute/register-node",
            msgspec.json.encode({"consent_flag": True, "user_agent": "ccn-demo-forger/1"}),
            {"Content-Type": "application/json", "Idempotency-Key": f"demo-forger-{correlation_id}"},
        ),
        type=dict[str, Any],
    )
    version = current_consent_version()
    edge.call(
        "POST",
        "/compute/consent",
        msgspec.json.encode({"consent_version": version, "consent_hash": consent_catalogue()[version]}),
        {"Content-Type": "application/json", "Authorization": f"Bearer {node['api_token']}"},
    )
    session = {"Authorization": f"Bearer {node['session_token']}"}
    offer = msgspec.json.decode(
        edge.call("GET", f"/compute/job?job_types={FORGED_JOB_TYPE}&wait_s=10", None, session), type=JobOffer
    )
    honest = result_to_builtins(run_job(FORGED_JOB_TYPE, offer.payload))
    forged = {**honest, "matched_rules": []}  # passes every rule; only the honest nodes can tell
    body = {"job_id": offer.job_id, "result": forged, "checksum": result_checksum(forged)}
    edge.call(
        "POST",
        "/compute/job/result",
        msgspec.json.encode(body),
        {**session, "Content-Type": "application/json", "X-Correlation-ID": offer.correlation_id},
    )
    return created.job_id, str(node["node_public_id"])


def demo_settings(settings: Settings) -> Settings:
    """The stack's settings for a demo: the fetch proxy may reach the fixture web's sites on
    loopback (and nothing else on loopback), unless an allowance was set by hand."""
    if settings.fetch_dev_loopback:
        return settings
    return msgspec.structs.replace(settings, fetch_dev_loopback=dev_loopback_setting(settings.demo_web_port))


def start_fixture_web(settings: Settings) -> ProcessRecord:
    log = logs_dir(settings.home) / "fixture-web.log"
    with open_log(log) as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "ccn_cli.fixture_web", "--port", str(settings.demo_web_port)],
            env=service_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://grants.localhost:{settings.demo_web_port}/"
    return record_process("fixture-web", "demo", process.pid, settings.demo_web_port, url, log)


def allow_demo_sites(settings: Settings) -> None:
    csv = allow_list_csv(
        list(DEMO_SITES),
        per_minute=600,
        per_hour=36000,
        concurrent=8,
        notes="the local fixture web (ccn up --demo)",
        reviewer="demo",
    )
    edge_client(settings).call("POST", "/admin/domains/import", csv, {"Content-Type": "text/csv"})


def start_demo_campaign(settings: Settings) -> CampaignView:
    campaign = CampaignSettings(
        name="the local grant sites",
        seeds=[f"http://{site}:{settings.demo_web_port}/" for site in DEMO_SITES],
        fields=DEMO_FIELDS,
        max_depth=3,
        max_pages=100,
        first_interval_s=600.0,
        recrawl_min_s=300.0,
        recrawl_max_s=86400.0,
    )
    body = msgspec.json.encode(campaign)
    answer = edge_client(settings).call(
        "PUT", f"/admin/crawl/campaigns/{DEMO_CAMPAIGN}", body, {"Content-Type": "application/json"}
    )
    return msgspec.json.decode(answer, type=CampaignView)


def start_demo(settings: Settings, report: Report, *, on_nodes: Callable[[list[ProcessRecord]], None]) -> Demo:
    """`on_nodes` records the node processes in the run state as soon as they exist, so a
    failure after this point still leaves them for `ccn down` to stop."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    correlation_id, batch_id = f"demo-{stamp}", f"demo-grant-pages-{stamp}"
    forged_job_id, forger = send_a_forged_result(settings, f"demo-forgery-{stamp}")
    report(f"demo: node {forger} sent a forged result for {FORGED_JOB_TYPE} job {forged_job_id}")
    nodes = start_nodes(settings)
    on_nodes(nodes)
    report(f"demo: {len(nodes)} reference nodes started (logs {logs_dir(settings.home)}/node-demo-*.log)")
    submitted = submit_corpus(settings, correlation_id, batch_id)
    report(f"demo: {submitted.jobs} extract_text jobs submitted as batch {batch_id}")
    types_correlation_id, types_batch_id = f"demo-types-{stamp}", f"demo-job-types-{stamp}"
    by_type, job_types = submit_job_types(settings, types_correlation_id, types_batch_id)
    first_of_each: dict[str, str] = {}
    for job_type, job_id in zip(job_types, by_type.job_ids, strict=True):
        first_of_each.setdefault(job_type, job_id)
    report(f"demo: {by_type.jobs} jobs of {len(first_of_each)} job types submitted as batch {types_batch_id}")
    allow_demo_sites(settings)
    campaign = start_demo_campaign(settings)
    report(f"demo: {', '.join(DEMO_SITES)} allowed; campaign {DEMO_CAMPAIGN} started with {campaign.pages} seeds")
    scene = run_merge_scene(settings, f"demo-merge-{stamp}", f"demo-merge-{stamp}", report)
    return Demo(
        correlation_id=correlation_id,
        batch_id=batch_id,
        jobs=submitted.jobs,
        first_job_id=submitted.job_ids[0],
        nodes=nodes,
        types_correlation_id=types_correlation_id,
        type_examples=list(first_of_each.items()),
        campaign=DEMO_CAMPAIGN,
        forged_job_id=forged_job_id,
        merge_scene=scene,
    )


def print_demo(demo: Demo, report: Report) -> None:
    report("")
    report("Watch the demo batch from another shell:")
    report(f"  ccn log --correlation-id {demo.correlation_id}    every step of every job in the batch")
    report(f"  ccn jobs tail {demo.first_job_id}    one job's life as it happens")
    report(f"  ccn jobs result {demo.first_job_id}    its extracted text, title and language")
    if demo.type_examples:
        report("")
        report("Every job type at work on the demo corpus:")
        report(f"  ccn log --correlation-id {demo.types_correlation_id}    every step of every job in that batch")
        report("One result of each type:")
        for job_type, job_id in demo.type_examples:
            report(f"  ccn jobs result {job_id}    {job_type}")
    if demo.forged_job_id:
        report("")
        report("A forged result, outvoted by the honest nodes' replicas (consensus):")
        report(f"  ccn admin consensus show {demo.forged_job_id}    the group: its results, who agreed, its answer")
        report(f"  ccn jobs result {demo.forged_job_id}    the answer the honest nodes agreed on")
    if demo.campaign:
        report("")
        report("The local grant sites, crawled through the fetch proxy:")
        report(f"  ccn crawl status {demo.campaign}    pages found, crawled, changed, in flight")
        report("  ccn crawl stats    per domain: pages, failures by cause, refusals, latency, yield, breaker")
        report("  ccn domains list    the allow-list")
    if demo.merge_scene:
        first, second = demo.merge_scene.versions
        report("")
        report("The grants dataset, merged from the normalisation jobs' results:")
        report("  ccn datasets versions    every published version")
        report(f"  ccn datasets diff {first} {second}    what the approved review changed")
        report(f"  ccn datasets explain {demo.merge_scene.record_id} name    why the name is what it is")
        report("  ccn admin review list    changes still waiting for a reviewer")
