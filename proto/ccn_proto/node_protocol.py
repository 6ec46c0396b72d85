"""The node ↔ edge WebSocket protocol: one JSON object per frame, tagged by "type".

Exported as JSON Schema (proto/schema/node_protocol.json), which is what a node written in
another language codes against. PROTOCOL_VERSION changes only when an old node could no longer
understand a frame; adding an optional field does not change it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from ccn_proto.budgets import FailureKind, JobBudget, JobUsage
from ccn_proto.constraints import END, ShortText, Text, Token
from ccn_proto.fetch import FetchOutcome, Url, Validator
from ccn_proto.nodes import NodeMetrics
from ccn_proto.receipts import Receipt, Signature

PROTOCOL_VERSION = 1
MIN_NODE_VERSION = "0.1.0"
# what one node may run at once, and so the most it may ask for or hold
MAX_CONCURRENCY = 256
MAX_JOB_TYPES = 64
# a batched frame (results, job_offers, acks) carries at most one item per job its node may hold
MAX_FRAME_ITEMS = MAX_CONCURRENCY
# the edge splits the offers it has for a node into job_offers frames of at most this many bytes
# (a single offer bigger than that goes alone): under a node's 8 MiB default offer limit
MAX_OFFERS_FRAME_BYTES = 1024 * 1024
# a node's own name for one of its fetches, echoed on the answer (fetch_result, or an error)
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[A-Za-z0-9._:-]+{END}")]


class Capabilities(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    job_types: Annotated[list[ShortText], msgspec.Meta(max_length=MAX_JOB_TYPES)]
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=MAX_CONCURRENCY)] = 1
    # the node reads `job_offers` and `acks` frames: the edge then sends the offers and acks it
    # has for the node at once as one frame each, instead of a frame per job. Any node may send
    # `results` frames; this says only what the node can read.
    batch_frames: bool = False


class Hello(msgspec.Struct, gc=False, tag="hello", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """First frame from the node: who it is and what it can run."""

    session_token: Token
    node_version: ShortText
    protocol_version: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
    capabilities: Capabilities
    # the jobs it still runs from an earlier connection: they stay its own, and those it held
    # and does not name go back to the queue at once. None (an older node): all stay its own
    # until its first heartbeat says which it runs.
    running: Annotated[list[ShortText], msgspec.Meta(max_length=MAX_CONCURRENCY)] | None = None


class Ready(msgspec.Struct, gc=False, tag="ready", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The node has room for `slots` more jobs."""

    slots: Annotated[int, msgspec.Meta(ge=0, le=MAX_CONCURRENCY)] = 1


class JobOffer(msgspec.Struct, gc=False, tag="job_offer", frozen=True, kw_only=True):
    """A job leased to this node until `lease_until`; heartbeats naming it renew the lease.
    `correlation_id` is the job's: the edge stamps it on everything the node sends about it."""

    job_id: str
    job_type: str
    payload: dict[str, Any]
    lease_until: datetime
    attempt: int
    correlation_id: str
    budget: JobBudget | None = None  # run the job within these; report usage with its outcome


class JobResult(
    msgspec.Struct, gc=False, tag="result", frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """`ready`: the room the node will have once this result is recorded, as a Ready frame sent
    right after the result would say; the edge then asks for the next job together with
    recording this one. 0 says nothing (send Ready as usual)."""

    job_id: ShortText
    result: dict[str, Any]
    checksum: ShortText  # sha256 hex of the result's canonical JSON (sorted keys, no spaces)
    ready: Annotated[int, msgspec.Meta(ge=0, le=MAX_CONCURRENCY)] = 0
    usage: JobUsage | None = None
    # Ed25519 over (job_id, the offer's attempt, checksum) with the key the node registered
    # (ccn_proto.receipts.RESULT_DOMAIN); required from a node that registered one, refused
    # from one that did not
    signature: Signature | None = None


class ResultItem(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One job's result in a `results` frame: the fields of a `result` frame, without `ready`."""

    job_id: ShortText
    result: dict[str, Any]
    checksum: ShortText
    usage: JobUsage | None = None
    signature: Signature | None = None


class JobResults(msgspec.Struct, gc=False, tag="results", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Several results in one frame, each judged on its own (an `ack` or an `error` naming its
    job, as a `result` frame gets); `ready` is the room the node will have once all are recorded.
    A job may appear once per frame."""

    results: Annotated[list[ResultItem], msgspec.Meta(min_length=1, max_length=MAX_FRAME_ITEMS)]
    ready: Annotated[int, msgspec.Meta(ge=0, le=MAX_CONCURRENCY)] = 0


class JobFail(msgspec.Struct, gc=False, tag="fail", frozen=True, kw_only=True, forbid_unknown_fields=True):
    job_id: ShortText
    reason: Text
    kind: FailureKind = "error"
    usage: JobUsage | None = None


class Heartbeat(msgspec.Struct, gc=False, tag="heartbeat", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Keeps the session alive and renews the leases of `job_ids`; `metrics` feed the node's
    health (out-of-range values are refused)."""

    job_ids: Annotated[list[ShortText], msgspec.Meta(max_length=MAX_CONCURRENCY)] = msgspec.field(default_factory=list)
    metrics: NodeMetrics | None = None


class Fetch(msgspec.Struct, gc=False, tag="fetch", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fetch `url` for `job_id`, a job this connection holds, through the fetch proxy; the
    validators make it a conditional GET. Answered, in any order with other fetches, by a
    `fetch_result` or an `error` naming `request_id`. The node is the session's: a frame
    cannot name another (there is no field for it)."""

    request_id: RequestId
    job_id: ShortText
    url: Url
    if_none_match: Validator | None = None
    if_modified_since: Validator | None = None


class Welcome(msgspec.Struct, gc=False, tag="welcome", frozen=True, kw_only=True):
    node_public_id: str
    session_id: str
    server_time: datetime
    heartbeat_interval_s: float


class JobOffers(msgspec.Struct, gc=False, tag="job_offers", frozen=True, kw_only=True):
    """Several offers in one frame, to a node that said `batch_frames`: each item is what a
    `job_offer` frame would be (its `type` included)."""

    offers: list[JobOffer]


class Ack(msgspec.Struct, gc=False, tag="ack", frozen=True, kw_only=True, omit_defaults=True):
    """`receipt`: the service's signed receipt for the job's result, when one came with the
    answer; the node stores it (ccn_cli.node.receipts_store)."""

    job_id: str
    status: str
    receipt: Receipt | None = None


class Acks(msgspec.Struct, gc=False, tag="acks", frozen=True, kw_only=True):
    """Several acks in one frame, to a node that said `batch_frames`: each item is an `ack`."""

    acks: list[Ack]


class FetchResult(msgspec.Struct, gc=False, tag="fetch_result", frozen=True, kw_only=True):
    """The fetch proxy's answer to the `fetch` frame named `request_id`: the page (its body, if
    any, by reference: read it from GET /compute/jobs/{job_id}/documents/{sha256}), a refusal
    or a failure."""

    request_id: str
    outcome: FetchOutcome


class Error(msgspec.Struct, gc=False, tag="error", frozen=True, kw_only=True):
    """`backoff_until`: the node is backed off (or its daily quota is spent) and gets no work
    before then; `retry_after` says the same in seconds. `request_id`: the refusal answers that
    `fetch` frame (with `retry_after`: ask again after it)."""

    code: str
    message: str
    job_id: str | None = None
    field: str | None = None
    retry_after: float | None = None
    backoff_until: datetime | None = None
    request_id: str | None = None


class Bye(msgspec.Struct, gc=False, tag="bye", frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text | None = None


# the reason of the edge's bye to a node an admin drained, once it holds no job: the node is not
# to come back (an unban lifts the drain; its operator starts it again)
DRAINED_BYE_REASON = "this node is drained: it gets no new jobs"


NodeFrame = Hello | Ready | JobResult | JobResults | JobFail | Heartbeat | Fetch | Bye
ServerFrame = Welcome | JobOffer | JobOffers | Ack | Acks | FetchResult | Error | Bye
