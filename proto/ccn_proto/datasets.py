"""Datasets (stream CCN_DATASETS, `ccn.dataset.<name>.<event>`): the canonical funders and
funding opportunities, merged field by field from finalised job results, with the provenance of
every field, a review queue for critical or doubtful changes, immutable numbered versions and
the retraction of a node's contributions.

One aggregate per dataset (`<name>`, e.g. `grants`). Its history says, for every field of every
record, which results proposed which values, which were held for review and how the reviewer
decided, which node's contributions were retracted, and which versions were published with the
content hash of their canonical bytes. Nothing is ever deleted: a retraction is an event, and a
field falls back to its next-best candidate by its merge rule (ccn_merge.merge_rules).

Field values are JSON scalars or lists of strings (`FieldValue`); what each field may hold, its
merge rule and whether a change of it waits for review are the dataset schema's metadata
(ccn_merge.schema), not part of these messages, so a schema change re-decides winners on replay.
Events are facts, never edited: a new field is optional with a default, so old events decode.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from ccn_proto.constraints import END, SINGLE_LINE_PATTERN, Sha256Hex, ShortText, Text

STREAM = "CCN_DATASETS"
AGGREGATE = "dataset"

MAX_RECORDS_PER_PROPOSAL = 1000
MAX_FIELDS_PER_RECORD = 64
MAX_CHANGES_PER_EVENT = 100_000

DatasetName = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=rf"^[a-z0-9][a-z0-9_-]*{END}")]
RecordKind = Literal["funder", "opportunity"]
RECORD_KINDS: tuple[RecordKind, ...] = ("funder", "opportunity")
RecordId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=rf"^[A-Za-z0-9][A-Za-z0-9._:-]*{END}")]
FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=rf"^[a-z][a-z0-9_]*{END}")]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=rf"^[\x21-\x7e]+{END}")]
SourceName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN)]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
ReviewId = Annotated[str, msgspec.Meta(pattern=rf"^rev-[0-9a-f]{{24}}{END}")]
Comment = Annotated[str, msgspec.Meta(max_length=2000, pattern=SINGLE_LINE_PATTERN)]
VersionNumber = Annotated[int, msgspec.Meta(ge=1)]
# a field's value once the schema has checked it: text, a whole number, or a list of texts
FieldValue = str | int | list[str]
MergeRuleName = Literal["overwrite", "append", "prefer_source", "min", "max", "confidence_weighted"]


class Provenance(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a candidate value came from: the finalised result of one job, run by one node."""

    source: SourceName  # the data source the job read ("irs-bmf", "grants-gov", "crawl")
    job_id: Identifier
    node_id: Identifier
    result_checksum: Sha256Hex
    confidence: Confidence = 1.0
    observed_at: datetime
    # which of one result's proposals: a result whose records came from several sources proposes
    # once per source (the source decides `prefer_source`), numbered from 0 in the sources' order
    part: Annotated[int, msgspec.Meta(ge=0, le=MAX_RECORDS_PER_PROPOSAL)] = 0

    def proposal_key(self) -> str:
        """One finalised result proposes once: its job and checksum (and part) identify the proposal."""
        base = f"{self.job_id}/{self.result_checksum}"
        return base if self.part == 0 else f"{base}/{self.part}"


# ---- commands (`ccn.cmd.merge.<name>`) ----


class RecordProposal(msgspec.Struct, gc=False, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One record a result proposes. `record_id` names the canonical record when the job knew it;
    without it the record is stitched (ccn_merge.stitching). `fields` are raw values, checked and
    normalised by the dataset schema; `confidence` overrides the provenance's for some fields."""

    kind: RecordKind
    record_id: RecordId | None = None
    fields: Annotated[dict[FieldName, Any], msgspec.Meta(max_length=MAX_FIELDS_PER_RECORD)]
    confidence: Annotated[dict[FieldName, Confidence], msgspec.Meta(max_length=MAX_FIELDS_PER_RECORD)] = msgspec.field(
        default_factory=dict
    )


class ProposeMerge(msgspec.Struct, gc=False, tag="propose_merge", frozen=True, kw_only=True):
    """A finalised result's records, to merge (idempotent: a result proposes once)."""

    dataset: DatasetName
    provenance: Provenance
    records: Annotated[list[RecordProposal], msgspec.Meta(min_length=1, max_length=MAX_RECORDS_PER_PROPOSAL)]


class ApproveReview(msgspec.Struct, gc=False, tag="approve_review", frozen=True, kw_only=True):
    """Apply a held change. `record_id`: for a change held because its record was ambiguous,
    the existing record the reviewer joins it to (one of the review's `stitch_candidates`)."""

    dataset: DatasetName
    review_id: ReviewId
    reviewer: ShortText
    comment: Comment = ""
    record_id: RecordId | None = None


class RejectReview(msgspec.Struct, gc=False, tag="reject_review", frozen=True, kw_only=True):
    dataset: DatasetName
    review_id: ReviewId
    reviewer: ShortText
    comment: Comment = ""


class PublishVersion(msgspec.Struct, gc=False, tag="publish_version", frozen=True, kw_only=True):
    dataset: DatasetName
    by: ShortText
    note: Text = ""


class RetractNode(msgspec.Struct, gc=False, tag="retract_node", frozen=True, kw_only=True):
    """Drop every candidate the node contributed (observed at or after `since`, when given)."""

    dataset: DatasetName
    node_id: Identifier
    since: datetime | None = None
    by: ShortText
    reason: Text = ""


DatasetCommand = ProposeMerge | ApproveReview | RejectReview | PublishVersion | RetractNode


# ---- events ----


class RecordMerge(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """Candidates for one record's fields: values as the schema normalised them, and the
    confidence of each (the provenance's unless the proposal said otherwise)."""

    record_id: RecordId
    kind: RecordKind
    values: dict[str, FieldValue]
    confidence: dict[str, float] = msgspec.field(default_factory=dict)
    stitched_by: ShortText = ""  # how the record was found: "record key", "EIN 12-3456789", "new"


class FieldChange(msgspec.Struct, gc=False, frozen=True, kw_only=True):
    """A field's winning value before and after (None: no value)."""

    record_id: str
    field: str
    before: FieldValue | None
    after: FieldValue | None


class MergeApplied(msgspec.Struct, gc=False, tag="dataset.merge_applied", frozen=True, kw_only=True):
    """A result's candidates joined their records; `changes`: the winners that moved."""

    provenance: Provenance
    records: list[RecordMerge]
    changes: list[FieldChange] = msgspec.field(default_factory=list)


class ReviewRequested(msgspec.Struct, gc=False, tag="dataset.review_requested", frozen=True, kw_only=True):
    """A record's candidates held for a reviewer: `changes` is the field-by-field diff they
    would make, `reasons` why they wait (a critical field, low confidence, an ambiguous match);
    `stitch_candidates`: the existing records an ambiguous one could be."""

    review_id: ReviewId
    provenance: Provenance
    record: RecordMerge
    changes: list[FieldChange]
    reasons: list[str]
    stitch_candidates: list[str] = msgspec.field(default_factory=list)


class ReviewApproved(msgspec.Struct, gc=False, tag="dataset.review_approved", frozen=True, kw_only=True):
    """The held candidates joined record `record_id` (the proposed one, or the one the reviewer chose)."""

    review_id: ReviewId
    reviewer: ShortText
    comment: Comment = ""
    record_id: RecordId
    changes: list[FieldChange] = msgspec.field(default_factory=list)


class ReviewRejected(msgspec.Struct, gc=False, tag="dataset.review_rejected", frozen=True, kw_only=True):
    review_id: ReviewId
    reviewer: ShortText
    comment: Comment = ""


class NodeRetracted(msgspec.Struct, gc=False, tag="dataset.node_retracted", frozen=True, kw_only=True):
    """Every candidate of the node (since `since`) dropped; `changes`: the fields that fell back,
    `reviews_dropped`: held changes of the node that will never apply."""

    node_id: Identifier
    since: datetime | None = None
    by: ShortText
    reason: Text = ""
    candidates_dropped: int
    changes: list[FieldChange]
    reviews_dropped: list[str] = msgspec.field(default_factory=list)


class VersionPublished(msgspec.Struct, gc=False, tag="dataset.version_published", frozen=True, kw_only=True):
    """Version `version` of the dataset: immutable; `content_hash` is the sha256 of the canonical
    bytes of every published record (ccn_merge.published.canonical_bytes) under schema `schema_version`."""

    version: VersionNumber
    content_hash: Sha256Hex
    records: int
    schema_version: ShortText
    by: ShortText
    note: Text = ""
    published_at: datetime


DatasetEvent = MergeApplied | ReviewRequested | ReviewApproved | ReviewRejected | NodeRetracted | VersionPublished
DATASET_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    MergeApplied,
    ReviewRequested,
    ReviewApproved,
    ReviewRejected,
    NodeRetracted,
    VersionPublished,
)
