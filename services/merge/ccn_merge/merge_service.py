"""The merge service's shell: final job results become merge proposals on the dataset aggregate,
and the review queue, versions, diffs, explanations and retractions are its commands.

Every dataset has one DatasetWriter (ccn_merge.writer) holding its fold in memory; commands and
the reactor's proposals go through it, reads take its lock. The service runs as one replica
(docs/adr/0025-one-merge-writer.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from cachetools import LRUCache
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ccn_core import ids, subjects
from ccn_core.aggregate import EventMeta
from ccn_core.commands import CommandClient, CommandContext, CommandServer
from ccn_core.errors import BadInput, Conflict, NotFound
from ccn_core.eventstore import EventStore, StoredEvent
from ccn_core.logging import get_logger
from ccn_core.topology import JOBS
from ccn_merge.dataset import DatasetDecider, explain_field
from ccn_merge.dataset_state import DatasetState
from ccn_merge.diff import diff_versions
from ccn_merge.proposals import FinalResult, might_propose, proposals_for
from ccn_merge.published import PublishedRecord, changed_records, published_record, snapshot
from ccn_merge.views import diff_reply, jobs_of_node, requeue_key, review_view, version_view
from ccn_merge.writer import DatasetWriter
from ccn_proto import merge as api
from ccn_proto.datasets import (
    AGGREGATE,
    STREAM,
    ApproveReview,
    DatasetCommand,
    DatasetEvent,
    NodeRetracted,
    PublishVersion,
    RejectReview,
    RetractNode,
    ReviewApproved,
    ReviewRejected,
    VersionPublished,
)
from ccn_proto.envelope import Actor, Envelope
from ccn_proto.jobs import JobCompleted, JobCreated
from ccn_proto.scheduler import CreateJob, CreateJobReply

log = get_logger("ccn.merge")

MERGE_ACTOR = Actor(kind="service", id="merge")
# snapshots of published versions kept for diffs: each holds a whole dataset
_SNAPSHOTS_KEPT = 4
# scheduler commands in flight while a retraction re-queues its jobs (each is idempotent)
_REQUEUES_AT_ONCE = 32
_decode_created = msgspec.json.Decoder(Envelope[JobCreated]).decode
_decode_event = msgspec.json.Decoder(Envelope[DatasetEvent]).decode


def _meta(ctx: CommandContext, actor: Actor) -> EventMeta:
    return EventMeta(correlation_id=ctx.correlation_id, causation_id=ctx.causation_id, actor=actor)


class MergeService:
    def __init__(
        self,
        store: EventStore,
        js: JetStreamContext,
        commands: CommandClient,
        *,
        decider: DatasetDecider | None = None,
        dataset: str = api.DEFAULT_DATASET,
        spawn_writer: Callable[[DatasetWriter], None],
    ) -> None:
        self._store = store
        self._js = js
        self._commands = commands
        self.decider = decider or DatasetDecider()
        self.dataset = dataset  # where final results are merged
        self._writers: dict[str, DatasetWriter] = {}
        self._spawn_writer = spawn_writer
        self._snapshots: LRUCache[tuple[str, int], dict[str, PublishedRecord]] = LRUCache(maxsize=_SNAPSHOTS_KEPT)
        self.proposed = 0

    # ---- writers ----

    async def start(self) -> None:
        """Fold every dataset the stream holds, and the one results merge into."""
        names = {self.dataset}
        info = await self._js.stream_info(STREAM, subjects_filter=subjects.aggregate_events(AGGREGATE))
        names.update(subject.split(".")[2] for subject in (info.state.subjects or {}))
        for name in sorted(names):
            await self._open(name)

    async def _open(self, name: str) -> DatasetWriter:
        writer = DatasetWriter(self._store, self.decider, name)
        await writer.load()
        self._writers[name] = writer
        self._spawn_writer(writer)
        log.info("dataset folded", dataset=name, version=writer.version, records=len(writer.state.records))
        return writer

    def writer(self, name: str) -> DatasetWriter:
        writer = self._writers.get(name)
        if writer is None:
            raise NotFound(f"no dataset {name!r}")
        return writer

    @property
    def writers(self) -> dict[str, DatasetWriter]:
        return dict(self._writers)

    # ---- the reactor: final results → proposals ----

    async def on_job_completed(self, envelope: Envelope[Any], _: StoredEvent) -> None:
        completed = envelope.data
        if not isinstance(completed, JobCompleted) or not might_propose(completed.result):
            return
        if completed.replica_of is not None:
            return  # a replica's own result: its group's first job carries the answer (ADR 0026)
        created = await self._job_created(envelope.aggregate_id)
        if created is None:
            log.warning("completed job has no creation event; nothing merged", job_id=envelope.aggregate_id)
            return
        final = FinalResult(
            job_id=envelope.aggregate_id,
            job_type=created.job_type,
            node_id=completed.node_id,
            checksum=completed.checksum,
            result=completed.result,
            observed_at=envelope.occurred_at,
        )
        writer = self.writer(self.dataset)
        for command in proposals_for(final, self.dataset):
            meta = EventMeta(
                correlation_id=envelope.correlation_id,
                causation_id=envelope.event_id,
                actor=MERGE_ACTOR,
                idempotency_key=f"propose/{command.provenance.proposal_key()}",
            )
            await writer.execute(command, meta)
            self.proposed += 1

    async def _job_created(self, job_id: str) -> JobCreated | None:
        try:
            message = await self._js.get_last_msg(JOBS.name, subjects.event("job", job_id, "created"))
        except NotFoundError:
            return None
        if message.data is None:
            return None
        created: JobCreated = _decode_created(message.data).data
        return created

    # ---- commands ----

    def register_all(self, server: CommandServer) -> None:
        handlers: dict[str, tuple[type[msgspec.Struct], Callable[[Any, CommandContext], Awaitable[Any]]]] = {
            "list_reviews": (api.ListReviews, self.list_reviews),
            "approve_review": (ApproveReview, self.approve_review),
            "reject_review": (RejectReview, self.reject_review),
            "publish_version": (PublishVersion, self.publish_version),
            "list_versions": (api.ListVersions, self.list_versions),
            "diff_versions": (api.DiffVersions, self.diff_versions),
            "explain_field": (api.ExplainField, self.explain_field),
            "get_record": (api.GetRecord, self.get_record),
            "retract_node": (api.RetractNodeEverywhere, self.retract_node),
        }
        for name, (request_type, handler) in handlers.items():
            server.register(name, request_type, handler)

    async def list_reviews(self, request: api.ListReviews, _: CommandContext) -> api.ReviewList:
        def view(state: DatasetState) -> api.ReviewList:
            pending = state.pending_reviews()
            listed = [review_view(request.dataset, r) for r in pending[: request.limit]]
            return api.ReviewList(dataset=request.dataset, reviews=listed, pending=len(pending))

        return await self.writer(request.dataset).read(view)

    async def _decide(self, command: DatasetCommand, ctx: CommandContext, actor: Actor) -> list[Envelope[DatasetEvent]]:
        return await self.writer(command.dataset).execute(command, _meta(ctx, actor))

    async def approve_review(self, request: ApproveReview, ctx: CommandContext) -> api.ReviewDecided:
        events = await self._decide(request, ctx, Actor(kind="admin", id=request.reviewer))
        approved = next(e.data for e in events if isinstance(e.data, ReviewApproved))
        return api.ReviewDecided(
            review_id=approved.review_id, status="approved", record_id=approved.record_id, changes=approved.changes
        )

    async def reject_review(self, request: RejectReview, ctx: CommandContext) -> api.ReviewDecided:
        events = await self._decide(request, ctx, Actor(kind="admin", id=request.reviewer))
        rejected = next(e.data for e in events if isinstance(e.data, ReviewRejected))
        review = await self.writer(request.dataset).read(lambda s: s.reviews[rejected.review_id])
        return api.ReviewDecided(
            review_id=rejected.review_id, status="rejected", record_id=review.record.record_id, changes=review.changes
        )

    async def publish_version(self, request: PublishVersion, ctx: CommandContext) -> api.VersionView:
        events = await self._decide(request, ctx, Actor(kind="admin", id=request.by))
        published = next(e.data for e in events if isinstance(e.data, VersionPublished))
        return version_view(request.dataset, published)

    async def list_versions(self, request: api.ListVersions, _: CommandContext) -> api.VersionList:
        return await self.writer(request.dataset).read(
            lambda state: api.VersionList(
                dataset=request.dataset, versions=[version_view(request.dataset, v) for v in state.versions]
            )
        )

    async def diff_versions(self, request: api.DiffVersions, _: CommandContext) -> api.DiffReply:
        writer = self.writer(request.dataset)
        published = await writer.read(lambda state: len(state.versions))
        for wanted in (request.from_version, request.to_version):
            if wanted > published:
                raise NotFound(f"dataset {request.dataset} has {published} version(s), not {wanted}")
        kept = await writer.read(
            lambda _: (writer.snapshots.get(request.from_version), writer.snapshots.get(request.to_version))
        )
        if kept[0] is not None and kept[1] is not None:
            before, after = changed_records(kept[0], kept[1])  # the latest versions: no fold
        else:
            before, after = await self._snapshots_of(writer, request.from_version, request.to_version)
        diff = diff_versions(
            self.decider.schema,
            before,
            after,
            dataset=request.dataset,
            from_version=request.from_version,
            to_version=request.to_version,
        )
        return diff_reply(diff, limit=request.limit, table=request.table)

    async def _snapshots_of(
        self, writer: DatasetWriter, *versions: int
    ) -> tuple[dict[str, PublishedRecord], dict[str, PublishedRecord]]:
        """The records as the two versions published them: folded from the history once for
        both, and kept for the next diff (a version never changes)."""
        wanted = {v for v in versions if (writer.name, v) not in self._snapshots}
        if wanted:
            state = self.decider.initial_state(writer.name)
            last = max(wanted)
            scope = subjects.aggregate_filter(AGGREGATE, writer.name)
            async for batch in self._store.scan(STREAM, scope):
                for stored in batch:
                    event = _decode_event(stored.data).data
                    self.decider.evolve(state, event)
                    if isinstance(event, VersionPublished) and event.version in wanted:
                        self._snapshots[(writer.name, event.version)] = snapshot(self.decider.schema, state)
                    if isinstance(event, VersionPublished) and event.version >= last:
                        break
                else:
                    continue
                break
        first, second = versions
        return self._snapshots[(writer.name, first)], self._snapshots[(writer.name, second)]

    async def explain_field(self, request: api.ExplainField, _: CommandContext) -> api.FieldExplanation:
        explanation = await self.writer(request.dataset).read(
            lambda state: explain_field(self.decider.schema, state, request.record_id, request.field)
        )
        return msgspec.convert(msgspec.to_builtins(explanation), api.FieldExplanation)

    async def get_record(self, request: api.GetRecord, _: CommandContext) -> api.RecordView:
        def view(state: DatasetState) -> api.RecordView:
            record = state.records.get(request.record_id)
            published = published_record(self.decider.schema, record) if record is not None else None
            if published is None:
                raise NotFound(f"dataset {request.dataset} holds no record {request.record_id!r}")
            return api.RecordView(
                dataset=request.dataset,
                record_id=published.record_id,
                kind=published.kind,
                fields={
                    name: api.PublishedFieldView(
                        value=f.value,
                        rule=f.rule,
                        sources=sorted({p.source for p in f.provenance}),
                        jobs=sorted({p.job_id for p in f.provenance}),
                    )
                    for name, f in published.fields.items()
                },
            )

        return await self.writer(request.dataset).read(view)

    # ---- retraction ----

    async def retract_node(self, request: api.RetractNodeEverywhere, ctx: CommandContext) -> api.RetractionReply:
        if request.since is not None and request.since.utcoffset() is None:
            raise BadInput("since must carry a time zone", field="since")
        actor = Actor(kind="admin", id=request.by)
        retractions: list[api.DatasetRetraction] = []
        jobs: set[str] = set()
        for name, writer in sorted(self._writers.items()):
            jobs |= await writer.read(lambda state: jobs_of_node(state, request.node_id, request.since))
            command = RetractNode(
                dataset=name, node_id=request.node_id, since=request.since, by=request.by, reason=request.reason
            )
            try:
                events = await writer.execute(command, _meta(ctx, actor))
            except NotFound:
                retractions.append(
                    api.DatasetRetraction(
                        dataset=name, candidates_dropped=0, fields_changed=0, reviews_dropped=0, version=None
                    )
                )
                continue
            retracted = next(e.data for e in events if isinstance(e.data, NodeRetracted))
            version = next(e.data.version for e in events if isinstance(e.data, VersionPublished))
            retractions.append(
                api.DatasetRetraction(
                    dataset=name,
                    candidates_dropped=retracted.candidates_dropped,
                    fields_changed=len(retracted.changes),
                    reviews_dropped=len(retracted.reviews_dropped),
                    version=version,
                )
            )
        slots = asyncio.Semaphore(_REQUEUES_AT_ONCE)

        async def requeue(job_id: str) -> api.RequeuedJob:
            async with slots:
                return await self._requeue(request.node_id, job_id, ctx)

        requeued = list(await asyncio.gather(*(requeue(job_id) for job_id in sorted(jobs))))
        log.info("node retracted", node_id=request.node_id, datasets=len(retractions), requeued=len(requeued))
        return api.RetractionReply(node_id=request.node_id, datasets=retractions, requeued=requeued)

    async def _requeue(self, node_id: str, job_id: str, ctx: CommandContext) -> api.RequeuedJob:
        """A fresh job of the same type and payload, through the scheduler, once per (node, job)."""
        created = await self._job_created(job_id)
        if created is None:
            raise Conflict(f"job {job_id} has no creation event to re-queue it from")
        reply = await self._commands.call(
            "scheduler",
            "create_job",
            CreateJob(
                job_type=created.job_type,
                payload=created.payload,
                priority=created.priority,
                max_retries=created.max_retries,
                lease_s=created.lease_s,
                dataset_source=created.dataset_source,
                dataset_version=created.dataset_version,
                idempotency_key=requeue_key(node_id, job_id),
            ),
            CreateJobReply,
            correlation_id=ctx.correlation_id or ids.new_correlation_id(),
            causation_id=ctx.causation_id,
        )
        return api.RequeuedJob(job_id=job_id, new_job_id=reply.job_id, created=reply.created)
