"""The domain-policy aggregate: may a domain be crawled, within what limits, and who said so.

One aggregate per domain (its id from `policy_id`). An admin or the CSV importer allows a domain
with its limits, updates them, or blocks it; an act that would change nothing records nothing,
so importing the same CSV twice writes nothing the second time. Every event is checked against
the event types' own bounds before it is returned, so no command, however built, can write an
event its readers would refuse.

`DomainPolicyState.permits(path)` is the allow-list check the fetch proxy makes: the domain is
allowed and the path is under one of its allowed paths or matches one of its patterns (none of
either: every path). Patterns are robots.txt-style (`*` any run, a final `$` the end) and matched
without regular expressions, in time linear in the path for each part of the pattern.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_core.url_host import BadHost, parse_host
from ccn_proto.domains import DomainAllowed, DomainBlocked, DomainEvent, DomainPolicyUpdated

MAX_POLICY_ID_LENGTH = 128
# a review dated a little ahead of the decider's clock is a clock skew, not a forgery
REVIEW_CLOCK_SKEW = timedelta(minutes=5)
PolicyStatus = Literal["unreviewed", "allowed", "blocked"]
E = TypeVar("E", DomainAllowed, DomainBlocked, DomainPolicyUpdated)


class PolicyLimits(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    include_subdomains: bool = False
    requests_per_minute: int | None = None
    requests_per_hour: int | None = None
    max_concurrent: int | None = None
    allowed_paths: tuple[str, ...] = ()
    allowed_patterns: tuple[str, ...] = ()
    notes: str | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None


LIMIT_FIELDS: tuple[str, ...] = PolicyLimits.__struct_fields__


class DomainPolicyState(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    policy_id: str
    domain: str | None = None
    status: PolicyStatus = "unreviewed"
    limits: PolicyLimits = PolicyLimits()
    block_reason: str | None = None

    def permits(self, path: str) -> bool:
        """May the fetch proxy fetch `path` (path and query) on this domain?"""
        if self.status != "allowed":
            return False
        paths, patterns = self.limits.allowed_paths, self.limits.allowed_patterns
        if not paths and not patterns:
            return True
        return path.startswith(paths) or any(pattern_matches(pattern, path) for pattern in patterns)


class AllowDomain(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    domain: str
    limits: PolicyLimits = PolicyLimits()
    by: str


class BlockDomain(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    domain: str
    reason: str
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    by: str


class UpdateDomainPolicy(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Only the fields given change; None clears a field back to its default."""

    domain: str
    include_subdomains: bool | UnsetType = UNSET
    requests_per_minute: int | UnsetType | None = UNSET
    requests_per_hour: int | UnsetType | None = UNSET
    max_concurrent: int | UnsetType | None = UNSET
    allowed_paths: tuple[str, ...] | UnsetType = UNSET
    allowed_patterns: tuple[str, ...] | UnsetType = UNSET
    notes: str | UnsetType | None = UNSET
    reviewer: str | UnsetType | None = UNSET
    reviewed_at: datetime | UnsetType | None = UNSET
    by: str


DomainPolicyCommand = AllowDomain | BlockDomain | UpdateDomainPolicy


def canonical_domain(text: str) -> str:
    """The domain as policies name it: ASCII (IDNA), lowercase, no trailing dot, not an IP
    address and not a single label. Raises BadInput."""
    try:
        host = parse_host(text.strip())
    except BadHost as error:
        raise BadInput(str(error), field="domain") from None
    if host.address is not None:
        raise BadInput(f"{text!r:.80} is an IP address, not a domain", field="domain")
    if "." not in host.name:
        raise BadInput(f"{text!r:.80} is a single-label name, not a public domain", field="domain")
    if len(policy_id(host.name)) > MAX_POLICY_ID_LENGTH:
        raise BadInput(f"the domain is longer than {MAX_POLICY_ID_LENGTH} characters", field="domain")
    return host.name


def policy_id(domain: str) -> str:
    """The aggregate id (a subject token) of a canonical domain's policy; reversible."""
    return domain.replace("_", "U").replace(".", "_")


def domain_of(policy_id_: str) -> str:
    return policy_id_.replace("_", ".").replace("U", "_")


class DomainPolicyDecider:
    aggregate = "domain"

    def initial_state(self, aggregate_id: str) -> DomainPolicyState:
        return DomainPolicyState(policy_id=aggregate_id)

    def decide(self, command: DomainPolicyCommand, state: DomainPolicyState, now: datetime) -> list[DomainEvent]:
        domain = canonical_domain(command.domain)
        if policy_id(domain) != state.policy_id:
            raise BadInput(f"{domain} is not the domain of policy {state.policy_id}", field="domain")
        match command:
            case AllowDomain(limits=limits, by=by):
                _check_review_time(limits.reviewed_at, now)
                if state.status != "allowed":
                    return [
                        _valid(msgspec.structs.replace(DomainAllowed(domain=domain, by=by), **_event_fields(limits)))
                    ]
                return _update(state, limits, by)
            case BlockDomain():
                _check_review_time(command.reviewed_at, now)
                if state.status == "blocked" and state.block_reason == command.reason:
                    return []
                blocked = DomainBlocked(
                    domain=domain,
                    reason=command.reason,
                    reviewer=command.reviewer,
                    reviewed_at=command.reviewed_at,
                    by=command.by,
                )
                return [_valid(blocked)]
            case UpdateDomainPolicy():
                if state.status == "unreviewed":
                    raise NotFound(f"no policy for {domain}")
                if state.status == "blocked":
                    raise Conflict(f"{domain} is blocked: allow it (with its limits) rather than update it")
                given = {name: getattr(command, name) for name in LIMIT_FIELDS if getattr(command, name) is not UNSET}
                limits = msgspec.structs.replace(state.limits, **given)
                _check_review_time(limits.reviewed_at, now)
                return _update(state, limits, command.by)
        raise TypeError(f"not a domain policy command: {command!r}")

    def evolve(self, state: DomainPolicyState, event: DomainEvent) -> DomainPolicyState:
        match event:
            case DomainAllowed():
                limits = PolicyLimits(
                    include_subdomains=event.include_subdomains,
                    requests_per_minute=event.requests_per_minute,
                    requests_per_hour=event.requests_per_hour,
                    max_concurrent=event.max_concurrent,
                    allowed_paths=tuple(event.allowed_paths),
                    allowed_patterns=tuple(event.allowed_patterns),
                    notes=event.notes,
                    reviewer=event.reviewer,
                    reviewed_at=event.reviewed_at,
                )
                return msgspec.structs.replace(
                    state, domain=event.domain, status="allowed", limits=limits, block_reason=None
                )
            case DomainBlocked():
                return msgspec.structs.replace(
                    state,
                    domain=event.domain,
                    status="blocked",
                    block_reason=event.reason,
                    limits=msgspec.structs.replace(
                        state.limits, reviewer=event.reviewer, reviewed_at=event.reviewed_at
                    ),
                )
            case DomainPolicyUpdated():
                changed = {name: getattr(event, name) for name in event.changed if name in LIMIT_FIELDS}
                for name in ("allowed_paths", "allowed_patterns"):
                    if name in changed:
                        changed[name] = tuple(changed[name] or ())
                if "include_subdomains" in changed:
                    changed["include_subdomains"] = bool(changed["include_subdomains"])
                return msgspec.structs.replace(state, limits=msgspec.structs.replace(state.limits, **changed))
        raise TypeError(f"not a domain policy event: {event!r}")


def _update(state: DomainPolicyState, limits: PolicyLimits, by: str) -> list[DomainEvent]:
    changed = [name for name in LIMIT_FIELDS if getattr(limits, name) != getattr(state.limits, name)]
    if not changed:
        return []
    fields = _event_fields(limits)
    updated = DomainPolicyUpdated(changed=changed, by=by)
    return [_valid(msgspec.structs.replace(updated, **{name: fields[name] for name in changed}))]


def _event_fields(limits: PolicyLimits) -> dict[str, object]:
    fields: dict[str, object] = {name: getattr(limits, name) for name in LIMIT_FIELDS}
    fields["allowed_paths"] = list(limits.allowed_paths)
    fields["allowed_patterns"] = list(limits.allowed_patterns)
    return fields


def _check_review_time(reviewed_at: datetime | None, now: datetime) -> None:
    if reviewed_at is None:
        return
    if reviewed_at.tzinfo is None:
        raise BadInput("reviewed_at must carry a UTC offset", field="reviewed_at")
    if reviewed_at > now + REVIEW_CLOCK_SKEW:
        raise BadInput(f"reviewed_at {reviewed_at.isoformat()} is in the future", field="reviewed_at")


def _valid(event: E) -> E:
    """The event as its readers will decode it, or BadInput naming the field that is out of
    bounds (a rate of 0, a path not starting with '/', a note with a control character...)."""
    try:
        return msgspec.json.decode(msgspec.json.encode(event), type=type(event))
    except msgspec.ValidationError as error:
        raise BadInput(f"invalid policy: {error}") from None


def pattern_matches(pattern: str, path: str) -> bool:
    """robots.txt-style matching: `*` is any run of characters, a final `$` anchors the end.
    Leftmost matching of each literal part is exact for `*`-only patterns, and costs one
    linear scan per part, never backtracking."""
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    parts = body.split("*")
    if len(parts) == 1:
        return path == body if anchored else path.startswith(body)
    first, *middle, last = parts
    if not path.startswith(first):
        return False
    position = len(first)
    for part in middle:
        found = path.find(part, position)
        if found == -1:
            return False
        position = found + len(part)
    if anchored:
        return len(path) - len(last) >= position and path.endswith(last)
    return path.find(last, position) != -1
