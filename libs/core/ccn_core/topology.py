"""The event store's topology as data: every stream and every durable consumer, in one place.

`ccn up` and the tests create them from here; services only name what they use.
"""

from __future__ import annotations

import msgspec
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from ccn_core.settings import Settings


class StreamSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    subjects: tuple[str, ...]
    description: str
    # 0 keeps events forever: the streams are the source of truth, not a buffer.
    max_age_s: float = 0.0


class ConsumerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A durable consumer: a projection (events → Postgres) or a reactor (events → commands)."""

    durable: str
    stream: str
    filter_subjects: tuple[str, ...]
    description: str


NODES = StreamSpec(
    name="CCN_NODES",
    subjects=("ccn.node.>",),
    description="Node aggregate: registration, consent, opt-out, sessions, health, bans",
)
JOBS = StreamSpec(name="CCN_JOBS", subjects=("ccn.job.>",), description="Job aggregate: lifecycle, leases, retries")
FETCH = StreamSpec(name="CCN_FETCH", subjects=("ccn.fetch.>",), description="Every outbound fetch, allowed or blocked")
DATASETS = StreamSpec(
    name="CCN_DATASETS",
    subjects=("ccn.dataset.>",),
    description="Dataset aggregate: proposals, reviews, versions, provenance",
)
POLICY = StreamSpec(name="CCN_POLICY", subjects=("ccn.domain.>",), description="Domain allow-list and robots policy")
ADMIN = StreamSpec(name="CCN_ADMIN", subjects=("ccn.admin.>",), description="Admin actions")
TELEMETRY = StreamSpec(
    name="CCN_TELEMETRY",
    subjects=("ccn.telemetry.>",),
    description="High-volume node telemetry samples (heartbeats); age-limited",
    max_age_s=-1.0,  # resolved from Settings.telemetry_max_age_s
)

STREAMS: tuple[StreamSpec, ...] = (NODES, JOBS, FETCH, DATASETS, POLICY, ADMIN, TELEMETRY)

NODE_READ_MODEL = ConsumerSpec(
    durable="registry_node_read_model",
    stream=NODES.name,
    filter_subjects=("ccn.node.>",),
    description="Projects node events into community_nodes and community_node_sessions",
)
SESSION_LAST_SEEN = ConsumerSpec(
    durable="registry_session_last_seen",
    stream=TELEMETRY.name,
    filter_subjects=("ccn.telemetry.*.heartbeat",),
    description="Projects heartbeats into last_seen_at of nodes and sessions",
)
AUDIT_LOG = ConsumerSpec(
    durable="analytics_audit_log",
    stream=NODES.name,
    filter_subjects=("ccn.node.>",),
    description="Projects node events into audit_log",
)

CONSUMERS: tuple[ConsumerSpec, ...] = (NODE_READ_MODEL, SESSION_LAST_SEEN, AUDIT_LOG)


def stream_for_subject(subject: str) -> StreamSpec:
    aggregate = subject.split(".", 2)[1]
    for spec in STREAMS:
        if any(pattern.split(".")[1] == aggregate for pattern in spec.subjects):
            return spec
    raise ValueError(f"no stream holds {subject!r}")


def stream_config(spec: StreamSpec, settings: Settings) -> StreamConfig:
    max_age = settings.telemetry_max_age_s if spec.max_age_s < 0 else spec.max_age_s
    return StreamConfig(
        name=spec.name,
        description=spec.description,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=max_age or None,
        discard=DiscardPolicy.OLD,
        duplicate_window=settings.duplicate_window_s,
        allow_direct=True,  # aggregate loads read by subject with batched direct gets
        allow_atomic=True,  # a decision of several events is committed whole or not at all
        deny_delete=max_age == 0,
        deny_purge=max_age == 0,
    )


async def ensure_streams(js: JetStreamContext, settings: Settings) -> list[str]:
    """Create or update every stream; returns the names created. Safe to run from many replicas."""
    created: list[str] = []
    for spec in STREAMS:
        config = stream_config(spec, settings)
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config)
            created.append(spec.name)
        else:
            await js.update_stream(config)
    return created
