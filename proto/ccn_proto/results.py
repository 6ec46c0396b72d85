"""The result aggregate's verdict events (stream CCN_RESULTS, `ccn.result.<job_id>.<event>`): what
the validation service concluded about each result a node submitted for a job, and what an
admin decided about the results it rejected.

One aggregate per job; a result in it is named by (node_id, attempt, checksum). The validation
service judges each submitted result once (schema, checksum, the job type's business rules:
ccn_jobs.result_validation) and records
- `result.validated`: every check passed;
- `result.rejected`: some did not; `reasons` lists each (code, field path, message), at most
  MAX_REASONS of them (`reasons_truncated` says more were found). A rejected result is
  quarantined until an admin decides:
- `result.released`: accepted anyway, by an admin, with a comment;
- `result.discarded`: set aside for good, by an admin, with a comment.
A verdict that settles a result (validated, rejected, released) carries the service's signed
receipt for it (`receipt`): the verdict and its receipt are one event, so they are stored
together or not at all, and in one message (an atomic batch of two would cost the server a
file store of its own per verdict: ADR 0027).
Each verdict names the job type's version and its rules' version it was judged by, so a verdict
can be read again after either changes. The consensus events of the same aggregate (partial,
verified, finalised) are defined beside these, in ccn_proto.consensus.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ccn_proto.constraints import SINGLE_LINE_PATTERN, Sha256Hex, ShortText, Version
from ccn_proto.receipts import Receipt

MAX_REASONS = 50
MAX_REASON_MESSAGE_CHARS = 500
MAX_FIELD_PATH_CHARS = 300
MAX_COMMENT_CHARS = 2000

ReasonCode = Literal[
    "schema",  # the result does not decode into its job type's result Struct, or is not storable JSON
    "checksum",  # the asserted checksum is not the sha256 of the result's canonical JSON
    "mandatory",  # a field the job type requires is missing or empty
    "format",  # a value is not in its field's format (URL, ISO date, country code, ...)
    "forbidden",  # a value the job type forbids, or one outside the values it allows
    "bounds",  # a number, a length or an order outside the job type's bounds
    "unknown_job_type",  # no job type of this name is registered
    "too_large",  # the result is over the size the validator reads, or too big to check fully
]
REASON_CODES: tuple[ReasonCode, ...] = (
    "schema",
    "checksum",
    "mandatory",
    "format",
    "forbidden",
    "bounds",
    "unknown_job_type",
    "too_large",
)
FieldPath = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_FIELD_PATH_CHARS,
        pattern=SINGLE_LINE_PATTERN,
        description='where in the result, e.g. "entities[3].value"',
    ),
]
ReasonMessage = Annotated[str, msgspec.Meta(max_length=MAX_REASON_MESSAGE_CHARS, pattern=SINGLE_LINE_PATTERN)]
Comment = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_COMMENT_CHARS, pattern=SINGLE_LINE_PATTERN)]
Attempt = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
JobTypeVersion = Annotated[str, msgspec.Meta(max_length=64, pattern=SINGLE_LINE_PATTERN)]


class Reason(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One reason a result was rejected: `field` is None when it concerns the result as a whole."""

    code: ReasonCode
    field: FieldPath | None = None
    message: ReasonMessage


class ResultValidated(msgspec.Struct, gc=False, tag="result.validated", frozen=True, kw_only=True):
    """`receipt`: the signed receipt the node fetches (None only from the pure decider, before the
    service signs it: ccn_validation.verdicts)."""

    node_id: ShortText
    attempt: Attempt
    checksum: Sha256Hex
    job_type: ShortText
    job_type_version: JobTypeVersion
    rules_version: Version
    receipt: Receipt | None = None


class ResultRejected(msgspec.Struct, gc=False, tag="result.rejected", frozen=True, kw_only=True):
    """`checksum` is the one the node asserted (a checksum reason says when it is not the
    result's); `job_type_version` and `rules_version` are "" for an unknown job type."""

    node_id: ShortText
    attempt: Attempt
    checksum: ShortText
    job_type: ShortText
    job_type_version: JobTypeVersion
    rules_version: JobTypeVersion
    reasons: Annotated[tuple[Reason, ...], msgspec.Meta(min_length=1, max_length=MAX_REASONS)]
    reasons_truncated: bool = False
    receipt: Receipt | None = None


class ResultReleased(msgspec.Struct, gc=False, tag="result.released", frozen=True, kw_only=True):
    """An admin accepted a rejected result anyway (ccn_validation.quarantine says what follows);
    `receipt`: the new receipt, saying validated, for the node whose result it was."""

    node_id: ShortText
    attempt: Attempt
    checksum: ShortText
    by: ShortText
    comment: Comment
    receipt: Receipt | None = None


class ResultDiscarded(msgspec.Struct, gc=False, tag="result.discarded", frozen=True, kw_only=True):
    """An admin confirmed a rejection: the result leaves quarantine and is never used."""

    node_id: ShortText
    attempt: Attempt
    checksum: ShortText
    by: ShortText
    comment: Comment


class ReceiptIssued(msgspec.Struct, gc=False, tag="result.receipt_issued", frozen=True, kw_only=True):
    """A receipt as its own event, as releases before ADR 0027 wrote it beside its verdict (the
    receipt now rides in the verdict): still read, never written."""

    receipt: Receipt


VerdictEvent = ResultValidated | ResultRejected | ResultReleased | ResultDiscarded
# a job's result aggregate holds its verdicts (and, in streams older than ADR 0027, receipts apart)
ResultEvent = VerdictEvent | ReceiptIssued
# the verdicts that carry a receipt
ReceiptedVerdict = ResultValidated | ResultRejected | ResultReleased


def receipt_in(event: ResultEvent) -> Receipt | None:
    """The receipt an event of the result aggregate carries, if any."""
    if isinstance(event, ReceiptIssued):
        return event.receipt
    if isinstance(event, ResultValidated | ResultRejected | ResultReleased):
        return event.receipt
    return None
