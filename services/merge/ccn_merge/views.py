"""The merge service's replies built from a dataset's state (pure): reviews, versions and diffs as
the commands return them, and the jobs a node's retraction re-queues with their idempotency key."""

from __future__ import annotations

import hashlib
from datetime import datetime

import msgspec

from ccn_merge.dataset_state import DatasetState, Review
from ccn_merge.diff import DatasetDiff, RecordDiff, diff_table
from ccn_proto import merge as api
from ccn_proto.datasets import VersionPublished


def requeue_key(node_id: str, job_id: str) -> str:
    """The scheduler's idempotency key of the fresh job for a retracted node's job: a retried
    retraction asks for the same job and creates nothing."""
    return "retract-requeue-" + hashlib.sha256(f"{node_id}\n{job_id}".encode()).hexdigest()[:40]


def jobs_of_node(state: DatasetState, node_id: str, since: datetime | None) -> set[str]:
    """The jobs whose results the node contributed (since `since`), retracted ones included, so
    that retrying a retraction finds the same jobs."""
    jobs: set[str] = set()
    for record_id in state.records_of_node.get(node_id, ()):
        for field_state in state.records[record_id].fields.values():
            for candidate in field_state.candidates:
                p = candidate.provenance
                if p.node_id == node_id and (since is None or p.observed_at >= since):
                    jobs.add(p.job_id)
    for review in state.reviews.values():
        p = review.provenance
        if p.node_id == node_id and (since is None or p.observed_at >= since):
            jobs.add(p.job_id)
    return jobs


def review_view(dataset: str, review: Review) -> api.ReviewView:
    return api.ReviewView(
        review_id=review.review_id,
        dataset=dataset,
        record_id=review.record.record_id,
        kind=review.record.kind,
        status=review.status,
        reasons=list(review.reasons),
        changes=list(review.changes),
        stitch_candidates=list(review.stitch_candidates),
        provenance=review.provenance,
        reviewer=review.reviewer,
        comment=review.comment,
    )


def version_view(dataset: str, version: VersionPublished) -> api.VersionView:
    return api.VersionView(
        dataset=dataset,
        version=version.version,
        content_hash=version.content_hash,
        records=version.records,
        schema_version=version.schema_version,
        by=version.by,
        note=version.note,
        published_at=version.published_at,
    )


def _record_views(records: list[RecordDiff], limit: int) -> list[api.RecordDiffView]:
    return [msgspec.convert(msgspec.to_builtins(r), api.RecordDiffView) for r in records[:limit]]


def diff_reply(diff: DatasetDiff, *, limit: int, table: bool) -> api.DiffReply:
    return api.DiffReply(
        dataset=diff.dataset,
        from_version=diff.from_version,
        to_version=diff.to_version,
        added=_record_views(diff.added, limit),
        removed=_record_views(diff.removed, limit),
        changed=_record_views(diff.changed, limit),
        added_count=len(diff.added),
        removed_count=len(diff.removed),
        changed_count=len(diff.changed),
        truncated=max(len(diff.added), len(diff.removed), len(diff.changed)) > limit,
        table=diff_table(diff) if table else None,
    )
