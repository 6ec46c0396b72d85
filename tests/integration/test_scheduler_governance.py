"""Node governance at the claim owner, against real NATS and Postgres with the real registry: a
banned node's leases go back at once, a claim of types outside a node's consent is refused (and
mixed ones narrowed), a shadow-banned node's result never completes a job while another node's
does, a node on backoff gets nothing until its backoff ends, and a drained node is told bye over
the edge's WebSocket once it has finished its job."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import aiohttp
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_core import ids
from ccn_core.aggregate import envelope_headers
from ccn_core.commands import CommandClient
from ccn_core.domain.node import NodeState
from ccn_core.errors import Forbidden
from ccn_core.eventstore import EventStore, OutgoingEvent
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_jobs.registry import result_to_builtins, run_job
from ccn_proto.budgets import JobBudget
from ccn_proto.canonical import result_checksum
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.nodes import NodeBackoffChanged, NodeBudgetsSet
from ccn_proto.registry import BanNode, DrainNode, NodeActionReply, SetNodeBudgets, ShadowBanNode
from ccn_proto.scheduler import (
    ClaimJobs,
    ClaimJobsReply,
    CreateJob,
    CreateJobReply,
    ReleaseJob,
    ReleaseJobReply,
    SubmitResultReply,
)
from ccn_registry.app import start_registry
from ccn_scheduler.app import start_scheduler
from ccn_scheduler.fair_share import FairShare
from ccn_scheduler.owner import ClaimOwner
from tests.conftest import make_settings
from tests.integration.test_edge_jobs import Edge, connected, create_job, next_frame, registered_node, running_edge
from tests.integration.test_scheduler import (
    FAST,
    JOB_TYPES,
    Scheduler,
    answering,
    eventually,
    projected_job,
    registered_and_consenting,
    scheduler_client,
    schedulers,
)
from tests.support.validation import validation_service

# the test's job types, each in a consent scope
SCOPES = {"echo": "crawl", "count": "nlp"}


@pytest.fixture
def own_settings(isolated_nats: str, fresh_database: str, tmp_path: Path) -> Settings:
    return make_settings(isolated_nats, fresh_database, tmp_path)


class Governed(NamedTuple):
    api: Scheduler
    registry: CommandClient
    owner: ClaimOwner

    async def sees(self, node_id: str, check: Callable[[NodeState], bool]) -> None:
        """Until the claim owner's node view shows the node so (it follows the node stream)."""

        async def seen() -> bool:
            governance = self.owner.governance
            node = governance.view.get(node_id) if governance is not None else None
            return node is not None and check(node)

        await eventually(seen, timeout=10)


@contextlib.asynccontextmanager
async def governed(settings: Settings) -> AsyncIterator[Governed]:
    """The registry and one scheduler with governance on; a scheduler caller and a registry one."""
    async with contextlib.AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_runtime("registry", settings))
        await start_registry(registry, health=False)
        await registry.nc.flush()
        runtime = await stack.enter_async_context(open_runtime("scheduler", settings))
        owner = await start_scheduler(
            runtime, health=False, payload_types=JOB_TYPES, options=FAST, consent_scopes=SCOPES
        )
        await answering(settings.effective_nats_url)
        await stack.enter_async_context(validation_service(settings))
        api = await stack.enter_async_context(scheduler_client(settings.effective_nats_url))
        yield Governed(api, CommandClient(api.nc, timeout=10.0), owner)


async def admin(registry: CommandClient, name: str, command: msgspec.Struct) -> NodeActionReply:
    return await registry.call("registry", name, command, NodeActionReply, correlation_id=f"admin-{name}")


async def claim(api: Scheduler, node: str, types: list[str], *, slots: int = 1, wait_s: float = 0.0) -> ClaimJobsReply:
    command = ClaimJobs(node_id=node, job_types=types, concurrency=max(slots, 4), slots=slots, wait_s=wait_s)
    return await api.call(command, ClaimJobsReply)


async def offered(api: Scheduler, node: str, types: list[str], *, slots: int = 1) -> ClaimJobsReply:
    """The first claim that brings offers (the node view follows the node stream a moment behind)."""

    async def with_offers() -> ClaimJobsReply | None:
        reply = await claim(api, node, types, slots=slots, wait_s=0.5)
        return reply if reply.offers else None

    return await eventually(with_offers, timeout=10)


async def create(api: Scheduler, job_type: str = "echo", **fields: object) -> CreateJobReply:
    payload = {"text": "hello"} if job_type == "echo" else {"n": 1}
    return await api.call(CreateJob(job_type=job_type, payload=payload, **fields), CreateJobReply)  # type: ignore[arg-type]


async def test_a_banned_nodes_leases_go_back_at_once_and_it_gets_no_more_work(own_settings: Settings) -> None:
    async with governed(own_settings) as (api, registry, _):
        node = (await registered_and_consenting(registry)).node_public_id
        jobs = [await create(api, lease_s=600.0) for _ in range(2)]
        taken = await offered(api, node, ["echo"], slots=2)
        assert sorted(o.job_id for o in taken.offers) == sorted(j.job_id for j in jobs)

        assert (await admin(registry, "ban", BanNode(node_id=node, reason="abuse", by="ops"))).changed
        # leases of ten minutes, yet another node has both jobs within moments
        other: set[str] = set()
        async with asyncio.timeout(10):
            while len(other) < 2:
                other |= {o.job_id for o in (await claim(api, "n-other", ["echo"], slots=2, wait_s=1.0)).offers}
        assert other == {j.job_id for j in jobs}
        for job in jobs:
            abandoned = [e for e in (await api.job(job.job_id)).history if e.type == "job.abandoned"]
            assert [(e.node_id, e.reason) for e in abandoned] == [(node, "node banned")]
        with pytest.raises(Forbidden, match="banned: abuse"):
            await claim(api, node, ["echo"])


async def test_a_claim_outside_the_nodes_consent_is_refused_and_a_mixed_one_narrowed(own_settings: Settings) -> None:
    async with governed(own_settings) as scheduler:
        api, registry, _ = scheduler
        node = (await registered_and_consenting(registry, scopes=["nlp"])).node_public_id
        await scheduler.sees(node, lambda state: state.consent_scopes == ("nlp",))
        crawl = await create(api, "echo")
        nlp = await create(api, "count")
        with pytest.raises(Forbidden, match="no consent to the scopes"):
            await claim(api, node, ["echo"])
        mixed = await claim(api, node, ["echo", "count"], slots=2, wait_s=0.5)
        assert [o.job_id for o in mixed.offers] == [nlp.job_id]
        # the crawl job is still there for a node that consented to crawling
        other = await claim(api, "n-crawler", ["echo"], wait_s=0.5)
        assert [o.job_id for o in other.offers] == [crawl.job_id]


async def test_a_shadow_banned_nodes_result_never_completes_a_job_and_another_node_completes_it(
    own_settings: Settings,
) -> None:
    async with governed(own_settings) as scheduler:
        api, registry, _ = scheduler
        shadow = (await registered_and_consenting(registry)).node_public_id
        await admin(registry, "shadow_ban", ShadowBanNode(node_id=shadow, reason="bad results", by="ops"))
        await scheduler.sees(shadow, lambda state: state.shadow_banned)
        job = await create(api)
        # it still gets work
        offer = (await offered(api, shadow, ["echo"])).offers[0]
        assert offer.job_id == job.job_id
        forged = {"text": "forged"}
        reply = await api.submit(shadow, job.job_id, forged)
        # answered as an accepted result is: the node cannot tell
        assert isinstance(reply, SubmitResultReply) and (reply.status, reply.duplicate) == ("validating", False)
        again = await api.submit(shadow, job.job_id, forged)
        assert (again.status, again.duplicate) == ("validating", True)
        view = await api.job(job.job_id)
        assert (view.status, view.attempt, view.result) == ("queued", 0, None)
        assert [e.type for e in view.history][-1] == "job.result_set_aside"
        # the job goes to another node, not back to the shadow-banned one
        assert (await claim(api, shadow, ["echo"], wait_s=0.3)).offers == []
        honest = await claim(api, "n-honest", ["echo"], wait_s=1.0)
        assert [o.job_id for o in honest.offers] == [job.job_id]
        result = {"text": "hello"}
        done = await api.submit("n-honest", job.job_id, result)
        assert done.status == "validating"
        view = await api.completed(job.job_id)
        assert (view.status, view.result, view.result_checksum) == ("completed", result, result_checksum(result))
        assert {e.node_id for e in view.history if e.type == "job.completed"} == {"n-honest"}
        # the read model went through the set-aside: the attempt the honest node completed is the first
        row = await projected_job(own_settings, job.job_id, "completed")
        assert (row["attempt"], row["claimed_by_node_id"]) == (1, "n-honest")


async def append_node_event(nc: NATS, node_id: str, event: msgspec.Struct) -> None:
    """An event on the node's stream as the registry would write it (the registry's own backoff
    stages last 30 s and more: too long for a test)."""
    envelope = Envelope(
        event_id=ids.new_event_id(),
        type=type(event).__struct_config__.tag,  # type: ignore[arg-type]
        schema_version=1,
        aggregate_id=node_id,
        occurred_at=datetime.now(UTC),
        correlation_id="test-backoff",
        causation_id=None,
        actor=Actor(kind="service", id="test"),
        data=event,
    )
    store = EventStore(nc)
    await store.start()
    try:
        name = str(envelope.type).split(".", 1)[1]
        outgoing = OutgoingEvent(
            subject=f"ccn.node.{node_id}.{name}", data=msgspec.json.encode(envelope), headers=envelope_headers(envelope)
        )
        await store.append(outgoing)
    finally:
        await store.close()


async def test_a_node_on_backoff_gets_nothing_until_its_backoff_ends(own_settings: Settings) -> None:
    async with governed(own_settings) as (api, registry, _):
        node = (await registered_and_consenting(registry)).node_public_id
        job = await create(api)
        until = datetime.now(UTC) + timedelta(seconds=2)
        await append_node_event(
            api.nc, node, NodeBackoffChanged(stage="mild", previous="none", until=until, cause="3 of 3 jobs failed")
        )

        async def told_backoff() -> ClaimJobsReply | None:
            reply = await claim(api, node, ["echo"])
            return reply if reply.withheld is not None else None

        withheld = await eventually(told_backoff, timeout=5)
        assert (withheld.offers, withheld.backoff_until, withheld.draining) == ([], until, False)
        assert "backed off (mild)" in (withheld.withheld or "")
        # waiting for work does not get round it
        assert (await claim(api, node, ["echo"], wait_s=0.5)).offers == []
        offers = (await offered(api, node, ["echo"])).offers
        assert datetime.now(UTC) >= until
        assert [o.job_id for o in offers] == [job.job_id]


async def test_offers_carry_the_nodes_budgets(own_settings: Settings) -> None:
    async with governed(own_settings) as scheduler:
        api, registry, _ = scheduler
        node = (await registered_and_consenting(registry)).node_public_id
        budgets = NodeBudgetsSet(max_cpu_time_per_job_s=2.5, max_memory_mb=256, by="ops")
        await admin(registry, "set_budgets", SetNodeBudgets(node_id=node, budgets=budgets))
        await scheduler.sees(node, lambda state: state.budgets == budgets)
        await create(api)
        offer = (await offered(api, node, ["echo"])).offers[0]
        assert offer.budget == JobBudget(max_cpu_time_s=2.5, max_memory_mb=256)


@pytest.fixture
async def edge(isolated_nats: str, fresh_database: str, tmp_path: Path) -> AsyncIterator[Edge]:
    settings = msgspec.structs.replace(make_settings(isolated_nats, fresh_database, tmp_path), max_frame_bytes=64_000)
    async with running_edge(settings) as (running, _):
        yield running


async def drain_seen(edge: Edge, node_id: str) -> bool:
    """Whether the scheduler's node view has the drain: an ask at the concurrency the node fills
    already takes nothing, whatever the answer."""
    ask = ClaimJobs(node_id=node_id, job_types=["extract_text"], concurrency=1)
    reply = await edge.scheduler.call("scheduler", "claim_jobs", ask, ClaimJobsReply, correlation_id="probe")
    return reply.draining


async def withheld_seen(edge: Edge, node_id: str) -> bool:
    ask = ClaimJobs(node_id=node_id, job_types=["extract_text"], concurrency=1)
    reply = await edge.scheduler.call("scheduler", "claim_jobs", ask, ClaimJobsReply, correlation_id="probe")
    assert not reply.offers
    return reply.withheld is not None


async def test_a_drained_node_finishes_its_job_gets_nothing_new_and_is_told_bye(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        first = await create_job(edge, 0)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            offer = await next_frame(ws)
            assert offer["type"] == "job_offer" and offer["job_id"] == first.job_id
            reply = await edge.scheduler.call(
                "registry",
                "drain",
                DrainNode(node_id=node["node_public_id"], reason="maintenance", by="ops"),
                NodeActionReply,
                correlation_id="drain",
            )
            assert reply.changed
            await create_job(edge, 1)  # work is waiting, yet a draining node is offered none
            await eventually(lambda: drain_seen(edge, node["node_public_id"]))
            result = result_to_builtins(run_job(offer["job_type"], offer["payload"]))
            started = time.monotonic()
            await ws.send_json(
                {
                    "type": "result",
                    "job_id": first.job_id,
                    "result": result,
                    "checksum": result_checksum(result),
                    "ready": 1,
                }
            )
            frames = [await next_frame(ws)]
            while frames[-1]["type"] != "bye":
                frames.append(await next_frame(ws))
            assert frames[0] == {"type": "ack", "job_id": first.job_id, "status": "validating"}
            assert [f["type"] for f in frames[1:]] in (["bye"], ["error", "bye"]), frames
            assert "drained" in frames[-1]["reason"]
            assert time.monotonic() - started < 10
            closed = await ws.receive(timeout=5)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


async def test_a_backed_off_node_is_told_until_when_over_its_socket_and_offered_nothing_before(edge: Edge) -> None:
    async with aiohttp.ClientSession() as http:
        node = await registered_node(http, edge)
        node_id = node["node_public_id"]
        until = datetime.now(UTC) + timedelta(seconds=3)
        nc = await nats.connect(edge.settings.effective_nats_url)
        try:
            backoff = NodeBackoffChanged(stage="mild", previous="none", until=until, cause="rate-limited")
            await append_node_event(nc, node_id, backoff)
        finally:
            await nc.drain()
        await eventually(lambda: withheld_seen(edge, node_id))  # no job exists yet: the probe takes none
        job = await create_job(edge, 0)
        async with connected(http, edge, node) as ws:
            await ws.send_json({"type": "ready", "slots": 1})
            told = await next_frame(ws)
            assert told["type"] == "error" and told["code"] == "backed_off", told
            assert datetime.fromisoformat(told["backoff_until"]) == until
            assert 0 < told["retry_after"] <= 3
            offer = await next_frame(ws)
            assert offer["type"] == "job_offer" and offer["job_id"] == job.job_id
            assert datetime.now(UTC) >= until


async def test_a_new_owner_rebuilds_the_node_view_and_releases_a_node_banned_while_none_owned(
    own_settings: Settings,
) -> None:
    async with (
        open_runtime("registry", own_settings) as registry_runtime,
        scheduler_client(own_settings.effective_nats_url) as api,
    ):
        await start_registry(registry_runtime, health=False)
        await registry_runtime.nc.flush()
        registry = CommandClient(api.nc, timeout=10.0)
        node = (await registered_and_consenting(registry)).node_public_id
        async with schedulers(own_settings, 1):
            jobs = [await create(api, lease_s=600.0) for _ in range(2)]
            taken = await offered(api, node, ["echo"], slots=2)
            assert sorted(o.job_id for o in taken.offers) == sorted(j.job_id for j in jobs)
        # no scheduler runs while the node is banned: nobody sees the event as it happens
        await admin(registry, "ban", BanNode(node_id=node, reason="abuse", by="ops"))
        async with schedulers(own_settings, 1) as (replica,):
            governance = replica.owner.governance
            assert governance is not None
            banned = governance.view.get(node)
            assert banned is not None and banned.banned  # folded from the replay
            other: set[str] = set()
            async with asyncio.timeout(10):
                while len(other) < 2:
                    other |= {o.job_id for o in (await claim(api, "n-other", ["echo"], slots=2, wait_s=1.0)).offers}
            assert other == {j.job_id for j in jobs}
            with pytest.raises(Forbidden):
                await claim(api, node, ["echo"])


async def test_a_node_at_twice_its_fair_share_waits_while_others_ask_and_is_served_once_the_share_grows(
    own_settings: Settings,
) -> None:
    """The fair share at the claim owner: with jobs waiting, a node past twice its share of the
    window gets nothing while other nodes ask, and is served once their claims grow the share."""
    async with governed(own_settings) as (api, _, owner):

        async def owns() -> bool:
            return owner.governance is not None

        await eventually(owns, timeout=10)
        assert owner.governance is not None
        # a window of ten minutes: the test's claims all count, however slowly the machine runs
        owner.governance.fair_share = FairShare(window_s=600.0)
        for _ in range(16):
            await create(api, lease_s=600.0)
        for patient in ("n-patient-1", "n-patient-2"):
            assert len((await claim(api, patient, ["echo"])).offers) == 1
        greedy = ClaimJobs(node_id="n-greedy", job_types=["echo"], concurrency=8, slots=8)
        held = [offer.job_id for offer in (await api.call(greedy, ClaimJobsReply)).offers]
        assert len(held) == 8  # its concurrency: the cap's floor for a window
        await api.call(ReleaseJob(node_id="n-greedy", job_id=held.pop(), reason="done"), ReleaseJobReply)
        one_more = msgspec.structs.replace(greedy, slots=1)
        # 8 of the window's 10 claims, 3 nodes asking: past twice its share, though jobs wait
        assert (await api.call(one_more, ClaimJobsReply)).offers == []
        for patient in ("n-patient-1", "n-patient-2"):
            await claim(api, patient, ["echo"], slots=3)  # 16 claims in all: the share grows
        assert len((await api.call(one_more, ClaimJobsReply)).offers) == 1
