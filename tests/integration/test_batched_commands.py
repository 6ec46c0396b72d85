"""claim_batch and submit_results, the commands an edge sends for many nodes at once: each
item is answered on its own (one bad ask or result refuses that item only), asks of one node
in one batch still respect its concurrency, and each result is a step of its own job's thread."""

from __future__ import annotations

from collections import Counter

from ccn_core import ids
from ccn_core.settings import Settings
from ccn_proto.canonical import result_checksum
from ccn_proto.scheduler import (
    BatchedResult,
    BatchJob,
    ClaimBatch,
    ClaimBatchReply,
    ClaimJobs,
    CreateBatch,
    CreateBatchReply,
    SubmitResult,
    SubmitResults,
    SubmitResultsReply,
)
from tests.integration.test_scheduler import job_events, own_settings, scheduler_client, schedulers

__all__ = ["own_settings"]  # the fixture, used by name


def ask(node: str, *, concurrency: int = 1, slots: int = 1, job_types: list[str] | None = None) -> ClaimJobs:
    return ClaimJobs(node_id=node, job_types=job_types or ["echo"], concurrency=concurrency, slots=slots)


async def test_a_claim_batch_answers_each_ask_and_keeps_each_nodes_concurrency(own_settings: Settings) -> None:
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        created = await api.call(
            CreateBatch(batch_id="b", jobs=[BatchJob(job_type="echo", payload={"text": str(i)}) for i in range(10)]),
            CreateBatchReply,
        )
        assert created.created == 10
        batch = ClaimBatch(
            asks=[
                ask("node-a"),
                ask("node-b", concurrency=2, slots=2),
                ask("node-a"),  # node-a again in the same batch: it holds one job at most
                ask("node-c", job_types=["no_such_type"]),
            ]
        )
        reply = await api.call(batch, ClaimBatchReply)

        a1, b, a2, bad = reply.outcomes
        assert bad.reply is None and bad.error is not None
        assert bad.error.code == "unprocessable" and bad.error.field == "job_types"
        assert b.reply is not None and len(b.reply.offers) == 2 and b.reply.held == 2
        assert a1.reply is not None and a2.reply is not None
        assert len(a1.reply.offers) + len(a2.reply.offers) == 1
        offered = [o.job_id for r in (a1.reply, b.reply, a2.reply) for o in r.offers]
        assert len(set(offered)) == 3, "no job offered twice"
        # a claim batch answers at once: nothing is ready for a type with no jobs
        empty = await api.call(ClaimBatch(asks=[ask("node-d", job_types=["count"])]), ClaimBatchReply)
        assert empty.outcomes[0].reply is not None and empty.outcomes[0].reply.offers == []


async def test_submit_results_refuses_one_bad_result_and_accepts_the_others(own_settings: Settings) -> None:
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        await api.call(
            CreateBatch(batch_id="r", jobs=[BatchJob(job_type="echo", payload={"text": str(i)}) for i in range(3)]),
            CreateBatchReply,
        )
        reply = await api.call(ClaimBatch(asks=[ask(f"node-{n}") for n in range(3)]), ClaimBatchReply)
        offers = [(f"node-{n}", o.reply.offers[0]) for n, o in enumerate(reply.outcomes) if o.reply is not None]
        assert len(offers) == 3
        result = {"text": "done"}
        items = [
            BatchedResult(
                correlation_id=offer.correlation_id,
                submit=SubmitResult(
                    node_id=node,
                    job_id=offer.job_id,
                    result=result,
                    # the second node's checksum is wrong
                    checksum=result_checksum(result) if index != 1 else "0" * 64,
                ),
            )
            for index, (node, offer) in enumerate(offers)
        ]
        items.append(  # a result from a node that does not hold the job
            BatchedResult(
                correlation_id=ids.new_correlation_id(),
                submit=SubmitResult(
                    node_id="node-x", job_id=offers[0][1].job_id, result=result, checksum=result_checksum(result)
                ),
            )
        )
        answered = await api.call(SubmitResults(items=items), SubmitResultsReply)

        statuses = [o.reply.status if o.reply else o.error.code for o in answered.outcomes if o.reply or o.error]
        assert statuses[0] == "validating" and statuses[2] == "validating"
        assert statuses[1] == "bad_input"
        assert statuses[3] in ("conflict", "forbidden")
        for status, (_, offer) in zip(statuses, offers, strict=False):
            if status == "validating":
                await api.completed(offer.job_id)
        events = await job_events(api.nc)
        assert Counter(e.type for e in events)["job.completed"] == 2
        # each completion is on its own job's thread, not the batch's
        by_job = {offer.job_id: offer.correlation_id for _, offer in offers}
        for event in events:
            if event.type == "job.completed":
                assert event.correlation_id == by_job[event.aggregate_id]


async def test_an_ask_sent_with_a_result_is_claimed_once_the_result_frees_the_slot(own_settings: Settings) -> None:
    """A concurrency-1 node's next ask rides with its result: it is taken after the result is
    recorded, so it gets the next job; an ask sent with a refused result is not made, and an ask
    in another node's name is refused."""
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        await api.call(
            CreateBatch(batch_id="n", jobs=[BatchJob(job_type="echo", payload={"text": str(i)}) for i in range(3)]),
            CreateBatchReply,
        )
        claimed = await api.call(ClaimBatch(asks=[ask("node-a")]), ClaimBatchReply)
        assert claimed.outcomes[0].reply is not None
        first = claimed.outcomes[0].reply.offers[0]
        result = {"text": "done"}

        def item(job_id: str, *, checksum: str = result_checksum(result), asker: str = "node-a") -> BatchedResult:
            return BatchedResult(
                correlation_id=ids.new_correlation_id(),
                submit=SubmitResult(node_id="node-a", job_id=job_id, result=result, checksum=checksum),
                claim=ask(asker),
            )

        answered = await api.call(SubmitResults(items=[item(first.job_id)]), SubmitResultsReply)
        outcome = answered.outcomes[0]
        assert outcome.reply is not None and outcome.reply.status == "validating"
        assert outcome.claim is not None and outcome.claim.reply is not None
        (second,) = outcome.claim.reply.offers
        assert second.job_id != first.job_id and outcome.claim.reply.held == 1

        refused = await api.call(SubmitResults(items=[item(second.job_id, checksum="0" * 64)]), SubmitResultsReply)
        assert refused.outcomes[0].error is not None and refused.outcomes[0].claim is None
        foreign = await api.call(SubmitResults(items=[item(second.job_id, asker="node-b")]), SubmitResultsReply)
        assert foreign.outcomes[0].reply is not None  # the result itself is recorded
        assert foreign.outcomes[0].claim is not None and foreign.outcomes[0].claim.error is not None
        assert foreign.outcomes[0].claim.error.code == "bad_input"
        events = await job_events(api.nc)
        assert Counter(e.type for e in events)["job.claimed"] == 2  # the third job is still ready


async def test_a_claim_batch_takes_only_the_jobs_whose_payloads_fit_in_one_reply(own_settings: Settings) -> None:
    """Offers carry payloads, and NATS refuses a message over max_payload (1 MiB here): a reply
    that did not fit would never arrive, and its jobs would wait out their leases. The batch
    takes what fits and leaves the rest queued, unspent."""
    big = "x" * 200_000
    async with schedulers(own_settings, 1), scheduler_client(own_settings.effective_nats_url) as api:
        for index in range(10):
            await api.create(f"{index}{big}")
        reply = await api.call(ClaimBatch(asks=[ask(f"node-{n}") for n in range(10)]), ClaimBatchReply)
        first = [o.reply.offers[0] for o in reply.outcomes if o.reply is not None and o.reply.offers]
        assert 1 <= len(first) <= 5, len(first)  # ~200 kB each under ~1 MiB
        assert all(o.reply is not None for o in reply.outcomes), "the others are answered, empty"
        # the rest are still claimable, on their first attempt
        taken = {offer.job_id for offer in first}
        for n in range(10, 30):
            if len(taken) == 10:
                break
            more = await api.claim(f"node-{n}")
            taken.update(offer.job_id for offer in more.offers)
            assert all(offer.attempt == 1 for offer in more.offers)
        assert len(taken) == 10
        events = await job_events(api.nc)
        assert Counter(e.type for e in events) == Counter({"job.created": 10, "job.claimed": 10})
