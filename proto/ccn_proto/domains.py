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


class DomainAllowed(msgspec.Struct, gc=False, tag="domain.allowed", frozen=True, kw_only=True):
    """The domain may be crawled, within these limits; None: the project's default limit.
    Empty paths and patterns: every path robots.txt allows."""

    domain: DomainName
    include_subdomains: bool = False
    requests_per_minute: PerMinute | None = None
    requests_per_hour: PerHour | None = None
    max_concurrent: Concurrent | None = None
    allowed_paths: PathRules = msgspec.field(default_factory=list)
    allowed_patterns: PathRules = msgspec.field(default_factory=list)
    notes: Text | None = None
    reviewer: ShortText | None = None
    reviewed_at: datetime | None = None
    by: ShortText  # the admin token's name, or the importer


class DomainBlocked(msgspec.Struct, gc=False, tag="domain.blocked", frozen=True, kw_only=True):
    """The domain is never crawled: every fetch for it is refused."""

    domain: DomainName
    reason: Reason
    reviewer: ShortText | None = None
    reviewed_at: datetime | None = None
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
