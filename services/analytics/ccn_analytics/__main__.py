"""python -m ccn_analytics: read models of the event streams and the admin API over them."""

from __future__ import annotations

import asyncio

from ccn_analytics.app import create_app
from ccn_analytics.audit_projection import AuditLogProjection
from ccn_analytics.crawl_projection import CrawlDomainStatsProjection
from ccn_analytics.dead_letter_projection import DeadLetterReadModel
from ccn_analytics.domains_projection import DomainReadModel
from ccn_analytics.orchestrator_node_projection import orchestrator_log_projections
from ccn_analytics.quarantine_projection import QuarantineReadModel
from ccn_core.projection import Projection, ProjectionRunner
from ccn_core.service import Runtime, create_pool, run_process, run_service
from ccn_core.settings import settings_from_env
from ccn_core.topology import AUDIT_DATASET_LOG, AUDIT_POLICY_LOG, AUDIT_RESULTS_LOG
from ccn_web.serve import serve_http

# how long a stopping runner may take to hand back its connections before they are cut
_POOL_CLOSE_S = 10.0


async def start_analytics(runtime: Runtime) -> None:
    """Start the projections (audit trail of nodes, of domain policies and of dataset decisions, orchestrator log of
    jobs, of nodes, of dead letters and of crawled domains, the dead letters' and the allow-list's
    read models, crawl analytics, the results in quarantine and the admins' decisions on them) and
    the HTTP server on `runtime`; all stop with it."""
    assert runtime.pool is not None, "analytics reads and projects into Postgres"
    settings = runtime.settings

    projections: tuple[Projection, ...] = (
        AuditLogProjection(),
        AuditLogProjection(AUDIT_POLICY_LOG),
        AuditLogProjection(AUDIT_RESULTS_LOG, only=frozenset({"released", "discarded"})),
        AuditLogProjection(AUDIT_DATASET_LOG),
        *orchestrator_log_projections(),
        DeadLetterReadModel(),
        CrawlDomainStatsProjection(),
        DomainReadModel(),
        QuarantineReadModel(),
    )
    # Each runner holds a connection for its leader lock as long as it runs, and needs another to
    # write: the projections get a pool of their own, sized to them, so they never starve each
    # other or the admin API of connections (the runtime's pool serves the API)
    projection_pool = await create_pool(settings, min_size=1, max_size=2 * len(projections) + 2)
    runners = [ProjectionRunner(runtime.js, projection_pool, projection) for projection in projections]
    for projection, runner in zip(projections, runners, strict=True):
        runtime.spawn(runner.run(), name=projection.spec.durable)

    async def stop_runners() -> None:
        for runner in runners:
            runner.stop()

    async def close_projection_pool() -> None:
        try:
            await asyncio.wait_for(projection_pool.close(), timeout=_POOL_CLOSE_S)
        except TimeoutError:
            projection_pool.terminate()

    runtime.on_stop(close_projection_pool)  # hooks run last first: after the runners are asked to stop
    runtime.on_stop(stop_runners)
    runtime.watch_lag(projection.spec for projection in projections)

    app = create_app(
        pool=runtime.pool,
        admin_token=settings.admin_token,
        ready=runtime.ready,
        body_timeout_s=settings.http_body_timeout_s,
        store=runtime.store,
    )
    serve_http(runtime, app, host=settings.analytics_host, port=settings.analytics_port)


def main() -> None:
    settings = settings_from_env()
    run_process(run_service("analytics", settings, start_analytics))


if __name__ == "__main__":
    main()
