"""Wires the validation service: the result aggregate's repository, the reactor judging each
submitted result, and its commands (ADR 0024)."""

from __future__ import annotations

from ccn_core.aggregate import AggregateRepository
from ccn_core.commands import CommandClient
from ccn_core.reactor import Reactor
from ccn_core.receipts import KeyRingSource
from ccn_core.service import Runtime, serve_health
from ccn_core.topology import RESULTS, VALIDATION_RESULTS
from ccn_jobs.result_validation import Validator, judge_result
from ccn_proto.jobs import JobResultSubmittedBytes
from ccn_proto.results import ResultEvent
from ccn_validation.judging import ResultJudging
from ccn_validation.quarantine import QuarantineDecider
from ccn_validation.verdicts import ResultDecider


async def start_validation(
    runtime: Runtime, *, health: bool = True, validator: Validator = judge_result
) -> ResultJudging:
    """`validator`: the registered job types' (a test whose scheduler runs test-only job types
    passes one that knows them, as it passes the scheduler their payload types)."""
    settings = runtime.settings
    keys = KeyRingSource(settings.receipt_keys_path)
    keys.ring()  # no keys, no receipts: refuse to start rather than judge without signing
    repository = AggregateRepository(
        runtime.store,
        ResultDecider(keys.ring, QuarantineDecider(validator)),
        ResultEvent,
        stream=RESULTS.name,
        deadline_s=settings.command_timeout_s,
    )
    judging = ResultJudging(
        repository, CommandClient(runtime.nc, timeout=settings.command_timeout_s), replica=runtime.replica
    )
    # results are judged as they come: one pull's results at once, their verdicts pipelined
    reactor = Reactor(
        runtime.nc, runtime.js, VALIDATION_RESULTS, JobResultSubmittedBytes, judging.on_result_submitted, batch_size=256
    )
    await reactor.ensure_consumer()
    runtime.spawn(reactor.run(), name=VALIDATION_RESULTS.durable)

    async def stop() -> None:
        reactor.stop()
        await judging.drain()

    runtime.on_stop(stop)
    runtime.watch_lag([VALIDATION_RESULTS])
    if health:
        await serve_health(runtime, settings.health_host, settings.validation_health_port)
    return judging
