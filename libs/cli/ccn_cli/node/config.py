"""What a node is told at start: where the edge is, what it runs, and every bound it keeps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec

from ccn_cli.node.backoff import Backoff

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_CONCURRENCY = 64
MiB = 1024 * 1024


MIN_JOB_MEMORY_MIB = 256  # a worker with every job library loaded holds about 230 MiB of data
MAX_JOB_MEMORY_MIB = 1024 * 1024
MAX_JOB_CPU_S = 24 * 3600


class ConfigError(ValueError):
    """A node option that cannot be used; the message says which and why."""


class JobLimits(msgspec.Struct, frozen=True, kw_only=True):
    """What one job may use in its worker process, besides the wall clock (`job_timeout_s`).

    `cpu_s`: CPU seconds (RLIMIT_CPU, counted from the job's start); `memory_mib`: the worker's
    data (RLIMIT_DATA: heap and private mappings, which is what a runaway allocation grows,
    while shared libraries' mappings do not count). Only worker processes can be held to them."""

    cpu_s: int = 60
    memory_mib: int = 1024


class NodeConfig(msgspec.Struct, frozen=True, kw_only=True):
    edge_url: str
    home: Path
    name: str = "default"
    job_types: tuple[str, ...] = ("extract_text",)
    concurrency: int = 1
    # an offer above this is refused with JobFail; a frame above max_frame_bytes ends the connection
    max_offer_bytes: int = 8 * MiB
    max_frame_bytes: int = 16 * MiB
    # a result frame above this is not sent (the edge's own frame limit is 1 MiB by default): JobFail instead
    max_result_bytes: int = 1 * MiB
    job_timeout_s: float = 120.0
    grace_s: float = 30.0
    hello_timeout_s: float = 10.0
    http_timeout_s: float = 15.0
    ack_wait_s: float = 5.0
    ping_interval_s: float = 30.0
    executor: Literal["process", "thread"] = "process"
    job_limits: JobLimits = JobLimits()
    backoff: Backoff = Backoff()


def validate_config(config: NodeConfig, known_job_types: frozenset[str]) -> NodeConfig:
    """The config unchanged, or ConfigError naming the first option that is wrong."""
    if not NAME_PATTERN.match(config.name):
        raise ConfigError(f"--name {config.name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if not 1 <= config.concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, not {config.concurrency}")
    if not config.job_types:
        raise ConfigError("--job-types names no job type")
    unknown = sorted(set(config.job_types) - known_job_types)
    if unknown:
        raise ConfigError(
            f"--job-types: this node cannot run {', '.join(unknown)}; it runs {', '.join(sorted(known_job_types))}"
        )
    if config.max_offer_bytes > config.max_frame_bytes:
        raise ConfigError("the offer limit cannot exceed the frame limit")
    if not 1 <= config.job_limits.cpu_s <= MAX_JOB_CPU_S:
        raise ConfigError(f"--job-cpu must be between 1 and {MAX_JOB_CPU_S} seconds, not {config.job_limits.cpu_s}")
    if not MIN_JOB_MEMORY_MIB <= config.job_limits.memory_mib <= MAX_JOB_MEMORY_MIB:
        raise ConfigError(
            f"--job-memory must be between {MIN_JOB_MEMORY_MIB} and {MAX_JOB_MEMORY_MIB} MiB, "
            f"not {config.job_limits.memory_mib}"
        )
    ws_url(config.edge_url)
    return config


def parse_job_types(raw: str) -> tuple[str, ...]:
    """ "extract_text, x" -> ("extract_text", "x"): trimmed, empty items dropped, order kept, no repeats."""
    return tuple(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))


def ws_url(edge_url: str) -> str:
    """The edge's WebSocket endpoint: http://host:port[/prefix] -> ws://host:port[/prefix]/ws."""
    parts = urlsplit(edge_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigError(f"--edge {edge_url!r}: expected a URL like http://127.0.0.1:8080")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


def http_url(edge_url: str) -> str:
    """The edge's HTTP base URL, without a trailing slash (ws:// given → http://)."""
    parts = urlsplit(edge_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
