"""GET /admin/nodes: every node with its standing (banned, shadow-banned, draining), health,
backoff and running totals, from the node read model; paged by node id. A node's reputation and
the inputs behind it come from its own history: GET /admin/nodes/{id} on the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import asyncpg
import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from ccn_analytics.paging import LimitParam

Standing = Literal["banned", "shadow_banned", "draining"]
_AFTER = Annotated[
    str | None,
    QueryParameter(
        description="next_cursor of the previous page.", pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
    ),
]


class NodeSummary(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    is_active: bool
    health: str
    is_banned: bool
    ban_reason: str | None
    is_shadow_banned: bool
    is_draining: bool
    backoff_stage: str
    backoff_until: datetime | None
    consent_version: str | None
    consent_scopes: list[str] | None
    jobs_completed: int
    jobs_failed: int
    requests_refused: int
    last_seen_at: datetime | None


class NodePage(msgspec.Struct, frozen=True, kw_only=True):
    nodes: list[NodeSummary]
    next_cursor: str | None
    has_more: bool


_SELECT = """
SELECT node_public_id, is_active, health, is_banned, ban_reason, is_shadow_banned, is_draining, backoff_stage,
       backoff_until, consent_version, consent_scopes, jobs_completed, jobs_failed, requests_refused, last_seen_at
FROM community_nodes
WHERE ($1::uuid IS NULL OR node_public_id > $1::uuid)
  AND ($2::text IS NULL OR health = $2)
  AND ($3::text IS NULL
       OR ($3 = 'banned' AND is_banned) OR ($3 = 'shadow_banned' AND is_shadow_banned)
       OR ($3 = 'draining' AND is_draining))
ORDER BY node_public_id
LIMIT $4"""


class NodeReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, *, after: str | None, health: str | None, standing: str | None, limit: int) -> NodePage:
        rows = await self._pool.fetch(_SELECT, after, health, standing, limit + 1)
        nodes = [
            NodeSummary(
                node_id=str(row["node_public_id"]),
                is_active=row["is_active"],
                health=row["health"],
                is_banned=row["is_banned"],
                ban_reason=row["ban_reason"],
                is_shadow_banned=row["is_shadow_banned"],
                is_draining=row["is_draining"],
                backoff_stage=row["backoff_stage"],
                backoff_until=row["backoff_until"],
                consent_version=row["consent_version"],
                consent_scopes=row["consent_scopes"],
                jobs_completed=row["jobs_completed"],
                jobs_failed=row["jobs_failed"],
                requests_refused=row["requests_refused"],
                last_seen_at=row["last_seen_at"],
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        return NodePage(nodes=nodes, next_cursor=nodes[-1].node_id if more and nodes else None, has_more=more)


@get("/nodes", summary="Nodes with their standing, health, backoff and totals")
async def list_nodes(
    node_reader: NamedDependency[NodeReader],
    health: Annotated[
        Literal["healthy", "unstable", "offline", "banned"] | None,
        QueryParameter(description="Only nodes in this health."),
    ] = None,
    standing: Annotated[
        Standing | None, QueryParameter(description="Only banned, shadow-banned or draining nodes.")
    ] = None,
    cursor: _AFTER = None,
    limit: LimitParam = 100,
) -> NodePage:
    return await node_reader.page(after=cursor, health=health, standing=standing, limit=limit)
