"""Admins' rate-limit API: GET and PUT /admin/limits, behind the admin token.

A PUT stores the whole set of limits in the config bucket after checking it (bounds, a chunk
within its burst, job types this edge knows); every edge watches the key and applies it within
moments, with no restart. `?revision=N` makes the write conditional on the stored revision
(409 when someone else wrote since), so two admins cannot silently overwrite each other.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Router, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from ccn_core.errors import BadInput
from ccn_core.rate_limit_config import RateLimits, checked
from ccn_edge.context import EdgeContext
from ccn_jobs.registry import JOB_TYPES
from ccn_web.auth import ADMIN_SECURITY, admin_guard


class LimitsView(msgspec.Struct, frozen=True, kw_only=True):
    limits: RateLimits
    revision: int  # of the stored limits; 0 when none are stored and the defaults apply
    source: Literal["stored", "defaults"]
    applied_revision: int  # what this edge enforces now (it follows the store within moments)


def _known_job_types(limits: RateLimits) -> RateLimits:
    unknown = sorted(set(limits.per_job_type) - set(JOB_TYPES))
    if unknown:
        raise BadInput(
            f"unknown job types {', '.join(unknown)}; known: {', '.join(sorted(JOB_TYPES))}", field="per_job_type"
        )
    return limits


@get("/", summary="The rate limits in force", security=ADMIN_SECURITY)
async def show_limits(edge: NamedDependency[EdgeContext]) -> LimitsView:
    limits, revision = await edge.limits.stored_config()
    return LimitsView(
        limits=limits,
        revision=revision,
        source="stored" if revision else "defaults",
        applied_revision=edge.limits.config_revision,
    )


@put(
    "/",
    summary="Set the rate limits",
    description="Replaces every limit: `per_node` (by action: http.telemetry, http.job, http.job_result, "
    "http.job_fail, http.fetch, ws.ready, ws.result, ws.fail, ws.heartbeat, ws.fetch), `per_job_type`, `global`, each "
    "{rate, period_s, burst, chunk?}; `enabled: false` lifts them all. Every edge applies them at once.",
    security=ADMIN_SECURITY,
)
async def set_limits(
    data: JSONBody[RateLimits],
    edge: NamedDependency[EdgeContext],
    revision: Annotated[int | None, QueryParameter(ge=0, le=2**63 - 1)] = None,
) -> LimitsView:
    limits = _known_job_types(checked(data))
    stored = await edge.limits.store_config(limits, revision=revision)
    return LimitsView(limits=limits, revision=stored, source="stored", applied_revision=edge.limits.config_revision)


def limits_router(admin_token: str) -> Router:
    return Router(
        "/admin/limits", route_handlers=[show_limits, set_limits], guards=[admin_guard(admin_token)], tags=["admin"]
    )
