"""The domain-policy aggregate's events (`ccn.domain.<id>.<event>`, stream CCN_POLICY): the
crawl allow-list and its review trail. Every change of a domain's policy is one of these, so the
history of a domain says who allowed or blocked it, when, and with what limits.

The aggregate id is the domain's ASCII name with '.' written '_' and '_' written 'U' (names are
lowercase, so both are unambiguous): `www.example.org` is `www_example_org`
(ccn_core.domain.domain_policy.policy_id). Events are facts, never edited: a new field is
optional with a default, so old events still decode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ccn_proto.constraints import END, SINGLE_LINE_PATTERN, ShortText, Text

Permission = Literal["allowed", "blocked"]
DomainName = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=rf"^[a-z0-9_.-]+{END}")]
# a path prefix, or a robots.txt-style pattern (`*` any run of characters, a final `$` the end)
PathRule = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=rf"^/[\x21-\x7e]*{END}")]
PathRules = Annotated[list[PathRule], msgspec.Meta(max_length=100)]
PerMinute = Annotated[int, msgspec.Meta(ge=1, le=600)]
PerHour = Annotated[int, msgspec.Meta(ge=1, le=36_000)]
Concurrent = Annotated[int, msgspec.Meta(ge=1, le=64)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=SINGLE_LINE_PATTERN)]


class DomainPolicyGiven(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A domain's whole policy as an admin gives it: what is not given is the default (None: the
    project's limit; no paths and no patterns: every path robots.txt allows). The allow command
    carries it, the domain.allowed event records it, and the edge's HTTP body for it is it."""

    include_subdomains: bool = False
    requests_per_minute: PerMinute | None = None
    requests_per_hour: PerHour | None = None
    max_concurrent: Concurrent | None = None
    allowed_paths: PathRules = msgspec.field(default_factory=list)
    allowed_patterns: PathRules = msgspec.field(default_factory=list)
    notes: Text | None = None
    reviewer: ShortText | None = None
    reviewed_at: datetime | None = None


class BlockGiven(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Why a domain is blocked, as the block command, its event and the edge's body give it."""

    reason: Reason
    reviewer: ShortText | None = None
    reviewed_at: datetime | None = None


class DomainAllowed(DomainPolicyGiven, gc=False, tag="domain.allowed", frozen=True, kw_only=True):
    """The domain may be crawled, within these limits; None: the project's default limit.
    Empty paths and patterns: every path robots.txt allows."""

    domain: DomainName
    by: ShortText  # the admin token's name, or the importer


class DomainBlocked(BlockGiven, gc=False, tag="domain.blocked", frozen=True, kw_only=True):
    """The domain is never crawled: every fetch for it is refused."""

    domain: DomainName
    by: ShortText


class DomainPolicyUpdated(msgspec.Struct, gc=False, tag="domain.policy_updated", frozen=True, kw_only=True):
    """Some limits or review fields of an allowed domain changed: `changed` names them, and
    each named field holds its new value (a named field holding None was cleared back to the
    default); the others are unchanged."""

    changed: list[ShortText]
    include_subdomains: bool | None = None
    requests_per_minute: PerMinute | None = None
    requests_per_hour: PerHour | None = None
    max_concurrent: Concurrent | None = None
    allowed_paths: PathRules | None = None
    allowed_patterns: PathRules | None = None
    notes: Text | None = None
    reviewer: ShortText | None = None
    reviewed_at: datetime | None = None
    by: ShortText


DomainEvent = DomainAllowed | DomainBlocked | DomainPolicyUpdated
DOMAIN_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (DomainAllowed, DomainBlocked, DomainPolicyUpdated)


# Commands of the domain-policy service (`ccn.cmd.domains.<command>`), served by the fetch
# proxy. A command names the domain as the admin wrote it (Unicode, any case): the service makes
# it canonical (IDNA, lowercase) and refuses an IP address or a single label. `by` is the admin
# token's name, as every admin action carries it, so the audit trail says who.
WrittenDomain = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=SINGLE_LINE_PATTERN)]


class PolicyChangesGiven(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Some limits of an allowed domain: `clear` names fields set back to their default; a field
    given (not None) takes its value; the others stay as they are."""

    include_subdomains: bool | None = None
    requests_per_minute: PerMinute | None = None
    requests_per_hour: PerHour | None = None
    max_concurrent: Concurrent | None = None
    allowed_paths: PathRules | None = None
    allowed_patterns: PathRules | None = None
    notes: Text | None = None
    reviewer: ShortText | None = None
    reviewed_at: datetime | None = None
    clear: Annotated[list[ShortText], msgspec.Meta(max_length=16)] = msgspec.field(default_factory=list)


class AllowDomainRequest(DomainPolicyGiven, gc=False, tag="allow", frozen=True, kw_only=True):
    """Allow the domain with these limits (the whole set: what is not given is the default)."""

    domain: WrittenDomain
    by: ShortText


class BlockDomainRequest(BlockGiven, gc=False, tag="block", frozen=True, kw_only=True):
    domain: WrittenDomain
    by: ShortText


class UpdateDomainRequest(PolicyChangesGiven, gc=False, tag="update", frozen=True, kw_only=True):
    """Change some limits of an allowed domain (PolicyChangesGiven says how)."""

    domain: WrittenDomain
    by: ShortText


class GetDomainPolicy(msgspec.Struct, gc=False, tag="get", frozen=True, kw_only=True):
    domain: WrittenDomain


class ImportRow(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    line: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]  # of the CSV file, for the report
    command: AllowDomainRequest | BlockDomainRequest


# rows per import command: the edge sends a file in chunks of this many, under NATS's max_payload
MAX_IMPORT_ROWS = 500


class ImportDomains(msgspec.Struct, gc=False, tag="import", frozen=True, kw_only=True):
    """Rows of an allow-list CSV, parsed and checked; each is decided on its own."""

    rows: Annotated[list[ImportRow], msgspec.Meta(max_length=MAX_IMPORT_ROWS)]


DomainCommand = AllowDomainRequest | BlockDomainRequest | UpdateDomainRequest | GetDomainPolicy | ImportDomains


class DomainPolicyView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A domain's policy as the event store has it now; `permission` None: never reviewed."""

    domain: str
    policy_id: str
    permission: Permission | None
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
    version: int  # stream sequence of the policy's last event; 0: none


class DomainPolicyReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    policy: DomainPolicyView
    changed: bool  # False: the policy already was so, and nothing was recorded


class ImportedRow(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    line: int
    domain: str
    changed: bool


class RefusedRow(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    line: int
    domain: str  # as the row wrote it, cut to 128 characters
    reason: str


class ImportDomainsReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    accepted: list[ImportedRow]
    rejected: list[RefusedRow]
