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
    registry_health_port: int = 8091
    scheduler_health_port: int = 8092
    scheduler_projector_health_port: int = 8093
    stream_replicas: int = 1
    # "always" fsyncs every append before the ack (production, with R3); a period trades the last
    # few seconds of acked appends on a power cut for speed, which only a dev machine can afford.
    nats_sync_interval: str = "2m"
    duplicate_window_s: float = 120.0
    telemetry_max_age_s: float = 7 * 24 * 3600.0
    # finished jobs stay in the hot read-model tables this long, then move to the archive tables
    job_retention_s: float = 7 * 24 * 3600.0
    admin_token: str = ""
    token_secret: str = ""
    ip_hash_salt: str = ""
    max_body_bytes: int = 64 * 1024
    # a job result (extracted text, parsed records) is far larger than any other request body
    max_frame_bytes: int = 1024 * 1024
    command_timeout_s: float = 5.0
    log_level: str = "info"
    log_format: str = "json"
    otel_exporter: str = "none"
    replica_id: str = ""

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
    "CCN_STREAM_REPLICAS": "stream_replicas",
    "CCN_MAX_BODY_BYTES": "max_body_bytes",
    "CCN_MAX_FRAME_BYTES": "max_frame_bytes",
}
_FLOAT_FIELDS = {
    "CCN_DUPLICATE_WINDOW_S": "duplicate_window_s",
    "CCN_TELEMETRY_MAX_AGE_S": "telemetry_max_age_s",
    "CCN_JOB_RETENTION_S": "job_retention_s",
    "CCN_COMMAND_TIMEOUT_S": "command_timeout_s",
}
_STR_FIELDS = {
    "CCN_NATS_URL": "nats_url",
    "CCN_DATABASE_URL": "database_url",
    "CCN_EDGE_HOST": "edge_host",
    "CCN_ANALYTICS_HOST": "analytics_host",
    "CCN_NATS_SYNC_INTERVAL": "nats_sync_interval",
    "CCN_ADMIN_TOKEN": "admin_token",
    "CCN_TOKEN_SECRET": "token_secret",
    "CCN_IP_HASH_SALT": "ip_hash_salt",
    "CCN_LOG_LEVEL": "log_level",
    "CCN_LOG_FORMAT": "log_format",
    "CCN_OTEL_EXPORTER": "otel_exporter",
    "CCN_REPLICA_ID": "replica_id",
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
    return settings


def _parse(var: str, raw: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{var}={raw!r} is not a valid {kind.__name__}") from None
