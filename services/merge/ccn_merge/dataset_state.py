"""A dataset's state as its history folds it (ccn_merge.dataset's decider writes it): the
records and their candidates, the stitching index, the proposals seen, the reviews, the
versions. A mutable fold: see ccn_merge.dataset for why."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from ccn_merge.merge_rules import RecordState
from ccn_merge.stitching import StitchIndex
from ccn_proto.datasets import FieldChange, Provenance, RecordMerge, VersionPublished

ReviewStatus = Literal["pending", "approved", "rejected", "dropped"]


@dataclass(slots=True)
class Review:
    review_id: str
    provenance: Provenance
    record: RecordMerge
    changes: list[FieldChange]
    reasons: list[str]
    stitch_candidates: list[str]
    status: ReviewStatus = "pending"
    reviewer: str = ""
    comment: str = ""


@dataclass(slots=True)
class DatasetState:
    name: str
    records: dict[str, RecordState] = field(default_factory=dict)
    index: StitchIndex = field(default_factory=StitchIndex)
    proposals: set[str] = field(default_factory=set)  # proposal keys already decided
    reviews: dict[str, Review] = field(default_factory=dict)
    versions: list[VersionPublished] = field(default_factory=list)
    records_of_node: dict[str, set[str]] = field(default_factory=dict)
    next_seq: int = 0

    def pending_reviews(self) -> list[Review]:
        return [r for r in self.reviews.values() if r.status == "pending"]


def review_id(proposal_key: str, index: int) -> str:
    return "rev-" + hashlib.sha256(f"{proposal_key}\n{index}".encode()).hexdigest()[:24]
