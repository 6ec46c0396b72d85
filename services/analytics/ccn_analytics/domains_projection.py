"""The allow-list read model: CCN_POLICY → community_domains, one row per reviewed domain.

A batch reads the rows of the domains it touches, folds its events into them with the
domain-policy decider's own `evolve` (so the table says exactly what the fetch proxies' books
say), and writes each touched row once. An import of thousands of rows is then one read and one
pipelined write per batch, not a statement per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from ccn_core.db import Connection
from ccn_core.domain.domain_policy import DomainPolicyDecider, DomainPolicyState, PolicyLimits
from ccn_core.eventstore import StoredEvent
from ccn_core.topology import DOMAIN_READ_MODEL, ConsumerSpec
from ccn_proto.domains import DomainAllowed, DomainBlocked, DomainEvent
from ccn_proto.envelope import Envelope

_decode = msgspec.json.Decoder(Envelope[DomainEvent]).decode
_COLUMNS = (
    "policy_id, domain, permission, include_subdomains, requests_per_minute, requests_per_hour, max_concurrent, "
    "allowed_paths, allowed_patterns, notes, block_reason, reviewer, reviewed_at, changed_by, first_decided_at, "
    "updated_at, last_event_type, last_seq"
)
_SELECT = f"SELECT {_COLUMNS} FROM community_domains WHERE policy_id = ANY($1::text[])"  # noqa: S608 - constants
_UPSERT = f"""
INSERT INTO community_domains ({_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (policy_id) DO UPDATE SET
    domain = EXCLUDED.domain, permission = EXCLUDED.permission, include_subdomains = EXCLUDED.include_subdomains,
    requests_per_minute = EXCLUDED.requests_per_minute, requests_per_hour = EXCLUDED.requests_per_hour,
    max_concurrent = EXCLUDED.max_concurrent, allowed_paths = EXCLUDED.allowed_paths,
    allowed_patterns = EXCLUDED.allowed_patterns, notes = EXCLUDED.notes, block_reason = EXCLUDED.block_reason,
    reviewer = EXCLUDED.reviewer, reviewed_at = EXCLUDED.reviewed_at, changed_by = EXCLUDED.changed_by,
    updated_at = EXCLUDED.updated_at, last_event_type = EXCLUDED.last_event_type, last_seq = EXCLUDED.last_seq"""  # noqa: S608


class DomainRow(msgspec.Struct, frozen=True, kw_only=True):
    state: DomainPolicyState
    changed_by: str
    first_decided_at: datetime
    updated_at: datetime
    last_event_type: str
    last_seq: int

    def values(self) -> tuple[object, ...]:
        state, limits = self.state, self.state.limits
        return (
            state.policy_id,
            state.domain,
            state.status,
            limits.include_subdomains,
            limits.requests_per_minute,
            limits.requests_per_hour,
            limits.max_concurrent,
            list(limits.allowed_paths),
            list(limits.allowed_patterns),
            limits.notes,
            state.block_reason,
            limits.reviewer,
            limits.reviewed_at,
            self.changed_by,
            self.first_decided_at,
            self.updated_at,
            self.last_event_type,
            self.last_seq,
        )


def row_of(record: asyncpg.Record) -> DomainRow:
    limits = PolicyLimits(
        include_subdomains=record["include_subdomains"],
        requests_per_minute=record["requests_per_minute"],
        requests_per_hour=record["requests_per_hour"],
        max_concurrent=record["max_concurrent"],
        allowed_paths=tuple(record["allowed_paths"]),
        allowed_patterns=tuple(record["allowed_patterns"]),
        notes=record["notes"],
        reviewer=record["reviewer"],
        reviewed_at=record["reviewed_at"],
    )
    state = DomainPolicyState(
        policy_id=record["policy_id"],
        domain=record["domain"],
        status=record["permission"],
        limits=limits,
        block_reason=record["block_reason"],
    )
    return DomainRow(
        state=state,
        changed_by=record["changed_by"],
        first_decided_at=record["first_decided_at"],
        updated_at=record["updated_at"],
        last_event_type=record["last_event_type"],
        last_seq=record["last_seq"],
    )


def folded(decider: DomainPolicyDecider, row: DomainRow | None, envelope: Envelope[DomainEvent], seq: int) -> DomainRow:
    """The row after one more event of its domain."""
    state = row.state if row is not None else decider.initial_state(envelope.aggregate_id)
    if row is None and not isinstance(envelope.data, DomainAllowed | DomainBlocked):
        # an update of a domain never allowed: the decider cannot produce one, so the stream was written by hand
        raise ValueError(f"{envelope.type} of {envelope.aggregate_id} before it was allowed or blocked")
    return DomainRow(
        state=decider.evolve(state, envelope.data),
        changed_by=envelope.data.by,
        first_decided_at=row.first_decided_at if row is not None else envelope.occurred_at,
        updated_at=envelope.occurred_at,
        last_event_type=envelope.type,
        last_seq=seq,
    )


class DomainReadModel:
    """A Projection (ccn_core.projection) of CCN_POLICY into community_domains."""

    tables = ("community_domains",)

    def __init__(self, spec: ConsumerSpec = DOMAIN_READ_MODEL) -> None:
        self.spec = spec
        self._decider = DomainPolicyDecider()

    async def apply(self, conn: Connection, events: Sequence[StoredEvent]) -> None:
        decoded = [(stored.seq, _decode(stored.data)) for stored in events]
        touched = sorted({envelope.aggregate_id for _, envelope in decoded})
        rows: dict[str, DomainRow | None] = dict.fromkeys(touched)
        for record in await conn.fetch(_SELECT, touched):
            rows[record["policy_id"]] = row_of(record)
        for seq, envelope in decoded:
            rows[envelope.aggregate_id] = folded(self._decider, rows[envelope.aggregate_id], envelope, seq)
        await conn.executemany(_UPSERT, [row.values() for row in rows.values() if row is not None])
