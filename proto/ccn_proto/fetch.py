"""The fetch proxy's messages: a node's fetch of one URL for its job, the proxy's answer, and the
fetch records (stream CCN_FETCH, `ccn.fetch.<domain id>.<event>`).

A node never reaches the internet. Its job asks for a URL (`FetchPage`, through the edge: the
`fetch` WebSocket frame or `POST /compute/jobs/{job_id}/fetch`), and the fetch proxy answers with
one `FetchOutcome`:
- `FetchedPage`: the site answered (any HTTP status); the body, if any, is in the document object
  store, named by its sha256 (`body`, a DocumentRef the node reads through the edge);
- `FetchRefused`: policy said no before or while fetching (not the job's URL, scheme, allow-list,
  robots.txt, rate limit, breaker, egress policy, a redirect to a refused place); a refusal with
  `retry_after` may be asked again after that many seconds;
- `FetchFailed`: the site could not be fetched within the bounds (time, size, content type, TLS,
  connection, decompression).

Every fetch is recorded as one event in CCN_FETCH, allowed or refused, with its reason. The
aggregate id is the domain's policy id (ccn_core.domain.domain_policy.policy_id), so one domain's
history is `ccn.fetch.<domain id>.*`. These are records, not decisions: they are appended without
an expected sequence, and analytics reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ccn_proto.constraints import END, SINGLE_LINE_PATTERN, ShortText, Text
from ccn_proto.documents import DocumentRef

# a URL as a node may send it; the egress decision reads it strictly (ccn_core.egress)
MAX_URL_CHARS = 8192
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_CHARS, pattern=rf"^[\x21-\x7e]+{END}")]
# an ETag or an HTTP date, as a validator for a conditional GET
Validator = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=rf"^[\x20-\x7e]+{END}")]
MAX_REDIRECTS = 10
HttpStatus = Annotated[int, msgspec.Meta(ge=100, le=599)]

# the check that refused, in the order the proxy checks (issue #16): the job, the scheme, the
# allow-list, robots.txt, the domain's rate limit and breaker, then the egress policy on the
# resolved addresses (every redirect hop is checked again from the scheme on)
RefusalStage = Literal["job", "scheme", "allow_list", "robots", "rate_limit", "breaker", "egress", "redirect"]
FailureReason = Literal[
    "timeout",  # connect, read or total time ran out
    "connect_failed",
    "tls_error",
    "too_large",  # the body went over the size bound while streaming
    "decompression_bomb",  # the decoded body outgrew its bound or its ratio
    "content_type_not_allowed",
    "too_many_redirects",
    "bad_response",  # not HTTP, or headers past their bounds
]


class FetchPage(msgspec.Struct, gc=False, tag="fetch_page", frozen=True, kw_only=True):
    """Fetch `url` for `job_id`, which `node_id` holds (the edge fills node_id from the session,
    never from the node). The validators make it a conditional GET (a recrawl)."""

    job_id: ShortText
    node_id: ShortText
    url: Url
    if_none_match: Validator | None = None
    if_modified_since: Validator | None = None


class FetchedPage(msgspec.Struct, gc=False, tag="fetched", frozen=True, kw_only=True):
    """What the site answered. `final_url`: after redirects (`redirects` lists each hop's URL).
    `body` is None for a 304 or an empty body. `etag` and `last_modified` are the response's
    validators, for the next recrawl."""

    fetch_id: str
    url: str
    final_url: str
    status: HttpStatus
    content_type: str | None = None
    body: DocumentRef | None = None
    etag: str | None = None
    last_modified: str | None = None
    redirects: list[str] = msgspec.field(default_factory=list)
    elapsed_ms: float = 0.0
    fetched_at: datetime


class FetchRefused(msgspec.Struct, gc=False, tag="refused", frozen=True, kw_only=True):
    """Policy said no; `reason` is a code (e.g. `robots_disallowed`, `domain_not_allowed`,
    `non_global_address`), `detail` says it for a person."""

    fetch_id: str
    url: str
    stage: RefusalStage
    reason: ShortText
    detail: Text = ""
    retry_after: float | None = None


class FetchFailed(msgspec.Struct, gc=False, tag="failed", frozen=True, kw_only=True):
    fetch_id: str
    url: str
    reason: FailureReason
    detail: Text = ""
    elapsed_ms: float = 0.0


FetchOutcome = FetchedPage | FetchRefused | FetchFailed


# ---- fetch records: the events of CCN_FETCH ----

DomainId = Annotated[str, msgspec.Meta(min_length=1, max_length=160, pattern=SINGLE_LINE_PATTERN)]
BreakerState = Literal["closed", "open", "half_open"]
LimitKind = Literal["per_minute", "per_hour", "concurrent", "crawl_delay", "retry_after"]


class PageFetchRecorded(msgspec.Struct, gc=False, tag="fetch.fetched", frozen=True, kw_only=True):
    """A fetch the site answered. `sha256`/`size`: the body as stored (None: no body)."""

    fetch_id: str
    job_id: str
    node_id: str
    domain: str
    url: str
    final_url: str
    status: int
    content_type: str | None = None
    sha256: str | None = None
    size: int | None = None
    not_modified: bool = False
    redirects: int = 0
    elapsed_ms: float


class FetchRefusalRecorded(msgspec.Struct, gc=False, tag="fetch.refused", frozen=True, kw_only=True):
    fetch_id: str
    job_id: str
    node_id: str
    domain: str  # "" when the URL has no readable host
    url: str
    stage: RefusalStage
    reason: str
    detail: str = ""


class FetchFailureRecorded(msgspec.Struct, gc=False, tag="fetch.failed", frozen=True, kw_only=True):
    fetch_id: str
    job_id: str
    node_id: str
    domain: str
    url: str
    reason: FailureReason
    detail: str = ""
    elapsed_ms: float


class BreakerChanged(msgspec.Struct, gc=False, tag="fetch.breaker_changed", frozen=True, kw_only=True):
    """A domain's circuit breaker moved (closed → open → half_open → closed or open)."""

    domain: str
    state: BreakerState
    previous: BreakerState
    reason: str
    consecutive_failures: int = 0
    open_until: datetime | None = None


class DomainLimitAlert(msgspec.Struct, gc=False, tag="fetch.limit_alert", frozen=True, kw_only=True):
    """A domain keeps hitting its limits: `denials` refusals of kind `limit` within `window_s`."""

    domain: str
    limit: LimitKind
    denials: int
    window_s: float


class ExtractionYieldRecorded(msgspec.Struct, gc=False, tag="fetch.extraction_yield", frozen=True, kw_only=True):
    """What a crawl job's extraction found on one domain's pages: `fields_found` of the
    `fields_asked` its rules named (a field asked on N pages counts N). Recorded from the job's
    accepted result, for crawl analytics' extraction yield."""

    domain: str
    job_id: str
    pages: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 1
    fields_asked: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]
    fields_found: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]


class RobotsFetchRecorded(msgspec.Struct, gc=False, tag="fetch.robots_fetched", frozen=True, kw_only=True):
    """One request the proxy sent for robots.txt (each redirect hop its own), made for the node
    request `for_fetch_id` names, whose job and node these are. `status` None: no answer, and
    `failure` says why; the rules then disallow everything until a fetch succeeds."""

    for_fetch_id: str
    job_id: str
    node_id: str
    domain: str
    url: str
    status: int | None = None
    failure: FailureReason | None = None
    detail: str = ""
    elapsed_ms: float


FetchEvent = (
    PageFetchRecorded
    | FetchRefusalRecorded
    | FetchFailureRecorded
    | BreakerChanged
    | DomainLimitAlert
    | ExtractionYieldRecorded
    | RobotsFetchRecorded
)
FETCH_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    PageFetchRecorded,
    FetchRefusalRecorded,
    FetchFailureRecorded,
    BreakerChanged,
    DomainLimitAlert,
    ExtractionYieldRecorded,
    RobotsFetchRecorded,
)
