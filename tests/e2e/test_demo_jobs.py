"""`ccn up --demo` (what `make run` does): three reference nodes work through a batch of
extract_text jobs, and the batch's whole life is in the orchestrator log under its
correlation id, each job's steps in order; a second batch runs every other job type, and the
result of each can be read."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from ccn_cli.node.receipts_store import stored_receipts
from ccn_core.receipts import MalformedReceipt, decode_key_set, verify_receipt
from ccn_proto.receipts import Receipt
from tests.e2e.conftest import Stack

STEPS = ["job_created", "job_claimed", "job_result_submitted", "job_completed"]


def stored_receipts_of(home: Path) -> list[tuple[Path, Receipt | MalformedReceipt]]:
    """Every receipt the stack's nodes keep (<home>/node/<name>-receipts/)."""
    return [found for directory in sorted((home / "node").glob("*-receipts")) for found in stored_receipts(directory)]


def printed(stack: Stack, pattern: str) -> str:
    for line in stack.up_output:
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    # the services' and nodes' last words say why a step of the demo did not happen
    logs = "\n".join(f"== {log.name}\n{log.read_text()[-2000:]}" for log in sorted((stack.home / "logs").glob("*.log")))
    raise AssertionError(
        f"`ccn up --demo` printed nothing like {pattern!r}:\n" + "\n".join(stack.up_output) + "\n" + logs
    )


async def test_the_demo_batch_flows_through_three_nodes_and_its_log_tells_each_jobs_life(stack: Stack) -> None:
    correlation = printed(stack, r"ccn log --correlation-id (\S+)")
    jobs = int(printed(stack, r"demo: (\d+) extract_text jobs submitted"))
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=15)) as http:

        async def log() -> list[dict[str, Any]]:
            entries: list[dict[str, Any]] = []
            cursor = ""
            while True:
                url = f"{stack.analytics}/admin/orchestrator-log?correlation_id={correlation}&limit=1000{cursor}"
                async with http.get(url) as response:
                    assert response.status == 200, await response.text()
                    page = await response.json()
                entries += page["entries"]
                if not page["has_more"]:
                    return entries
                cursor = f"&cursor={page['next_cursor']}"

        async with asyncio.timeout(120):
            while True:
                entries = await log()
                if sum(entry["event"] == "job_completed" for entry in entries) >= jobs:
                    break
                await asyncio.sleep(0.5)

        steps: dict[str, list[str]] = defaultdict(list)
        nodes = set()
        for entry in entries:
            steps[entry["job_id"]].append(entry["event"])
            if entry["event"] == "job_claimed":
                nodes.add(entry["node_id"])
        assert len(steps) == jobs
        # retries may add steps, but every job ends completed, once, after being claimed
        assert all([s for s in job_steps if s in STEPS][-4:] == STEPS for job_steps in steps.values()), steps
        assert all(job_steps.count("job_completed") == 1 for job_steps in steps.values())
        assert len(nodes) == 3, f"the demo's three nodes should share the work, got {nodes}"

        job_id = next(iter(steps))
        async with http.get(f"{stack.edge}/jobs/{job_id}/result") as response:
            result = await response.json()
        assert response.status == 200, result
        assert result["result"]["text"] and result["result"]["language"] in ("en", "de", "fr", "es")

        # each result was acknowledged as validating: its node fetched the receipt issued with the
        # verdict afterwards, and keeps it; every one verifies against the published keys
        async with http.get(f"{stack.edge}/receipts/keys") as response:
            keys = decode_key_set(await response.read())
        async with asyncio.timeout(60):
            while True:
                kept = [found for _, found in stored_receipts_of(stack.home)]
                if {r.job_id for r in kept if isinstance(r, Receipt)} >= set(steps):
                    break
                await asyncio.sleep(0.5)
        demo_receipts = [r for r in kept if isinstance(r, Receipt) and r.job_id in steps]
        assert {r.verdict for r in demo_receipts} == {"validated"}
        for receipt in demo_receipts:
            verify_receipt(receipt, keys)

    # the job read model is kept by the scheduler-projector process (ADR 0011)
    connection = await asyncpg.connect(stack.database_url)
    try:
        async with asyncio.timeout(60):
            while True:
                completed = await connection.fetchval(
                    "SELECT count(*) FROM community_jobs WHERE job_id = ANY($1::uuid[]) AND status = 'completed'",
                    list(steps),
                )
                if completed == jobs:
                    break
                await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def test_the_second_demo_batch_runs_every_job_type_to_a_result(stack: Stack) -> None:
    correlation = printed(stack, r"ccn log --correlation-id (demo-types-\S+)")
    jobs = int(printed(stack, r"demo: (\d+) jobs of \d+ job types submitted"))
    examples = [
        (match.group(2), match.group(1))
        for line in stack.up_output
        if (match := re.search(r"ccn jobs result (\S+)\s+(\w+)$", line.strip()))
    ]
    assert {job_type for job_type, _ in examples} >= {"parse_pdf", "classify_document", "extract_entities"}
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=15)) as http:
        async with asyncio.timeout(120):
            while True:
                url = f"{stack.analytics}/admin/orchestrator-log?correlation_id={correlation}&limit=1000"
                async with http.get(url) as response:
                    assert response.status == 200, await response.text()
                    entries = (await response.json())["entries"]
                assert not [e for e in entries if e["event"] == "job_failed"], entries
                # the batch's jobs and the replicas their consensus asked for (ADR 0024), each
                # ended: completed, or cancelled once its group was finalised without it
                created = {e["job_id"] for e in entries if e["event"] == "job_created"}
                ended = {e["job_id"] for e in entries if e["event"] in ("job_completed", "job_cancelled")}
                if len(created) >= jobs and created <= ended:
                    break
                await asyncio.sleep(0.5)
        for job_type, job_id in examples:
            async with http.get(f"{stack.edge}/jobs/{job_id}/result") as response:
                body = await response.json()
            assert response.status == 200, (job_type, body)
            assert any(key.endswith("version") for key in body["result"]), (job_type, body)


async def test_the_demos_forged_result_is_outvoted_by_the_honest_nodes(stack: Stack) -> None:
    forger = printed(stack, r"demo: node (\S+) sent a forged result")
    job_id = printed(stack, r"sent a forged result for classify_document job (\S+)")
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=15)) as http:
        async with asyncio.timeout(120):
            while True:
                async with http.get(f"{stack.edge}/admin/consensus/{job_id}") as response:
                    group = await response.json()
                if response.status == 200 and group["status"] == "finalised":
                    break
                await asyncio.sleep(0.5)
        outvoted = [members for members in group["classes"] if forger in members["nodes"]]
        assert [members["nodes"] for members in outvoted] == [[forger]], group
        # the forged result was the first job's own: the answer is an honest replica's
        assert group["results"] >= 3 and group["answer"] != job_id, group
        async with http.get(f"{stack.edge}/jobs/{job_id}/result") as response:
            answer = await response.json()
        assert response.status == 200, answer
        assert answer["result"]["matched_rules"], "the forged result (no matched rules) is not the answer"
