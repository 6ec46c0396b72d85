"""The edge's HTTP app and its place in the service runtime."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi.spec import SecurityScheme

from ccn_core.commands import CommandClient
from ccn_core.document_bodies import BodyStreams
from ccn_core.errors import Unavailable
from ccn_core.metrics import NODE_CONNECTIONS
from ccn_core.service import Runtime
from ccn_core.settings import Settings
from ccn_edge.campaigns_admin_api import campaigns_admin_router
from ccn_edge.compute_api import ComputeController
from ccn_edge.connection_limits import SocketLimits
from ccn_edge.consensus_admin_api import consensus_admin_router
from ccn_edge.context import EdgeContext
from ccn_edge.datasets_admin_api import datasets_admin_router
from ccn_edge.documents_api import DocumentServer, FetchGrants, documents_router
from ccn_edge.domains_admin_api import domains_admin_router
from ccn_edge.fetch_api import job_fetch
from ccn_edge.fetch_relay import FetchRelay, FetchSlots
from ccn_edge.in_flight import InFlight, bounded_requests
from ccn_edge.jobs_api import jobs_router
from ccn_edge.limits_api import limits_router
from ccn_edge.node_socket import node_socket_handler
from ccn_edge.nodes_admin_api import nodes_admin_router
from ccn_edge.quarantine_admin_api import quarantine_admin_router
from ccn_edge.rate_limits import EdgeLimits, Violations, report_violations, watch_limits_config
from ccn_edge.receipt_delivery_api import IssuedReceipts, receipt_delivery_router
from ccn_edge.receipts_api import PublishedKeys, receipt_keys_handler
from ccn_web.auth import DEFAULT_ADMIN_NAME
from ccn_web.http import Readiness, create_http_app
from ccn_web.serve import serve_http

SECURITY_SCHEMES = {
    "NodeApiToken": SecurityScheme(
        type="http", scheme="bearer", description="The node's API token (cca_…), returned once at registration."
    ),
    "AdminToken": SecurityScheme(type="http", scheme="bearer", description="CCN_ADMIN_TOKEN"),
    "NodeSessionToken": SecurityScheme(
        type="http", scheme="bearer", description="A session token (ccs_…), from registration or POST /compute/session."
    ),
}


def create_app(
    *,
    context: EdgeContext,
    ready: Readiness,
    max_body_bytes: int,
    max_frame_bytes: int,
    admin_token: str,
    socket_limits: SocketLimits,
    admin_name: str = DEFAULT_ADMIN_NAME,
    body_timeout_s: float,
    requests_in_flight: InFlight | None = None,
    documents: DocumentServer | None = None,
    document_timeout_s: float = 120.0,
    receipt_keys: PublishedKeys | None = None,
    issued_receipts: IssuedReceipts | None = None,
) -> Litestar:
    async def provide_context() -> EdgeContext:
        return context

    if requests_in_flight is None:
        requests_in_flight = InFlight(Settings().edge_max_requests_in_flight, "HTTP requests")
    if receipt_keys is None:
        receipt_keys = PublishedKeys(Settings().receipt_keys_path)

    async def provide_documents() -> DocumentServer:
        if documents is None:
            raise Unavailable("this edge serves no document bodies")
        return documents

    receipts = issued_receipts or IssuedReceipts(None)

    async def provide_receipts() -> IssuedReceipts:
        return receipts

    return create_http_app(
        service="edge",
        title="Community Compute edge",
        route_handlers=[
            # the node and job APIs answer 503 + Retry-After past the edge's requests in flight
            Router(
                "/",
                route_handlers=[
                    ComputeController,
                    job_fetch,
                    jobs_router(admin_token),
                    nodes_admin_router(admin_token, admin_name),
                    domains_admin_router(admin_token, admin_name),
                    limits_router(admin_token),
                    campaigns_admin_router(admin_token, admin_name),
                    consensus_admin_router(admin_token, admin_name),
                    quarantine_admin_router(admin_token, admin_name),
                    receipt_delivery_router(),
                    datasets_admin_router(admin_token, admin_name),
                ],
                middleware=[bounded_requests(requests_in_flight)],
            ),
            node_socket_handler(max_frame_bytes, socket_limits),
            documents_router(document_timeout_s),
            receipt_keys_handler(receipt_keys),
        ],
        ready=ready,
        max_body_bytes=max_body_bytes,
        body_timeout_s=body_timeout_s,
        security_schemes=SECURITY_SCHEMES,
        dependencies={
            "edge": Provide(provide_context),
            "documents": Provide(provide_documents),
            "receipts": Provide(provide_receipts),
        },
    )


def start_edge(runtime: Runtime) -> SocketLimits:
    """Serve the node API on the runtime until it stops; what its WebSocket connections hold
    against their caps is returned, for whoever watches them (tests do)."""
    settings = runtime.settings
    commands = CommandClient(runtime.nc, timeout=settings.command_timeout_s)
    limits = EdgeLimits(runtime.js, Violations(replica=runtime.replica, window_s=settings.rate_limit_window_s))
    fetches = FetchRelay(
        commands, FetchSlots(settings.edge_max_fetches_per_node), timeout_s=settings.edge_fetch_timeout_s
    )
    context = EdgeContext(commands, settings.ip_hash_salt, limits=limits, fetches=fetches)
    runtime.spawn(watch_limits_config(runtime.js, limits, runtime.stopping), name="limits-config")
    runtime.spawn(report_violations(commands, limits.violations, runtime.stopping), name="limits-violations")
    socket_limits = SocketLimits.from_settings(settings)
    NODE_CONNECTIONS.set_function(lambda: socket_limits.per_node.held())
    app = create_app(
        context=context,
        ready=runtime.ready,
        max_body_bytes=settings.max_body_bytes,
        max_frame_bytes=settings.max_frame_bytes,
        admin_token=settings.admin_token,
        admin_name=settings.admin_name,
        socket_limits=socket_limits,
        body_timeout_s=settings.http_body_timeout_s,
        requests_in_flight=InFlight(settings.edge_max_requests_in_flight, "HTTP requests"),
        documents=DocumentServer(
            BodyStreams(runtime.js), max_bytes=settings.max_document_bytes, grants=FetchGrants(runtime.js)
        ),
        document_timeout_s=settings.document_timeout_s,
        receipt_keys=PublishedKeys(settings.receipt_keys_path),
        issued_receipts=IssuedReceipts(runtime.js, runtime.store),
    )
    serve_http(
        runtime, app, host=settings.edge_host, port=settings.edge_port, ws_max_bytes=4 * settings.max_frame_bytes
    )
    return socket_limits
