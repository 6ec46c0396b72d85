"""Settings, read from the environment once, in main(), and passed down.

Nothing else in the project reads os.environ: a test builds a Settings with the fields it wants.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

import msgspec


class SettingsError(ValueError):
    """A variable in the environment has a value the project cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    home: Path = Path(".ccn")
    nats_url: str | None = None
    database_url: str | None = None
    nats_port: int = 4222
    postgres_port: int = 5433
    edge_host: str = "127.0.0.1"
    edge_port: int = 8080
    analytics_host: str = "127.0.0.1"
    analytics_port: int = 8081
    # where services without HTTP of their own (registry, scheduler, scheduler-projector) serve
    # /healthz and /readyz: loopback on a developer's machine, 0.0.0.0 in a container for the kubelet
    health_host: str = "127.0.0.1"
    registry_health_port: int = 8091
    scheduler_health_port: int = 8092
    scheduler_projector_health_port: int = 8093
    fetch_proxy_health_port: int = 8094
    crawler_health_port: int = 8095
    validation_health_port: int = 8096
    merge_health_port: int = 8097
    # `ccn up --demo` serves the local fixture web (ccn_cli.fixture_web) here, for the demo campaign
    demo_web_port: int = 8421
    stream_replicas: int = 1
    # "always" fsyncs every append before the ack (production, with R3); a period trades the last
    # few seconds of acked appends on a power cut for speed, which only a dev machine can afford.
    nats_sync_interval: str = "2m"
    duplicate_window_s: float = 120.0
    telemetry_max_age_s: float = 7 * 24 * 3600.0
    # finished jobs stay in the hot read-model tables this long, then move to the archive tables
    job_retention_s: float = 7 * 24 * 3600.0
    admin_token: str = ""
    # who holds the admin token: the name its actions carry into the audit trail
    admin_name: str = "admin"
    token_secret: str = ""
    ip_hash_salt: str = ""
    max_body_bytes: int = 64 * 1024
    # a job result (extracted text, parsed records) is far larger than any other request body
    max_frame_bytes: int = 1024 * 1024
    command_timeout_s: float = 5.0
    # on SIGTERM, how long the parts (projections, reactors) get to finish the batch in hand before
    # they are cancelled; a pod's terminationGracePeriodSeconds must exceed it plus the HTTP grace
    shutdown_grace_s: float = 10.0
    # Connection limits, each per edge replica (counted in its one process, so N replicas behind a
    # balancer admit N times as many). A socket that has not said hello is unknown and costs the
    # edge a task and up to one frame in the server's buffer (4 x max_frame_bytes, 4 MiB) before
    # its first frame is judged. A node says hello in one round trip, so 16 at once from one
    # address (many nodes behind a NAT reconnecting together) is already a crowd; 256 in all keeps
    # the buffered worst case near 1 GiB and is still far more hellos in flight than the registry
    # answers in the time one takes.
    ws_max_ungreeted_per_ip: int = 16
    ws_max_ungreeted: int = 256
    # a node holds one connection at a time; the rest is room for sockets its links dropped that
    # the edge has not yet noticed are dead (it does within 40 s), so a reconnect gets in
    ws_max_connections_per_node: int = 4
    # work an edge replica has out at once (ccn_edge.in_flight): HTTP requests on /compute and
    # /jobs, and node frames that call a service; past either, 503 / an error frame, retry_after 1 s
    edge_max_requests_in_flight: int = 256
    edge_max_frames_in_flight: int = 2048
    # fetches one node may have out at the fetch proxy through one edge replica (a `fetch` frame or
    # POST /compute/jobs/{id}/fetch), and how long the edge waits for the proxy's answer: above the
    # proxy's own total time for a fetch, so a slow site is its failure, not the edge's timeout
    edge_max_fetches_per_node: int = 8
    edge_fetch_timeout_s: float = 45.0
    # an edge reports the requests its rate limits refused once per node per window this long
    # (ccn_edge.rate_limits): a flood makes one node.rate_limited event a window per edge replica
    rate_limit_window_s: float = 10.0
    # a request's whole body, from the first read: a 1-2 MiB batch chunk at 1 Mbit/s fits
    http_body_timeout_s: float = 30.0
    # a request line and headers, from the connection being ready for them (uvicorn has no such
    # limit of its own: a client dribbling a header byte at a time held a connection for ever)
    http_headers_timeout_s: float = 10.0
    http_keep_alive_s: int = 5  # an idle keep-alive connection is closed after this (uvicorn's default)
    http_max_header_bytes: int = 16 * 1024  # request line and headers together (h11's default)
    # Proxies whose X-Forwarded-For names the client (comma-separated addresses or CIDRs; "*" for
    # any): the caller's ip_hash and the per-address caps come from it. None by default, so no
    # client can choose the address it is counted under by sending the header itself.
    forwarded_allow_ips: str = ""
    # A document body a node reads by reference through the edge (GET /compute/jobs/{id}/documents/
    # {sha256}): at most this many bytes (the DocumentRef bound, 64 MiB, is the ceiling), sent
    # within this many seconds of the request, or the connection is closed part-way.
    max_document_bytes: int = 64 * 1024 * 1024
    document_timeout_s: float = 120.0
    # a node whose socket closed without bye keeps its jobs this long, for a reconnect naming them
    node_release_grace_s: float = 10.0
    # The claim owner holds every live (not finished) job in memory, with its payload (ADR 0016).
    # Past either bound a creation is refused with 503 and Retry-After until nodes catch up.
    scheduler_max_live_jobs: int = 500_000
    scheduler_max_payload_bytes: int = 1024 * 1024 * 1024
    # 0 turns node governance off on the claim path (eligibility, fair shares, shadow-bans...):
    # only to measure what it costs (make bench); every deployment runs with it on
    scheduler_governance: int = 1
    # 0: the registry runs no governance observer (no work records, no liveness verdicts); only
    # for measuring what governance costs (bench), never in service
    registry_governance_observer: int = 1
    # The fetch proxy (ccn_fetch_proxy): bounds of one outbound request, and the development
    # allowance, host:port pairs (comma-separated) whose loopback answers it may connect to (the
    # local fixture web; ccn_cli.fixture_web). Empty, as it must be everywhere but a dev machine.
    fetch_max_body_bytes: int = 16 * 1024 * 1024
    fetch_connect_timeout_s: float = 5.0
    fetch_read_timeout_s: float = 10.0
    fetch_total_timeout_s: float = 20.0
    fetch_dev_loopback: str = ""
    log_level: str = "info"
    log_format: str = "json"
    otel_exporter: str = "none"
    # where "otlp" sends spans (OTLP over HTTP): the collector's base URL, /v1/traces is added
    otel_endpoint: str = ""
    replica_id: str = ""
    # the service's receipt signing keys (ccn_core.receipts): a directory under the secrets,
    # made by `ccn up` on first start; empty: <home>/receipt-keys
    receipt_keys_dir: str = ""

    @property
    def embedded_nats(self) -> bool:
        return self.nats_url is None

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def effective_nats_url(self) -> str:
        return self.nats_url or f"nats://127.0.0.1:{self.nats_port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"postgresql://ccn@127.0.0.1:{self.postgres_port}/ccn"

    @property
    def receipt_keys_path(self) -> Path:
        return Path(self.receipt_keys_dir) if self.receipt_keys_dir else self.home / "receipt-keys"

    def replica(self, service: str) -> str:
        return self.replica_id or f"{service}-{socket.gethostname()}-{os.getpid()}"


_INT_FIELDS = {
    "CCN_NATS_PORT": "nats_port",
    "CCN_POSTGRES_PORT": "postgres_port",
    "CCN_EDGE_PORT": "edge_port",
    "CCN_ANALYTICS_PORT": "analytics_port",
    "CCN_REGISTRY_HEALTH_PORT": "registry_health_port",
    "CCN_SCHEDULER_HEALTH_PORT": "scheduler_health_port",
    "CCN_SCHEDULER_PROJECTOR_HEALTH_PORT": "scheduler_projector_health_port",
    "CCN_FETCH_PROXY_HEALTH_PORT": "fetch_proxy_health_port",
    "CCN_FETCH_MAX_BODY_BYTES": "fetch_max_body_bytes",
    "CCN_CRAWLER_HEALTH_PORT": "crawler_health_port",
    "CCN_VALIDATION_HEALTH_PORT": "validation_health_port",
    "CCN_MERGE_HEALTH_PORT": "merge_health_port",
    "CCN_DEMO_WEB_PORT": "demo_web_port",
    "CCN_STREAM_REPLICAS": "stream_replicas",
    "CCN_MAX_BODY_BYTES": "max_body_bytes",
    "CCN_MAX_FRAME_BYTES": "max_frame_bytes",
    "CCN_WS_MAX_UNGREETED_PER_IP": "ws_max_ungreeted_per_ip",
    "CCN_WS_MAX_UNGREETED": "ws_max_ungreeted",
    "CCN_WS_MAX_CONNECTIONS_PER_NODE": "ws_max_connections_per_node",
    "CCN_EDGE_MAX_REQUESTS_IN_FLIGHT": "edge_max_requests_in_flight",
    "CCN_EDGE_MAX_FRAMES_IN_FLIGHT": "edge_max_frames_in_flight",
    "CCN_EDGE_MAX_FETCHES_PER_NODE": "edge_max_fetches_per_node",
    "CCN_HTTP_KEEP_ALIVE_S": "http_keep_alive_s",
    "CCN_HTTP_MAX_HEADER_BYTES": "http_max_header_bytes",
    "CCN_SCHEDULER_MAX_LIVE_JOBS": "scheduler_max_live_jobs",
    "CCN_SCHEDULER_MAX_PAYLOAD_BYTES": "scheduler_max_payload_bytes",
    "CCN_MAX_DOCUMENT_BYTES": "max_document_bytes",
    "CCN_SCHEDULER_GOVERNANCE": "scheduler_governance",
    "CCN_REGISTRY_GOVERNANCE_OBSERVER": "registry_governance_observer",
}
_FLOAT_FIELDS = {
    "CCN_DUPLICATE_WINDOW_S": "duplicate_window_s",
    "CCN_TELEMETRY_MAX_AGE_S": "telemetry_max_age_s",
    "CCN_JOB_RETENTION_S": "job_retention_s",
    "CCN_COMMAND_TIMEOUT_S": "command_timeout_s",
    "CCN_HTTP_BODY_TIMEOUT_S": "http_body_timeout_s",
    "CCN_HTTP_HEADERS_TIMEOUT_S": "http_headers_timeout_s",
    "CCN_SHUTDOWN_GRACE_S": "shutdown_grace_s",
    "CCN_NODE_RELEASE_GRACE_S": "node_release_grace_s",
    "CCN_DOCUMENT_TIMEOUT_S": "document_timeout_s",
    "CCN_RATE_LIMIT_WINDOW_S": "rate_limit_window_s",
    "CCN_EDGE_FETCH_TIMEOUT_S": "edge_fetch_timeout_s",
    "CCN_FETCH_CONNECT_TIMEOUT_S": "fetch_connect_timeout_s",
    "CCN_FETCH_READ_TIMEOUT_S": "fetch_read_timeout_s",
    "CCN_FETCH_TOTAL_TIMEOUT_S": "fetch_total_timeout_s",
}
# a limit of 0 would refuse everything, a timeout of 0 every request: never what was meant
_POSITIVE_FIELDS = (
    "ws_max_ungreeted_per_ip",
    "ws_max_ungreeted",
    "ws_max_connections_per_node",
    "edge_max_requests_in_flight",
    "edge_max_frames_in_flight",
    "edge_max_fetches_per_node",
    "edge_fetch_timeout_s",
    "http_body_timeout_s",
    "http_headers_timeout_s",
    "http_keep_alive_s",
    "http_max_header_bytes",
    "shutdown_grace_s",
    "scheduler_max_live_jobs",
    "scheduler_max_payload_bytes",
    "max_document_bytes",
    "document_timeout_s",
    "fetch_max_body_bytes",
    "fetch_connect_timeout_s",
    "fetch_read_timeout_s",
    "fetch_total_timeout_s",
)
_STR_FIELDS = {
    "CCN_NATS_URL": "nats_url",
    "CCN_DATABASE_URL": "database_url",
    "CCN_EDGE_HOST": "edge_host",
    "CCN_HEALTH_HOST": "health_host",
    "CCN_FORWARDED_ALLOW_IPS": "forwarded_allow_ips",
    "CCN_ANALYTICS_HOST": "analytics_host",
    "CCN_NATS_SYNC_INTERVAL": "nats_sync_interval",
    "CCN_ADMIN_TOKEN": "admin_token",
    "CCN_ADMIN_NAME": "admin_name",
    "CCN_TOKEN_SECRET": "token_secret",
    "CCN_IP_HASH_SALT": "ip_hash_salt",
    "CCN_LOG_LEVEL": "log_level",
    "CCN_LOG_FORMAT": "log_format",
    "CCN_OTEL_EXPORTER": "otel_exporter",
    "CCN_OTEL_ENDPOINT": "otel_endpoint",
    "CCN_REPLICA_ID": "replica_id",
    "CCN_FETCH_DEV_LOOPBACK": "fetch_dev_loopback",
    "CCN_RECEIPT_KEYS_DIR": "receipt_keys_dir",
}


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for var, field in _STR_FIELDS.items():
        if env.get(var):
            values[field] = env[var]
    for var, field in _INT_FIELDS.items():
        if env.get(var):
            values[field] = _parse(var, env[var], int)
    for var, field in _FLOAT_FIELDS.items():
        if env.get(var):
            values[field] = _parse(var, env[var], float)
    if env.get("CCN_HOME"):
        values["home"] = Path(env["CCN_HOME"])
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.stream_replicas not in (1, 3, 5):
        raise SettingsError(f"CCN_STREAM_REPLICAS must be 1, 3 or 5, not {settings.stream_replicas}")
    variables = {field: var for var, field in (_INT_FIELDS | _FLOAT_FIELDS).items()}
    for field in _POSITIVE_FIELDS:
        if getattr(settings, field) <= 0:
            raise SettingsError(f"{variables[field]} must be above 0, not {getattr(settings, field)}")
    if not 1 <= settings.rate_limit_window_s <= 3600:
        raise SettingsError(f"CCN_RATE_LIMIT_WINDOW_S must be from 1 to 3600, not {settings.rate_limit_window_s}")
    if not 0 <= settings.node_release_grace_s <= 3600:
        raise SettingsError(f"CCN_NODE_RELEASE_GRACE_S must be from 0 to 3600, not {settings.node_release_grace_s}")
    return settings


def _parse(var: str, raw: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is not a valid {kind.__name__}") from None
