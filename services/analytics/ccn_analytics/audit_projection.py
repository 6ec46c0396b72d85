"""The audit trail projection: every event of an audited stream → one audit_log row.

Envelopes are decoded with their data left raw, so the who/what/when columns never depend on an
event's schema. `details` comes from the data by allow-list: an event type joins the trail's
details with one entry in AUDITED (its Struct), which names the fields kept; secrets are then
dropped by name, at every depth, so a field added to a Struct later cannot leak a hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from ccn_core import subjects
from ccn_core.db import Connection
from ccn_core.eventstore import StoredEvent
from ccn_core.logging import get_logger
from ccn_core.topology import AUDIT_LOG, ConsumerSpec
from ccn_proto.datasets import NodeRetracted, ReviewApproved, ReviewRejected, VersionPublished
from ccn_proto.domains import DOMAIN_EVENT_TYPES
from ccn_proto.envelope import Envelope
from ccn_proto.nodes import NODE_EVENT_TYPES
from ccn_proto.results import ResultDiscarded, ResultReleased

log = get_logger("ccn.analytics.audit")

# Secrets, their hashes, and what could re-identify a client: an auditor needs none of them.
_SECRET_SUFFIXES = ("_token_hash", "_token", "_secret", "password")
_SECRET_NAMES = frozenset({"token", "secret", "idempotency_key_hash", "request_fingerprint", "ip_hash"})


def is_secret(field: str) -> bool:
    return field in _SECRET_NAMES or field.endswith(_SECRET_SUFFIXES)


def detail_fields(event_type: type[msgspec.Struct]) -> tuple[str, tuple[str, ...]]:
    """(type tag, the wire names of its fields that may appear in `details`)."""
    tag = event_type.__struct_config__.tag
    if not isinstance(tag, str):
        raise TypeError(f"{event_type.__name__} needs a string tag to be audited")
    return tag, tuple(f.encode_name for f in msgspec.structs.fields(event_type) if not is_secret(f.encode_name))


# Event type → fields recorded in `details`. Admin actions, bans and reviews join with their Structs.
# Domain-policy changes are admins' acts, each with every field it set (the allow-list's review trail).
# Admins' quarantine decisions (release, discard of a rejected result) with the result they name.
_QUARANTINE_DECISIONS: tuple[type[msgspec.Struct], ...] = (ResultReleased, ResultDiscarded)
AUDITED: Mapping[str, tuple[str, ...]] = {
    **dict(detail_fields(t) for t in (*NODE_EVENT_TYPES, *DOMAIN_EVENT_TYPES, *_QUARANTINE_DECISIONS)),
    # dataset decisions: a review's changes are one record's (bounded by the schema's fields); a
    # retraction's may be every field of the dataset, so it is audited by its counts, and its
    # changes stay in the stream (`ccn datasets diff` shows them)
    **dict(detail_fields(t) for t in (ReviewApproved, ReviewRejected, VersionPublished)),
    "dataset.node_retracted": tuple(
        name for name in detail_fields(NodeRetracted)[1] if name not in ("changes", "reviews_dropped")
    ),
}
# a node's work record, one event per node per window: the jobs' own steps are in the
# orchestrator log, and what the record leads to (health, backoff) is audited as it happens
NOT_AUDITED = frozenset({"work_recorded"})  # event names, as the subject's last token

_decode_envelope = msgspec.json.Decoder(Envelope[msgspec.Raw]).decode
_decode_data = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode


def _scrub(value: Any) -> Any:  # JSON values of any shape: Any is the honest type
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if not is_secret(k)}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def audit_details(event_type: str, data: msgspec.Raw) -> dict[str, Any] | None:
    """The data an auditor may see, or None when the type has no AUDITED entry (details stay
    empty until someone vets its fields: an unknown type must not leak what it carries)."""
    fields = AUDITED.get(event_type)
    if fields is None:
        return None
    decoded = _decode_data(data)
    return {name: _scrub(decoded[name]) for name in fields if name in decoded}


AuditRow = tuple[str, str, int, datetime, str, str, str, int, str, str, str, str | None, str]


def audit_row(stored: StoredEvent, stream: str, unmapped: set[str]) -> AuditRow:
    envelope = _decode_envelope(stored.data)
    aggregate_type, _, _ = subjects.split_event(stored.subject)
    details = audit_details(envelope.type, envelope.data)
    if details is None and envelope.type not in unmapped:
        unmapped.add(envelope.type)
        log.warning("audited event type has no details mapping; recording it without details", type=envelope.type)
    return (
        envelope.event_id,
        stream,
        stored.seq,
        envelope.occurred_at,
        aggregate_type,
        envelope.aggregate_id,
        envelope.type,
        envelope.schema_version,
        envelope.actor.kind,
        envelope.actor.id,
        envelope.correlation_id,
        envelope.causation_id,
        _encode(details or {}).decode(),
    )


# One statement per batch: the rows travel as 13 arrays, so a batch costs one round trip and one
# plan, and ON CONFLICT keeps an event re-appended outside the duplicate window to one row.
_INSERT = """
INSERT INTO audit_log (event_id, stream, stream_seq, occurred_at, aggregate_type, aggregate_id, event_type,
                       schema_version, actor_kind, actor_id, correlation_id, causation_id, details)
SELECT e, s, q, o, at, ai, et, v, ak, ac, c, ca, d::jsonb
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
            $8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
     AS r(e, s, q, o, at, ai, et, v, ak, ac, c, ca, d)
ON CONFLICT (event_id) DO NOTHING"""


class AuditLogProjection:
    """A Projection (ccn_core.projection) into audit_log; one instance per audited stream."""

    tables = ("audit_log",)

    def __init__(self, spec: ConsumerSpec = AUDIT_LOG, *, only: frozenset[str] | None = None) -> None:
        """`only`: the event names audited, when the consumer hears more (a dense read of a
        stream whose other events are no auditor's business)."""
        self.spec = spec
        self._only = only
        self._unmapped: set[str] = set()

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        rows = [
            audit_row(stored, self.spec.stream, self._unmapped)
            for stored in events
            if (name := subjects.split_event(stored.subject)[2]) not in NOT_AUDITED
            and (self._only is None or name in self._only)
        ]
        if rows:
            await conn.execute(_INSERT, *(list(column) for column in zip(*rows, strict=True)))
