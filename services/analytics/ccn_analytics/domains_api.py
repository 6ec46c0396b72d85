"""GET /admin/domains: the crawl allow-list and its robots audit, from the community_domains
read model, paged by domain; GET /admin/domains/{domain}: one domain's policy and its whole
history, read from CCN_POLICY itself (every change, who made it, when, under which request)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from ccn_analytics.paging import LimitParam
from ccn_core import subjects
from ccn_core.domain.domain_policy import canonical_domain, policy_id
from ccn_core.errors import NotFound, Unavailable
from ccn_core.eventstore import EventStore
from ccn_core.topology import POLICY
from ccn_proto.constraints import SINGLE_LINE_PATTERN
from ccn_proto.envelope import Actor, Envelope
from ccn_web.auth import ADMIN_SECURITY

# the newest events of a domain's history a reply carries; a policy changed more often than this
# is read in full from the audit trail (GET /admin/audit?event_type=...)
MAX_HISTORY = 1000
DomainPath = Annotated[
    str,
    PathParameter(
        description="The domain, as written or canonical (IDNA).", max_length=512, pattern=SINGLE_LINE_PATTERN
    ),
]
_AFTER = Annotated[
    str | None, QueryParameter(description="next_cursor of the previous page.", pattern=r"^[a-z0-9_.-]{1,128}$")
]


class DomainPolicyRow(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    policy_id: str
    permission: Literal["allowed", "blocked"]
    include_subdomains: bool
    requests_per_minute: int | None
    requests_per_hour: int | None
    max_concurrent: int | None
    allowed_paths: list[str]
    allowed_patterns: list[str]
    notes: str | None
    block_reason: str | None
    reviewer: str | None
    reviewed_at: datetime | None
    changed_by: str
    first_decided_at: datetime
    updated_at: datetime
    last_event_type: str
    version: int  # CCN_POLICY sequence of the latest change


class DomainPage(msgspec.Struct, frozen=True, kw_only=True):
    domains: list[DomainPolicyRow]
    next_cursor: str | None
    has_more: bool


class PolicyChange(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    occurred_at: datetime
    event_type: str
    actor: Actor
    correlation_id: str
    data: dict[str, Any]  # the event as stored (JSON of any shape)


class DomainDetail(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    policy: DomainPolicyRow | None  # None until the read model has caught up with the first change
    history: list[PolicyChange]  # oldest first
    history_truncated: bool  # only the newest MAX_HISTORY changes are here


_COLUMNS = """domain, policy_id, permission, include_subdomains, requests_per_minute, requests_per_hour,
max_concurrent, allowed_paths, allowed_patterns, notes, block_reason, reviewer, reviewed_at, changed_by,
first_decided_at, updated_at, last_event_type, last_seq"""
_PAGE = f"""SELECT {_COLUMNS} FROM community_domains
WHERE ($1::text IS NULL OR domain > $1) AND ($2::text IS NULL OR permission = $2)
ORDER BY domain LIMIT $3"""  # noqa: S608 - constants
_ONE = f"SELECT {_COLUMNS} FROM community_domains WHERE policy_id = $1"  # noqa: S608 - constants
_decode_change = msgspec.json.Decoder(Envelope[dict[str, Any]]).decode


def _row(record: asyncpg.Record) -> DomainPolicyRow:
    return DomainPolicyRow(
        domain=record["domain"],
        policy_id=record["policy_id"],
        permission=record["permission"],
        include_subdomains=record["include_subdomains"],
        requests_per_minute=record["requests_per_minute"],
        requests_per_hour=record["requests_per_hour"],
        max_concurrent=record["max_concurrent"],
        allowed_paths=list(record["allowed_paths"]),
        allowed_patterns=list(record["allowed_patterns"]),
        notes=record["notes"],
        block_reason=record["block_reason"],
        reviewer=record["reviewer"],
        reviewed_at=record["reviewed_at"],
        changed_by=record["changed_by"],
        first_decided_at=record["first_decided_at"],
        updated_at=record["updated_at"],
        last_event_type=record["last_event_type"],
        version=record["last_seq"],
    )


class DomainReader:
    def __init__(self, pool: asyncpg.Pool, store: EventStore | None) -> None:
        self._pool = pool
        self._store = store

    async def page(self, *, after: str | None, permission: str | None, limit: int) -> DomainPage:
        rows = await self._pool.fetch(_PAGE, after, permission, limit + 1)
        domains = [_row(record) for record in rows[:limit]]
        more = len(rows) > limit
        return DomainPage(domains=domains, next_cursor=domains[-1].domain if more and domains else None, has_more=more)

    async def detail(self, written: str) -> DomainDetail:
        domain = canonical_domain(written)
        if self._store is None:
            raise Unavailable("this analytics server reads no event stream")
        aggregate_id = policy_id(domain)
        stored = await self._store.read(POLICY.name, subjects.aggregate_filter("domain", aggregate_id))
        record = await self._pool.fetchrow(_ONE, aggregate_id)
        if not stored and record is None:
            raise NotFound(f"no policy for {domain}")
        history = []
        for event in stored[-MAX_HISTORY:]:
            envelope = _decode_change(event.data)
            history.append(
                PolicyChange(
                    seq=event.seq,
                    occurred_at=envelope.occurred_at,
                    event_type=envelope.type,
                    actor=envelope.actor,
                    correlation_id=envelope.correlation_id,
                    data=envelope.data,
                )
            )
        return DomainDetail(
            domain=domain,
            policy=_row(record) if record is not None else None,
            history=history,
            history_truncated=len(stored) > MAX_HISTORY,
        )


@get(
    "/domains",
    summary="The crawl allow-list: every reviewed domain with its limits and review",
    security=ADMIN_SECURITY,
)
async def list_domains(
    domain_reader: NamedDependency[DomainReader],
    permission: Annotated[
        Literal["allowed", "blocked"] | None, QueryParameter(description="Only allowed or only blocked domains.")
    ] = None,
    cursor: _AFTER = None,
    limit: LimitParam = 100,
) -> DomainPage:
    return await domain_reader.page(after=cursor, permission=permission, limit=limit)


@get(
    "/domains/{domain:str}",
    summary="A domain's policy and the history of its changes",
    security=ADMIN_SECURITY,
)
async def domain_detail(domain_reader: NamedDependency[DomainReader], domain: DomainPath) -> DomainDetail:
    return await domain_reader.detail(domain)
