"""Operators' allow-list API: import a CSV of domains, allow, block or update one domain. Every
route needs the admin token; each change becomes a domain-policy command (served by the fetch
proxy) naming the admin (the token's name), so a domain's history says who changed what.

An import is parsed here (ccn_core.domain_csv: bounded size and rows, each row checked on its
own) and sent in chunks; the reply lists the rows accepted (and whether each changed anything:
importing a file twice changes nothing the second time) and the rows rejected, with why. Reading
the allow-list is the analytics service's: GET /admin/domains there."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from ccn_core.domain_csv import MAX_CSV_BYTES, parse_domain_csv
from ccn_core.domain_requests import request_of
from ccn_core.errors import CcnError
from ccn_edge.context import MAX_COMMAND_BYTES, EdgeContext
from ccn_proto.constraints import SINGLE_LINE_PATTERN
from ccn_proto.domains import (
    MAX_IMPORT_ROWS,
    AllowDomainRequest,
    BlockDomainRequest,
    BlockGiven,
    DomainPolicyGiven,
    DomainPolicyReply,
    ImportDomains,
    ImportDomainsReply,
    ImportedRow,
    ImportRow,
    PolicyChangesGiven,
    RefusedRow,
    UpdateDomainRequest,
)
from ccn_web.auth import ADMIN_SECURITY, DEFAULT_ADMIN_NAME, admin_guard, admin_name
from ccn_web.http import correlation_id

DOMAINS_SERVICE = "domains"
DomainPath = Annotated[
    str,
    PathParameter(
        description="The domain (Unicode names are stored as IDNA).", max_length=512, pattern=SINGLE_LINE_PATTERN
    ),
]
# the header row, a few blank lines and CRLF line ends beside the parser's own bound
MAX_IMPORT_BODY_BYTES = MAX_CSV_BYTES + 64 * 1024
# a chunk's rows, encoded, under what one command may carry (NATS's max_payload, with headroom)
_CHUNK_BYTES = MAX_COMMAND_BYTES // 2
_IMPORT_TIMEOUT_S = 60.0


class AllowBody(DomainPolicyGiven, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The domain's whole policy: what is not given is the default."""


class BlockBody(BlockGiven, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class UpdateBody(PolicyChangesGiven, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Only what is given changes; `clear` names fields set back to their default."""


class ImportReport(msgspec.Struct, frozen=True, kw_only=True):
    rows: int  # data rows read (blank lines aside)
    accepted: list[ImportedRow]  # changed False: the domain already had this policy
    rejected: list[RefusedRow]  # with the line and why; the other rows are imported all the same


async def _domains(request: Request[Any, Any, Any], edge: EdgeContext, name: str, command: msgspec.Struct) -> Any:
    return await edge.commands.call(
        DOMAINS_SERVICE, name, command, DomainPolicyReply, correlation_id=correlation_id(request.scope)
    )


def _fields(body: msgspec.Struct) -> dict[str, Any]:
    return {name: getattr(body, name) for name in body.__struct_fields__}


@post(
    "/{domain:str}/allow",
    summary="Allow a domain, with its limits, paths and review",
    status_code=200,
    security=ADMIN_SECURITY,
)
async def allow_domain(
    request: Request[Any, Any, Any], domain: DomainPath, data: JSONBody[AllowBody], edge: NamedDependency[EdgeContext]
) -> DomainPolicyReply:
    command = AllowDomainRequest(domain=domain, by=admin_name(request), **_fields(data))
    reply: DomainPolicyReply = await _domains(request, edge, "allow", command)
    return reply


@post(
    "/{domain:str}/block",
    summary="Block a domain: every fetch for it is refused",
    status_code=200,
    security=ADMIN_SECURITY,
)
async def block_domain(
    request: Request[Any, Any, Any], domain: DomainPath, data: JSONBody[BlockBody], edge: NamedDependency[EdgeContext]
) -> DomainPolicyReply:
    command = BlockDomainRequest(domain=domain, by=admin_name(request), **_fields(data))
    reply: DomainPolicyReply = await _domains(request, edge, "block", command)
    return reply


@patch("/{domain:str}", summary="Change some limits of an allowed domain", status_code=200, security=ADMIN_SECURITY)
async def update_domain(
    request: Request[Any, Any, Any], domain: DomainPath, data: JSONBody[UpdateBody], edge: NamedDependency[EdgeContext]
) -> DomainPolicyReply:
    command = UpdateDomainRequest(domain=domain, by=admin_name(request), **_fields(data))
    reply: DomainPolicyReply = await _domains(request, edge, "update", command)
    return reply


def import_chunks(rows: list[ImportRow]) -> Iterator[list[ImportRow]]:
    """Runs of rows each within MAX_IMPORT_ROWS and _CHUNK_BYTES encoded."""
    chunk: list[ImportRow] = []
    size = 0
    for row in rows:
        row_size = len(msgspec.json.encode(row))
        if chunk and (len(chunk) >= MAX_IMPORT_ROWS or size + row_size > _CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += row_size
    if chunk:
        yield chunk


@post(
    "/import",
    summary="Import an allow-list CSV",
    description="The body is the CSV file (UTF-8; at most 4 MiB and 20,000 rows): a header naming the columns "
    "(domain, permission, include_subdomains, requests_per_minute, requests_per_hour, max_concurrent, "
    "allowed_paths, allowed_patterns, notes, reviewer, reviewed_at; docs/domain-policy.md), then a row per domain. "
    "Each row is checked and decided on its own: the reply lists the rows accepted and the rows rejected with "
    "why. A file that cannot be read as a whole (not UTF-8, an unknown or missing column) is a 400; importing the "
    "same file again changes nothing.",
    status_code=200,
    security=ADMIN_SECURITY,
    request_max_body_size=MAX_IMPORT_BODY_BYTES,
)
async def import_domains(request: Request[Any, Any, Any], edge: NamedDependency[EdgeContext]) -> ImportReport:
    parsed = parse_domain_csv(await request.body(), by=admin_name(request), now=datetime.now(UTC))
    rows = [ImportRow(line=row.line, command=request_of(row.command)) for row in parsed.accepted]
    accepted: list[ImportedRow] = []
    rejected = [RefusedRow(line=row.line, domain=row.domain, reason=row.reason) for row in parsed.rejected]
    for chunk in import_chunks(rows):
        try:
            reply = await edge.commands.call(
                DOMAINS_SERVICE,
                "import",
                ImportDomains(rows=chunk),
                ImportDomainsReply,
                correlation_id=correlation_id(request.scope),
                timeout=_IMPORT_TIMEOUT_S,
            )
        except CcnError as exc:
            if accepted or rejected:
                raise type(exc)(
                    f"{exc.message}; {len(accepted) + len(rejected)} of {len(rows) + len(parsed.rejected)} rows were "
                    "decided before this: import the same file again, nothing changes twice",
                    field=exc.field,
                    retry_after=exc.retry_after,
                ) from exc
            raise
        accepted += reply.accepted
        rejected += reply.rejected
    rejected.sort(key=lambda row: row.line)
    return ImportReport(rows=len(parsed.accepted) + len(parsed.rejected), accepted=accepted, rejected=rejected)


def domains_admin_router(admin_token: str, admin_name: str = DEFAULT_ADMIN_NAME) -> Router:
    return Router(
        "/admin/domains",
        route_handlers=[import_domains, allow_domain, block_domain, update_domain],
        guards=[admin_guard(admin_token, admin_name)],
        tags=["domains"],
    )
