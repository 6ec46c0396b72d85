"""Wires the scheduler: the run for the claim ownership (the owner decides about jobs, ADR 0016),
the job archiver, and, when asked, the read-model projection, which a deployed scheduler leaves
to its own process (ccn_scheduler.projector)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from ccn_core.ownership import Ownership
from ccn_core.service import Runtime, serve_health
from ccn_core.topology import NODE_RELEASE, OWNERS
from ccn_jobs.registry import CONSENT_SCOPE_OF
from ccn_scheduler.cleanup import ArchivePolicy, JobArchiver
from ccn_scheduler.owner import ClaimOwner, SchedulerOptions
from ccn_scheduler.payloads import PayloadTypes, job_type_payloads
from ccn_scheduler.projector import start_job_projection

__all__ = ["SchedulerOptions", "start_scheduler"]

OWNER_KEY = "scheduler"


async def start_scheduler(
    runtime: Runtime,
    *,
    health: bool = True,
    payload_types: PayloadTypes | None = None,
    options: SchedulerOptions | None = None,
    project: bool = True,
    consent_scopes: Mapping[str, str] | None = None,
) -> ClaimOwner:
    assert runtime.pool is not None, "the scheduler's archiver (and its projection) work in Postgres"
    settings = runtime.settings
    options = options or SchedulerOptions()
    if not settings.scheduler_governance:
        options = msgspec.structs.replace(options, governance=False)
    types = job_type_payloads() if payload_types is None else payload_types
    owner = ClaimOwner(
        runtime, types, options, consent_scopes=CONSENT_SCOPE_OF if consent_scopes is None else consent_scopes
    )
    ownership = Ownership(
        runtime.js,
        bucket=OWNERS.bucket,
        key=OWNER_KEY,
        owner_id=runtime.replica,
        ttl_s=OWNERS.ttl_s,
        on_gain=owner.take_over,
        on_loss=owner.step_down,
    )
    runtime.spawn(ownership.run(), name="scheduler_ownership")
    archiver = JobArchiver(
        runtime.pool,
        ArchivePolicy(retention_s=settings.job_retention_s),
        replica=runtime.replica,
        interval_s=options.archive_interval_s,
    )
    runtime.spawn(archiver.run(), name="scheduler_job_archiver")
    runtime.watch_lag([NODE_RELEASE])
    if project:
        await start_job_projection(runtime, health=False, idle_wait_s=options.projection_idle_wait_s)

    async def stop_background() -> None:
        # stop deciding first, and let a standby in at once (the key is deleted, not left to expire)
        ownership.stop()
        archiver.stop()

    runtime.on_stop(stop_background)
    if health:
        await serve_health(runtime, settings.health_host, settings.scheduler_health_port)
    return owner
