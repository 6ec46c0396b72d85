"""GET /admin/crawl/domains: crawl analytics per domain (CC-65), from crawl_domain_stats, paged by
domain; `?format=csv` gives the same page as CSV (one column per failure cause and refusal
stage, for a spreadsheet or a BI load), its next cursor in the `X-Next-Cursor` header."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import asyncpg
import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import QueryParameter

from ccn_analytics.crawl_projection import COLUMNS, stats_of_record
from ccn_analytics.crawl_stats import DomainReport, report
from ccn_analytics.paging import Conditions, CursorParam, LimitParam, fetch_page
from ccn_proto.fetch import FailureReason, RefusalStage

FAILURE_REASONS: Final[tuple[str, ...]] = FailureReason.__args__  # type: ignore[attr-defined]
REFUSAL_STAGES: Final[tuple[str, ...]] = RefusalStage.__args__  # type: ignore[attr-defined]
NEXT_CURSOR_HEADER = "X-Next-Cursor"
_SCALARS: Final = tuple(name for name in DomainReport.__struct_fields__ if name not in ("failures", "refusals"))
CSV_COLUMNS: Final[tuple[str, ...]] = (
    *_SCALARS,
    *(f"failures_{reason}" for reason in FAILURE_REASONS),
    *(f"refusals_{stage}" for stage in REFUSAL_STAGES),
)


class CrawlDomainPage(msgspec.Struct, frozen=True, kw_only=True):
    domains: list[DomainReport]
    next_cursor: str | None
    has_more: bool


class _Position(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    domain: Annotated[str, msgspec.Meta(max_length=256)]


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_text(reports: list[DomainReport]) -> str:
    """The reports as CSV, a header row first; counts of causes and stages never seen are 0."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in reports:
        scalars = [_cell(getattr(entry, name)) for name in _SCALARS]
        failures = [entry.failures.get(reason, 0) for reason in FAILURE_REASONS]
        refusals = [entry.refusals.get(stage, 0) for stage in REFUSAL_STAGES]
        writer.writerow([*scalars, *failures, *refusals])
    return out.getvalue()


class CrawlStatsReader:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, *, breaker: str | None, after: str | None, limit: int) -> CrawlDomainPage:
        query = Conditions()
        if breaker is not None:
            query.add(f"COALESCE(breaker_state, 'closed') = {query.arg(breaker)}")
        entries, next_cursor, has_more = await fetch_page(
            self._pool,
            table="crawl_domain_stats",
            columns=", ".join(COLUMNS),
            order=("domain",),
            query=query,
            limit=limit,
            after=after,
            entry=lambda record: report(stats_of_record(record)),
            position=lambda entry: _Position(domain=entry.domain),
            position_type=_Position,
        )
        return CrawlDomainPage(domains=entries, next_cursor=next_cursor, has_more=has_more)


@dataclass
class _JsonOrCsv(Operation):
    """The operation as OpenAPI documents it: its 200 is the JSON page, or with format=csv the
    same page as CSV text."""

    def __post_init__(self) -> None:
        answer = (self.responses or {}).get("200")
        if isinstance(answer, OpenAPIResponse) and answer.content is not None:
            answer.content["text/csv; charset=utf-8"] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))


@get(
    "/crawl/domains",
    operation_class=_JsonOrCsv,
    responses={200: ResponseSpec(CrawlDomainPage, description="A page of domains (JSON), or as CSV with format=csv")},
    security=[{"AdminToken": []}],
    summary="Crawl analytics per domain",
    description="Per domain: pages fetched, successes and failures by cause, refusals by stage (robots, "
    "allow_list, egress, rate_limit, breaker...), average and p95 latency, extraction yield, circuit-breaker "
    "state and limit alerts; ordered by domain, paged by cursor. format=csv: the same page as CSV, with the "
    f"next cursor in the {NEXT_CURSOR_HEADER} header.",
)
async def crawl_domains(
    crawl_reader: NamedDependency[CrawlStatsReader],
    breaker: Annotated[
        Literal["closed", "open", "half_open"] | None,
        QueryParameter(description="Only domains whose breaker is in this state."),
    ] = None,
    format: Annotated[Literal["json", "csv"], QueryParameter(description="json (default) or csv.")] = "json",
    cursor: CursorParam = None,
    limit: LimitParam = 100,
) -> Response[Any]:
    page = await crawl_reader.page(breaker=breaker, after=cursor, limit=limit)
    if format == "csv":
        headers = {NEXT_CURSOR_HEADER: page.next_cursor} if page.has_more and page.next_cursor else {}
        return Response(csv_text(page.domains), media_type="text/csv; charset=utf-8", headers=headers)
    return Response(page, media_type="application/json")
