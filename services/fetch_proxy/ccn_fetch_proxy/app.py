"""Wires the fetch proxy: the command `ccn.cmd.fetch.fetch_page`, its collaborators (the
scheduler for jobs, the allow-list, the domain gate, the safe fetcher, the body store, the
grants and counts buckets, the fetch records) and health.

`serve_fetch_proxy` is the service as it runs: the allow-list is the policy book it follows
from CCN_POLICY (with the domain-policy commands it serves, ccn_fetch_proxy.policy_service), the
gate is politeness shared by every replica (ccn_fetch_proxy.domain_gate.SharedGate)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccn_core.commands import CommandClient, CommandContext, CommandServer
from ccn_core.document_bodies import ObjectStoreBodies, open_body_store
from ccn_core.domain_limiter import DomainLimiter
from ccn_core.egress import EgressPolicy
from ccn_core.service import Runtime, serve_health
from ccn_core.settings import Settings
from ccn_core.topology import FETCH_COUNTS, FETCH_GRANTS, RATE_LIMIT_STATE
from ccn_fetch_proxy.dev_allowance import parse_loopback_allowance
from ccn_fetch_proxy.domain_gate import DomainGate, SharedGate
from ccn_fetch_proxy.fetch_checks import PolicyLookup
from ccn_fetch_proxy.fetch_records import FetchRecords
from ccn_fetch_proxy.job_access import FetchBudget, JobAccess, SchedulerJobs
from ccn_fetch_proxy.policy_service import start_domain_policy
from ccn_fetch_proxy.proxy import FetchProxy, Resolve
from ccn_fetch_proxy.safe_fetcher import FetchLimits, SafeFetcher, resolve_host
from ccn_jobs.job_type import JobType
from ccn_jobs.registry import JOB_TYPES
from ccn_proto.fetch import FetchOutcome, FetchPage

SERVICE = "fetch"
# Fetches one replica works on at once; past it a node is told to come back (Unavailable, 1 s).
# Each may hold a body of up to CCN_FETCH_MAX_BODY_BYTES (16 MiB) while it is stored: 64 of them
# are 1 GiB at worst, what a replica's memory limit (deploy/k8s/base/fetch-proxy.yaml) allows.
MAX_FETCHES_IN_HAND = 64


def fetch_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        max_body_bytes=settings.fetch_max_body_bytes,
        connect_timeout_s=settings.fetch_connect_timeout_s,
        read_timeout_s=settings.fetch_read_timeout_s,
        total_timeout_s=settings.fetch_total_timeout_s,
    )


async def serve_fetch_proxy(runtime: Runtime) -> FetchProxy:
    book = await start_domain_policy(runtime)
    limiter = DomainLimiter(await runtime.js.key_value(RATE_LIMIT_STATE.bucket))
    return await start_fetch_proxy(runtime, policies=book, gate=SharedGate(limiter))


async def start_fetch_proxy(
    runtime: Runtime,
    *,
    policies: PolicyLookup,
    gate: DomainGate,
    jobs: JobAccess | None = None,
    job_types: Mapping[str, JobType[Any, Any]] = JOB_TYPES,
    limits: FetchLimits | None = None,
    resolve: Resolve = resolve_host,
    health: bool = True,
) -> FetchProxy:
    settings = runtime.settings
    allowance = parse_loopback_allowance(settings.fetch_dev_loopback)
    if allowance:
        runtime.log.warning(
            "DEVELOPMENT LOOPBACK ALLOWANCE IS ON: the fetch proxy connects to loopback for these host:port pairs;"
            " never set CCN_FETCH_DEV_LOOPBACK outside a developer's machine",
            pairs=sorted(f"{host}:{port}" for host, port in allowance),
        )
    js = runtime.js
    fetcher = SafeFetcher(fetch_limits(settings) if limits is None else limits)
    runtime.on_stop(fetcher.close)
    proxy = FetchProxy(
        jobs=SchedulerJobs(CommandClient(runtime.nc, timeout=settings.command_timeout_s)) if jobs is None else jobs,
        budget=FetchBudget(await js.key_value(FETCH_COUNTS.bucket)),
        policies=policies,
        gate=gate,
        fetcher=fetcher,
        bodies=ObjectStoreBodies(await open_body_store(js)),
        grants=await js.key_value(FETCH_GRANTS.bucket),
        records=FetchRecords(runtime.store),
        job_types=job_types,
        egress=EgressPolicy(loopback_allowance=allowance),
        resolve=resolve,
    )

    async def fetch_page(request: FetchPage, ctx: CommandContext) -> FetchOutcome:
        return await proxy.fetch_page(request, ctx.correlation_id, ctx.causation_id)

    server = CommandServer(runtime.nc, SERVICE, max_concurrency=MAX_FETCHES_IN_HAND)
    server.register("fetch_page", FetchPage, fetch_page)
    await server.start()
    runtime.on_stop(server.stop)
    if health:
        await serve_health(runtime, settings.health_host, settings.fetch_proxy_health_port)
    return proxy
