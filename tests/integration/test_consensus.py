"""Consensus between replicas, end to end against NATS (ADR 0024, ADR 0026): the real scheduler
and validation service, nodes answering through the scheduler's commands.

A classify_document job asks for consensus: its first result is judged, then replicas are
issued to other nodes (never the same node, never a node behind the same address), and the
job completes once a quorum agrees. New nodes are untrusted, so three agreeing results are
needed (quorum 2, plus one while no trusted node is among them). A forged result (valid
checksum, wrong values) is outvoted and its node recorded as disagreeing."""

# ruff: noqa: F811 - `edge` is test_edge_jobs' fixture, imported to be requested by name
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from ccn_core.commands import CommandClient
from ccn_core.errors import NotFound
from ccn_core.eventstore import EventStore
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import CONSENSUS
from ccn_jobs.registry import JOB_TYPES
from ccn_proto.consensus import ConsensusEvent, ConsensusGroupView, GetConsensus, NodeDisagreed, consensus_steps
from ccn_proto.envelope import Envelope
from ccn_proto.scheduler import ClaimJobs, ClaimJobsReply, CreateJob, CreateJobReply, JobOffer
from ccn_scheduler.app import start_scheduler
from tests.conftest import make_settings
from tests.integration.test_edge_jobs import Edge, edge  # noqa: F401 - the fixture
from tests.integration.test_scheduler import FAST, Scheduler, answering, eventually, job_events, scheduler_client
from tests.support.result_samples import changed, good_results
from tests.support.validation import validation_service

JOB_TYPE = "classify_document"
PAYLOAD: dict[str, Any] = msgspec.to_builtins(JOB_TYPES[JOB_TYPE].sample_payloads[0])
GOOD = good_results(JOB_TYPE)[0]
FORGED = changed(GOOD, "matched_rules", [])


@contextlib.asynccontextmanager
async def stack(settings: Settings) -> AsyncIterator[Scheduler]:
    async with open_runtime("scheduler", settings) as runtime:
        await start_scheduler(runtime, health=False, options=FAST)  # the registered job types
        await answering(settings.effective_nats_url)
        async with validation_service(settings), scheduler_client(settings.effective_nats_url) as api:
            yield api


async def offer_for(api: Scheduler, node: str, ip_hash: str | None = None, wait_s: float = 3.0) -> JobOffer | None:
    ask = ClaimJobs(node_id=node, job_types=[JOB_TYPE], concurrency=4, slots=1, wait_s=wait_s, ip_hash=ip_hash)
    reply = await api.call(ask, ClaimJobsReply)
    return reply.offers[0] if reply.offers else None


async def answer(api: Scheduler, node: str, result: dict[str, Any], ip_hash: str | None = None) -> JobOffer:
    offer = await offer_for(api, node, ip_hash)
    assert offer is not None, f"{node} was offered nothing"
    assert offer.payload == PAYLOAD
    await api.submit(node, offer.job_id, result)
    return offer


async def group(api: Scheduler, group_id: str) -> ConsensusGroupView:
    client = CommandClient(api.nc, timeout=10)
    return await client.call(
        "validation", "get_consensus", GetConsensus(group_id=group_id), ConsensusGroupView, correlation_id="t"
    )


async def created(api: Scheduler) -> str:
    return (await api.call(CreateJob(job_type=JOB_TYPE, payload=PAYLOAD), CreateJobReply)).job_id


@pytest.fixture
def settings(isolated_nats: str, fresh_database: str, tmp_path: Path) -> Settings:
    return make_settings(isolated_nats, fresh_database, tmp_path)


async def test_a_job_completes_once_three_independent_nodes_agree(settings: Settings) -> None:
    async with stack(settings) as api:
        first = await created(api)
        assert (await answer(api, "n1", GOOD, "addr-1")).job_id == first
        assert (await api.job(first)).status == "validating"  # its group wants more results
        # the replica goes to another node at another address, never back to n1 or its address
        assert await offer_for(api, "n1", "addr-1", wait_s=1.0) is None
        assert await offer_for(api, "n1-twin", "addr-1", wait_s=1.0) is None
        second = await answer(api, "n2", GOOD, "addr-2")
        third = await answer(api, "n3", GOOD, "addr-3")  # untrusted nodes need one more to agree
        view = await api.completed(first)
        assert view.result == GOOD
        for replica in (second, third):
            done = await api.completed(replica.job_id)
            assert done.result == GOOD
        settled = await group(api, first)
        assert (settled.status, settled.answer, settled.results) == ("finalised", first, 3)
        assert set(settled.replicas) == {second.job_id, third.job_id}
        events = await job_events(api.nc)
        replicas_of = {e.aggregate_id: e.data.replica_of for e in events if e.type == "job.created"}
        assert replicas_of == {first: None, second.job_id: first, third.job_id: first}
        completions = [e for e in events if e.type == "job.completed"]
        assert len(completions) == 3  # each job once: the first with the answer, replicas with theirs
        assert {e.aggregate_id: e.data.replica_of for e in completions}[first] is None


async def test_a_forged_result_is_outvoted_and_its_node_disagrees(settings: Settings) -> None:
    async with stack(settings) as api:
        first = await created(api)
        await answer(api, "honest-1", GOOD, "a1")
        await answer(api, "forger", FORGED, "a2")
        await answer(api, "honest-2", GOOD, "a3")
        await answer(api, "honest-3", GOOD, "a4")
        view = await api.completed(first)
        assert view.result == GOOD  # the forged values reach no answer

        async def finalised() -> ConsensusGroupView | None:
            current = await group(api, first)
            return current if current.status == "finalised" else None

        settled = await eventually(finalised)
        [outvoted] = [c for c in settled.classes if "forger" in c.nodes]
        assert outvoted.nodes == ["forger"]
        steps = [step for event in await consensus_events(api, first) for step in consensus_steps(event)]
        assert [step.node_id for step in steps if isinstance(step, NodeDisagreed)] == ["forger"]


async def test_an_unknown_group_is_not_found(settings: Settings) -> None:
    async with stack(settings) as api:
        with pytest.raises(NotFound):
            await group(api, "no-such-group")


async def consensus_events(api: Scheduler, group_id: str) -> list[ConsensusEvent]:
    store = EventStore(api.nc)
    await store.start()
    try:
        stored = await store.read(CONSENSUS.name, f"ccn.consensus.{group_id}.*")
    finally:
        await store.close()
    return [msgspec.json.decode(s.data, type=Envelope[ConsensusEvent]).data for s in stored]


async def test_the_consensus_admin_api_refuses_bad_input_with_typed_errors(edge: Edge) -> None:
    admin = {"Authorization": f"Bearer {edge.settings.admin_token}"}
    base = f"{edge.url}/admin/consensus"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/some-group") as response:
            assert response.status == 401  # no admin token
        async with http.get(f"{base}/some-group", headers=admin) as response:
            assert response.status == 404, await response.text()
        async with http.get(f"{base}/bad%24id", headers=admin) as response:
            assert response.status == 400
        async with http.get(f"{base}/{'x' * 65}", headers=admin) as response:
            assert response.status == 400
        accept = f"{base}/some-group/accept"
        for body in ({"checksum": "nothex"}, {"checksum": "a" * 64, "comment": "line\nbreak"}, {"extra": 1}, []):
            async with http.post(accept, json=body, headers=admin) as response:
                assert response.status == 400, (body, await response.text())
        async with http.post(accept, json={"checksum": "a" * 64}, headers=admin) as response:
            assert response.status == 409  # not in review: there is nothing to accept
        reject = f"{base}/some-group/reject"
        for body in ({}, {"comment": ""}, {"comment": "\x00"}, {"comment": "x" * 1001}):
            async with http.post(reject, json=body, headers=admin) as response:
                assert response.status == 400, (body, await response.text())
        json_type = {**admin, "Content-Type": "application/json"}
        async with http.post(accept, data=b"[" * 10_000, headers=json_type) as response:
            assert response.status == 400  # deep JSON: refused, not recursed into
        async with http.post(accept, data=b" " * 2_000_000, headers=json_type) as response:
            assert response.status == 413  # past the edge's body bound
