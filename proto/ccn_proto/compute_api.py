"""Bodies of the public HTTP API nodes call at the edge (/compute/*). Closed schemas: an
unknown field is an error, so a typo in a client is caught instead of silently ignored."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ccn_proto.budgets import FailureKind, JobUsage
from ccn_proto.constraints import Sha256Hex, ShortText, Text, UserAgent, Version
from ccn_proto.fetch import Url, Validator
from ccn_proto.nodes import ConsentScope, NodeMetrics
from ccn_proto.receipts import Attempt, PublicKey, Signature
from ccn_proto.scheduler import BatchJob


class RegisterNodeRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`public_key`: the node's Ed25519 public key (unpadded base64url of 32 bytes), with which
    it will sign each result. Optional: a node registered without one has its results accepted
    unsigned (and its receipts say so); one registered with one must sign every result."""

    consent_flag: bool = False
    user_agent: UserAgent | None = None
    user_id: ShortText | None = None
    node_version: ShortText | None = None
    public_key: PublicKey | None = None


class ConsentRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    consent_version: Version
    consent_hash: Sha256Hex
    # the kinds of work consented to; None: every scope the consent document names
    scopes: Annotated[list[ConsentScope], msgspec.Meta(min_length=1, max_length=16)] | None = None


class OptOutRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text | None = None


class TelemetryRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A heartbeat; it renews the leases of `job_ids` (jobs taken over HTTP), and its metrics
    feed the node's health (out-of-range values are refused)."""

    job_ids: Annotated[list[ShortText], msgspec.Meta(max_length=256)] = msgspec.field(default_factory=list)
    metrics: NodeMetrics | None = None


class StartSessionRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    user_agent: UserAgent | None = None


class EndSessionRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text | None = None


class JobResultRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /compute/job/result: send the offer's correlation_id as X-Correlation-ID."""

    job_id: ShortText
    result: dict[str, Any]
    checksum: Sha256Hex
    usage: JobUsage | None = None
    # the offer's attempt and the node's signature over (job_id, attempt, checksum): both
    # required from a node that registered a public key, neither from one that did not
    attempt: Attempt | None = None
    signature: Signature | None = None


class JobFailRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    job_id: ShortText
    reason: Text
    kind: FailureKind = "error"
    usage: JobUsage | None = None


class FetchRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /compute/jobs/{job_id}/fetch: `url` for the job, through the fetch proxy; the
    validators make it a conditional GET. The node is the session token's."""

    url: Url
    if_none_match: Validator | None = None
    if_modified_since: Validator | None = None


class SubmitJobRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /jobs. A retry with the same Idempotency-Key returns the first job."""

    job_type: ShortText
    payload: dict[str, Any]
    priority: Annotated[int, msgspec.Meta(ge=-100, le=100)] = 0
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 3
    lease_s: Annotated[float, msgspec.Meta(ge=1.0, le=3600.0)] = 60.0
    batch_id: ShortText | None = None
    dataset_source: Text | None = None
    dataset_version: ShortText | None = None


class BatchLine(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One line of a POST /jobs/batch body (JSON lines). `item_key` names the item in its batch
    (a record id); the line number when absent, so resending the same file creates nothing new."""

    job_type: ShortText
    payload: dict[str, Any]
    item_key: ShortText | None = None
    priority: Annotated[int, msgspec.Meta(ge=-100, le=100)] = 0
    max_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 3
    lease_s: Annotated[float, msgspec.Meta(ge=1.0, le=3600.0)] = 60.0


def batch_item_key(line_number: int) -> str:
    """The key of a batch line without an `item_key`: its line number in the file (1-based,
    blank lines counted), so a resend, whole or in chunks, names the same jobs."""
    return f"line-{line_number}"


def batch_job(line: BatchLine, line_number: int) -> BatchJob:
    """The scheduler's item for a batch line: what the edge sends, and what the CLI checks a
    file's lines as before sending any."""
    return BatchJob(
        job_type=line.job_type,
        payload=line.payload,
        item_key=line.item_key or batch_item_key(line_number),
        priority=line.priority,
        max_retries=line.max_retries,
        lease_s=line.lease_s,
    )


class BatchSubmitted(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    batch_id: str
    jobs: int
    created: int
    existing: int
    job_ids: list[str]


class JobResultView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str
    status: str
    result: dict[str, Any]
    result_checksum: str


class CancelJobRequest(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Text | None = None
