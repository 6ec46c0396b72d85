"""Between the domain-policy service's wire commands (ccn_proto.domains) and its decider's
commands (ccn_core.domain.domain_policy): the service decodes a request into a decision, the
edge turns a parsed CSV row back into a request, and a state becomes the view a reply shows."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from ccn_core.domain.domain_policy import (
    LIMIT_FIELDS,
    AllowDomain,
    BlockDomain,
    DomainPolicyCommand,
    DomainPolicyState,
    PolicyLimits,
    UpdateDomainPolicy,
    domain_of,
)
from ccn_core.errors import BadInput
from ccn_proto.domains import AllowDomainRequest, BlockDomainRequest, DomainPolicyView, UpdateDomainRequest

PolicyRequest = AllowDomainRequest | BlockDomainRequest | UpdateDomainRequest


def decision_of(request: PolicyRequest) -> DomainPolicyCommand:
    match request:
        case AllowDomainRequest():
            fields: dict[str, Any] = {name: getattr(request, name) for name in LIMIT_FIELDS}
            fields["allowed_paths"] = tuple(request.allowed_paths)
            fields["allowed_patterns"] = tuple(request.allowed_patterns)
            limits = PolicyLimits(**fields)
            return AllowDomain(domain=request.domain, limits=limits, by=request.by)
        case BlockDomainRequest():
            return BlockDomain(
                domain=request.domain,
                reason=request.reason,
                reviewer=request.reviewer,
                reviewed_at=request.reviewed_at,
                by=request.by,
            )
        case UpdateDomainRequest():
            return UpdateDomainPolicy(domain=request.domain, by=request.by, **_changes(request))
    raise TypeError(f"not a domain policy request: {request!r}")


def _changes(request: UpdateDomainRequest) -> dict[str, Any]:
    for name in request.clear:
        if name not in LIMIT_FIELDS:
            raise BadInput(f"clear names {name!r}, not a policy field ({', '.join(LIMIT_FIELDS)})", field="clear")
        if getattr(request, name) is not None:
            raise BadInput(f"{name} is both given and cleared", field="clear")
    changes: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        value = getattr(request, name)
        if name in request.clear:
            changes[name] = False if name == "include_subdomains" else () if name.startswith("allowed_") else None
        elif value is not None:
            changes[name] = tuple(value) if name.startswith("allowed_") else value
    if not changes:
        raise BadInput("the update changes nothing: give a field or name one in clear")
    return {name: changes.get(name, UNSET) for name in LIMIT_FIELDS}


def request_of(command: AllowDomain | BlockDomain) -> AllowDomainRequest | BlockDomainRequest:
    """A parsed CSV row as the command the edge sends for it."""
    if isinstance(command, BlockDomain):
        return BlockDomainRequest(
            domain=command.domain,
            reason=command.reason,
            reviewer=command.reviewer,
            reviewed_at=command.reviewed_at,
            by=command.by,
        )
    limits = command.limits
    fields = {name: getattr(limits, name) for name in LIMIT_FIELDS}
    fields["allowed_paths"] = list(limits.allowed_paths)
    fields["allowed_patterns"] = list(limits.allowed_patterns)
    return AllowDomainRequest(domain=command.domain, by=command.by, **fields)


def policy_view(state: DomainPolicyState, version: int) -> DomainPolicyView:
    limits = state.limits
    return DomainPolicyView(
        domain=state.domain or domain_of(state.policy_id),
        policy_id=state.policy_id,
        permission=None if state.status == "unreviewed" else state.status,
        include_subdomains=limits.include_subdomains,
        requests_per_minute=limits.requests_per_minute,
        requests_per_hour=limits.requests_per_hour,
        max_concurrent=limits.max_concurrent,
        allowed_paths=list(limits.allowed_paths),
        allowed_patterns=list(limits.allowed_patterns),
        notes=limits.notes,
        block_reason=state.block_reason,
        reviewer=limits.reviewer,
        reviewed_at=limits.reviewed_at,
        version=version,
    )
