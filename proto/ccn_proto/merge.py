"""The merge service's commands (`ccn.cmd.merge.<name>`) and their replies, beyond the dataset
commands themselves (ccn_proto.datasets: ApproveReview, RejectReview, PublishVersion travel as
they are): the review queue, the versions, a diff, a field's explanation, a record, and the
retraction of a node from every dataset with its jobs re-queued.

Replies are bounded: a list says how many it left out rather than growing without limit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ccn_proto.constraints import ShortText, Text
from ccn_proto.datasets import (
    DatasetName,
    FieldChange,
    FieldName,
    FieldValue,
    Identifier,
    Provenance,
    RecordId,
    VersionNumber,
)

SERVICE = "merge"
DEFAULT_DATASET = "grants"
MAX_LISTED_REVIEWS = 500
MAX_DIFF_RECORDS = 2000

# ---- the review queue ----


class ListReviews(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dataset: DatasetName = DEFAULT_DATASET
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LISTED_REVIEWS)] = 100


class ReviewView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A held change: the field-by-field before/after it would make, and why it waits."""

    review_id: str
    dataset: str
    record_id: str
    kind: str
    status: str
    reasons: list[str]
    changes: list[FieldChange]
    stitch_candidates: list[str]
    provenance: Provenance
    reviewer: str = ""
    comment: str = ""


class ReviewList(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    dataset: str
    reviews: list[ReviewView]
    pending: int  # all pending, `reviews` holds at most the limit of them


# ---- versions ----


class ListVersions(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dataset: DatasetName = DEFAULT_DATASET


class VersionView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    dataset: str
    version: int
    content_hash: str
    records: int
    schema_version: str
    by: str
    note: str
    published_at: datetime


class VersionList(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    dataset: str
    versions: list[VersionView]


# ---- diffs, explanations, records ----


class DiffVersions(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dataset: DatasetName = DEFAULT_DATASET
    from_version: VersionNumber
    to_version: VersionNumber
    table: bool = False  # also the readable table (ccn_merge.diff.diff_table)
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_DIFF_RECORDS)] = 500


class FieldDiffView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    field: str
    before: FieldValue | None
    after: FieldValue | None


class RecordDiffView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    record_id: str
    kind: str
    fields: list[FieldDiffView]


class DiffReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Records added, removed and changed from one version to another; each list holds at most
    the asked limit, the counts say how many there are in all."""

    dataset: str
    from_version: int
    to_version: int
    added: list[RecordDiffView]
    removed: list[RecordDiffView]
    changed: list[RecordDiffView]
    added_count: int
    removed_count: int
    changed_count: int
    truncated: bool
    table: str | None = None


class ExplainField(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dataset: DatasetName = DEFAULT_DATASET
    record_id: RecordId
    field: FieldName


class CandidateView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    value: FieldValue
    source: str
    job_id: str
    node_id: str
    result_checksum: str
    confidence: float
    observed_at: datetime
    retracted: bool


class LosingCandidate(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    candidate: CandidateView
    why: str


class FieldExplanation(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Why a record's field is what it is: the rule, the winning candidates, and every losing one
    with why it lost; `text` says it for people."""

    record_id: str
    field: str
    rule: str
    value: FieldValue | None
    reason: str
    winners: list[CandidateView]
    losers: list[LosingCandidate]
    text: str


class GetRecord(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    dataset: DatasetName = DEFAULT_DATASET
    record_id: RecordId


class PublishedFieldView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    value: FieldValue
    rule: str
    sources: list[str]
    jobs: list[str]


class RecordView(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A record as it stands now (its winning values), with the provenance behind each."""

    dataset: str
    record_id: str
    kind: str
    fields: dict[str, PublishedFieldView]


# ---- decisions ----


class ReviewDecided(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    review_id: str
    status: Literal["approved", "rejected"]
    record_id: str
    changes: list[FieldChange]


class RetractNodeEverywhere(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Retract the node's contributions from every dataset, publish a version of each that it
    touched, and create a fresh job for every job whose result it contributed."""

    node_id: Identifier
    since: datetime | None = None
    by: ShortText
    reason: Text = ""


class DatasetRetraction(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    dataset: str
    candidates_dropped: int
    fields_changed: int
    reviews_dropped: int
    version: int | None  # the version that records it; None: nothing of the node was left to retract


class RequeuedJob(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    job_id: str  # the job the node's result came from
    new_job_id: str
    created: bool  # False: an earlier retraction created it already


class RetractionReply(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    node_id: str
    datasets: list[DatasetRetraction]
    requeued: list[RequeuedJob]
