"""python -m ccn_scheduler.projector: the job read model (community_jobs and its results) kept
by a process of its own.

Projecting is Postgres writes and event decoding for every job event; inside the scheduler it
took about a fifth of the scheduler's event loop, the one every claim and result waits on. Here
it runs beside the scheduler on another core, and a slow database delays the read model (and
lease expiry, which scans it), never a claim. Several projector processes are safe: one
projects, the others wait on its advisory lock as hot standbys (ccn_core.projection)."""

from __future__ import annotations

from ccn_core.projection import ProjectionRunner
from ccn_core.service import Runtime, run_process, run_service, serve_health
from ccn_core.settings import settings_from_env
from ccn_scheduler.job_states import sample_jobs_by_state
from ccn_scheduler.read_model import JobReadModel

SERVICE = "scheduler-projector"


async def start_job_projection(runtime: Runtime, *, health: bool = True, idle_wait_s: float = 0.5) -> None:
    assert runtime.pool is not None, "the job read model lives in Postgres"
    projection = ProjectionRunner(runtime.js, runtime.pool, JobReadModel(), idle_wait_s=idle_wait_s)
    runtime.spawn(projection.run(), name=JobReadModel.spec.durable)

    async def stop() -> None:
        projection.stop()

    runtime.on_stop(stop)
    runtime.watch_lag([JobReadModel.spec])
    runtime.spawn(sample_jobs_by_state(runtime.pool, runtime.stopping), name="jobs-by-state")
    if health:
        await serve_health(runtime, runtime.settings.health_host, runtime.settings.scheduler_projector_health_port)


async def _main(runtime: Runtime) -> None:
    await start_job_projection(runtime)


def main() -> None:
    run_process(run_service(SERVICE, settings_from_env(), _main))


if __name__ == "__main__":
    main()
