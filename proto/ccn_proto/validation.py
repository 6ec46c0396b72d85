"""Commands the validation service answers on ccn.cmd.validation.<name>: an admin's decision on
a result in quarantine (ccn_proto.results: a `result.rejected` no admin has decided on yet).

A result is named as the result aggregate names it: (job, node, attempt, checksum). `by` is the
admin, as the edge authenticated them (the admin token's name), never what a caller typed.

- `release_result`: accept the rejected result anyway. It becomes the job's answer: the
  validation service sends the scheduler `settle_results` with verdict `complete` and
  `released_by`; if the job has meanwhile completed some other way (or is being worked on again),
  the release is recorded and the reply says why the job did not take it (`settle_error`).
- `discard_result`: confirm the rejection; the result is never used.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ccn_proto.commands import CommandError
from ccn_proto.constraints import ShortText
from ccn_proto.receipts import Attempt, JobId, NodeId
from ccn_proto.results import Comment
from ccn_proto.scheduler import JobStatus

QuarantineDecision = Literal["released", "discarded"]
# a result's checksum as the aggregate names it: the node's asserted one, which need not be valid hex
ResultChecksum = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[0-9A-Za-z_-]+$(?!\n)")]


class ReleaseResult(
    msgspec.Struct, gc=False, tag="release_result", frozen=True, kw_only=True, forbid_unknown_fields=True
):
    job_id: JobId
    node_id: NodeId
    attempt: Attempt
    checksum: ResultChecksum
    by: ShortText
    comment: Comment


class DiscardResult(
    msgspec.Struct, gc=False, tag="discard_result", frozen=True, kw_only=True, forbid_unknown_fields=True
):
    job_id: JobId
    node_id: NodeId
    attempt: Attempt
    checksum: ResultChecksum
    by: ShortText
    comment: Comment


class QuarantineDecisionReply(msgspec.Struct, gc=False, frozen=True, kw_only=True, omit_defaults=True):
    """`changed`: False when the same decision was made before (a retried request).
    For a release: `job_status` is the job's status after the scheduler settled it (`completed`),
    or None with `settle_error` saying why the scheduler refused (the job completed otherwise, or
    is being worked on again)."""

    job_id: str
    node_id: str
    attempt: int
    checksum: str
    decision: QuarantineDecision
    changed: bool
    server_time: datetime
    job_status: JobStatus | None = None
    settle_error: CommandError | None = None


ValidationCommand = ReleaseResult | DiscardResult
