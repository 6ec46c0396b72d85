"""python -m ccn_analytics: read models of the event streams and the admin API over them."""

from __future__ import annotations

import asyncio

from ccn_analytics.app import create_app
from ccn_analytics.audit_projection import AuditLogProjection
from ccn_core.projection import ProjectionRunner
from ccn_core.service import Runtime, run_service
from ccn_core.settings import settings_from_env
from ccn_web.serve import serve_http


async def start_analytics(runtime: Runtime) -> None:
    """Start the audit projection and the HTTP server on `runtime`; both stop with it."""
    assert runtime.pool is not None, "analytics reads and projects into Postgres"
    settings = runtime.settings

    projection = AuditLogProjection()
    runner = ProjectionRunner(runtime.js, runtime.pool, projection)
    runtime.spawn(runner.run(), name=projection.spec.durable)

    async def stop_runner() -> None:
        runner.stop()

    runtime.on_stop(stop_runner)

    app = create_app(pool=runtime.pool, admin_token=settings.admin_token, ready=runtime.ready)
    serve_http(runtime, app, host=settings.analytics_host, port=settings.analytics_port)


def main() -> None:
    settings = settings_from_env()
    asyncio.run(run_service("analytics", settings, start_analytics))


if __name__ == "__main__":
    main()
