"""The analytics HTTP app: the admin audit and orchestrator-log APIs, probes and the OpenAPI
schema at /schema."""

from __future__ import annotations

import asyncpg
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi.spec import SecurityScheme

from ccn_analytics.audit_api import AuditReader, audit_log
from ccn_analytics.crawl_api import CrawlStatsReader, crawl_domains
from ccn_analytics.domains_api import DomainReader, domain_detail, list_domains
from ccn_analytics.nodes_api import NodeReader, list_nodes
from ccn_analytics.orchestrator_api import OrchestratorLogReader, orchestrator_log
from ccn_analytics.quarantine_api import QuarantineReader, list_quarantine, quarantined_job
from ccn_core.eventstore import EventStore
from ccn_web.auth import admin_guard
from ccn_web.http import Readiness, create_http_app

# GET-only admin API: bodies are never read, so the limit only bounds a stray upload
_MAX_BODY_BYTES = 1024


def create_app(
    *,
    pool: asyncpg.Pool,
    admin_token: str,
    ready: Readiness,
    body_timeout_s: float,
    store: EventStore | None = None,
) -> Litestar:
    """`store`: where a domain's history is read (GET /admin/domains/{domain} answers 503 without)."""
    reader = AuditReader(pool)
    log_reader = OrchestratorLogReader(pool)
    node_reader = NodeReader(pool)
    crawl_reader = CrawlStatsReader(pool)
    domain_reader = DomainReader(pool, store)
    quarantine_reader = QuarantineReader(pool)

    async def provide_reader() -> AuditReader:
        return reader

    async def provide_log_reader() -> OrchestratorLogReader:
        return log_reader

    async def provide_node_reader() -> NodeReader:
        return node_reader

    async def provide_crawl_reader() -> CrawlStatsReader:
        return crawl_reader

    async def provide_domain_reader() -> DomainReader:
        return domain_reader

    async def provide_quarantine_reader() -> QuarantineReader:
        return quarantine_reader

    admin = Router(
        "/admin",
        route_handlers=[
            audit_log,
            orchestrator_log,
            list_nodes,
            crawl_domains,
            list_domains,
            domain_detail,
            list_quarantine,
            quarantined_job,
        ],
        guards=[admin_guard(admin_token)],
    )
    return create_http_app(
        service="analytics",
        title="Community Compute analytics",
        route_handlers=[admin],
        ready=ready,
        max_body_bytes=_MAX_BODY_BYTES,
        body_timeout_s=body_timeout_s,
        security_schemes={"AdminToken": SecurityScheme(type="http", scheme="bearer", description="CCN_ADMIN_TOKEN")},
        dependencies={
            "reader": Provide(provide_reader),
            "log_reader": Provide(provide_log_reader),
            "node_reader": Provide(provide_node_reader),
            "crawl_reader": Provide(provide_crawl_reader),
            "domain_reader": Provide(provide_domain_reader),
            "quarantine_reader": Provide(provide_quarantine_reader),
        },
    )
