"""The dataset aggregate's rules (CC-34, CC-45; `ccn.dataset.<name>.<event>`, stream
CCN_DATASETS): merge proposals from finalised results, the review of critical or doubtful
changes, immutable numbered versions and the retraction of a node's contributions. Pure: the
merge service loads, decides and appends around it.

- `ProposeMerge`: a finalised result's records are checked against the schema, stitched to their
  canonical records (ccn_merge.stitching), and their values become candidates of the records'
  fields (ccn_merge.merge_rules). A record whose change would move a critical field's value,
  that rests on a candidate less confident than the schema's `review_below`, or whose match is
  ambiguous, is held (`dataset.review_requested`, with the field-by-field diff); the rest apply
  at once (`dataset.merge_applied`). A result proposes once: the same job and checksum again
  decide nothing.
- `ApproveReview` / `RejectReview`: a held record applies (to the record the reviewer names,
  for an ambiguous match) or never does; each decision is an event with the reviewer and comment.
- `PublishVersion`: version n+1 with the sha256 of the canonical bytes of every published
  record (ccn_merge.published.canonical_bytes); a version is never edited, and one that would equal the last is
  refused.
- `RetractNode`: every candidate of the node (observed since `since`) is marked retracted, not
  removed; its fields fall back to the next-best candidate, its held changes are dropped, and
  a new version records the result.

The state is a mutable fold, as the crawl campaign's (ccn_core.domain.campaign) and for the same
reason: a dataset holds 100,000 records, each with its candidates, and copying that on every
event would make a replay quadratic. `evolve` updates the state in place and returns it;
`decide` never changes it (it previews on copies of the few lists it touches).

Replay: the same events in the same order give byte-identical canonical bytes; every tie in
the rules ends on the candidates' arrival order, which is the event order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import msgspec

from ccn_core import subjects
from ccn_core.errors import BadInput, CcnError, Conflict, NotFound
from ccn_merge.dataset_state import DatasetState, Review, review_id
from ccn_merge.merge_rules import (
    Candidate,
    Explanation,
    FieldState,
    RecordState,
    Winner,
    choose,
    explain,
    new_candidate,
    record_changes,
    with_candidate,
)
from ccn_merge.published import PublishedRecord, content_hash, snapshot
from ccn_merge.schema import DEFAULT_SCHEMA, DatasetSchema, FieldSpec, clean_value
from ccn_merge.stitching import STITCH_FIELDS, new_record_id, stitch
from ccn_proto.constraints import document_problem
from ccn_proto.datasets import (
    AGGREGATE,
    ApproveReview,
    DatasetCommand,
    DatasetEvent,
    FieldChange,
    FieldValue,
    MergeApplied,
    NodeRetracted,
    ProposeMerge,
    Provenance,
    PublishVersion,
    RecordMerge,
    RecordProposal,
    RejectReview,
    RetractNode,
    ReviewApproved,
    ReviewRejected,
    ReviewRequested,
    VersionPublished,
)

MAX_REASONS = 20
MAX_CLOCK_SKEW = timedelta(minutes=5)


# ---- the decider ----


def _checked(command: object) -> DatasetCommand:
    """The command as its Struct's constraints allow it (commands built in-process skip the
    decoder's checks): any breach, of any depth, is a BadInput naming where."""
    problem = document_problem(command)
    if problem is not None:
        raise BadInput(f"{problem.path or 'the command'} {problem.reason}", field=problem.path or None)
    command_type = type(command)
    if command_type not in (ProposeMerge, ApproveReview, RejectReview, PublishVersion, RetractNode):
        raise BadInput(f"not a dataset command: {command_type.__name__}")
    try:
        checked: DatasetCommand = msgspec.convert(msgspec.to_builtins(command), DatasetCommand)
        return checked
    except msgspec.ValidationError as exc:
        raise BadInput(f"the command is not valid: {exc}") from None
    except (TypeError, ValueError, RecursionError, OverflowError) as exc:
        raise BadInput(f"the command cannot be read: {type(exc).__name__}") from None


def _aware(moment: datetime | None, name: str) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise BadInput(f"{name} must carry a time zone", field=name)


class DatasetDecider:
    aggregate = AGGREGATE

    def __init__(self, schema: DatasetSchema = DEFAULT_SCHEMA) -> None:
        self.schema = schema

    def initial_state(self, aggregate_id: str) -> DatasetState:
        return DatasetState(name=aggregate_id)

    def decide(self, command: DatasetCommand, state: DatasetState, now: datetime) -> list[DatasetEvent]:
        command = _checked(command)
        if command.dataset != state.name:
            raise BadInput(f"the command is for dataset {command.dataset}, not {state.name}", field="dataset")
        match command:
            case ProposeMerge():
                return self._propose(command, state, now)
            case ApproveReview():
                return self._approve(command, state)
            case RejectReview():
                review = self._pending(state, command.review_id)
                return [ReviewRejected(review_id=review.review_id, reviewer=command.reviewer, comment=command.comment)]
            case PublishVersion():
                digest, count = content_hash(self.schema, state)
                if state.versions and state.versions[-1].content_hash == digest:
                    raise Conflict(f"nothing changed since version {state.versions[-1].version}")
                return [self._version(state, digest, count, command.by, command.note, now)]
            case RetractNode():
                return self._retract(command, state, now)
        raise BadInput(f"not a dataset command: {type(command).__name__}")

    # ---- proposals ----

    def _cleaned(self, proposal: RecordProposal, index: int) -> tuple[dict[str, FieldValue], list[FieldSpec]]:
        specs = self.schema.record(proposal.kind)
        values: dict[str, FieldValue] = {}
        used: list[FieldSpec] = []
        for name in sorted(proposal.fields):
            spec = specs.field(name)
            if spec is None:
                raise BadInput(f"records[{index}]: a {proposal.kind} has no field {name!r}", field=f"records[{index}]")
            raw = proposal.fields[name]
            if raw is None:
                continue
            try:
                values[name] = clean_value(spec, raw)
            except CcnError as exc:
                raise BadInput(f"records[{index}]: {exc.message}", field=f"records[{index}].fields.{name}") from None
            used.append(spec)
        unknown = sorted(set(proposal.confidence) - set(proposal.fields))
        if unknown:
            raise BadInput(f"records[{index}]: confidence for fields not proposed: {', '.join(unknown)}")
        if not values:
            raise BadInput(f"records[{index}] proposes no value", field=f"records[{index}].fields")
        return values, used

    def _propose(self, command: ProposeMerge, state: DatasetState, now: datetime) -> list[DatasetEvent]:
        provenance = command.provenance
        _aware(provenance.observed_at, "provenance.observed_at")
        if provenance.observed_at > now + MAX_CLOCK_SKEW:
            # an observation from the future would win every `overwrite` until then
            raise BadInput("provenance.observed_at is in the future", field="provenance.observed_at")
        key = provenance.proposal_key()
        if key in state.proposals:
            return []
        cleaned = [self._cleaned(proposal, index) for index, proposal in enumerate(command.records)]
        # candidates this proposal adds, by record and field, so that two of its records that
        # land on one record preview together
        overlay: dict[tuple[str, str], list[Candidate]] = {}
        seq = state.next_seq
        applied: list[RecordMerge] = []
        changes: list[FieldChange] = []
        held: list[DatasetEvent] = []
        kinds: dict[str, str] = {}  # the records this proposal names, and their kinds
        for index, (proposal, (values, specs)) in enumerate(zip(command.records, cleaned, strict=True)):
            found = stitch(proposal.kind, proposal.record_id, values, state.records, state.index)
            record_id = found.record_id or new_record_id(proposal.kind, key, index)
            if kinds.setdefault(record_id, proposal.kind) != proposal.kind:
                raise BadInput(
                    f"records[{index}]: record {record_id} is proposed as two kinds", field=f"records[{index}]"
                )
            confidence = {name: proposal.confidence.get(name, provenance.confidence) for name in values}
            merge = RecordMerge(
                record_id=record_id,
                kind=proposal.kind,
                values=values,
                confidence=confidence,
                stitched_by=found.reason[:128],
            )
            record = state.records.get(record_id) or RecordState(record_id=record_id, kind=proposal.kind)
            lists: dict[str, list[Candidate]] = {}
            for spec in specs:
                current = overlay.get((record_id, spec.name))
                if current is None:
                    existing = record.fields.get(spec.name)
                    current = existing.candidates if existing is not None else []
                candidate = new_candidate(spec, values[spec.name], provenance, confidence[spec.name], seq)
                seq += 1
                lists[spec.name] = with_candidate(spec, current, candidate)
            before = {spec.name: self._preview_value(record, overlay, spec) for spec in specs}
            after = {spec.name: choose(spec, lists[spec.name]) for spec in specs}
            record_diff = record_changes(record_id, {s.name: s for s in specs}, before, after)
            reasons = self._review_reasons(found.outcome == "ambiguous", found.reason, record_diff, specs, confidence)
            if reasons:
                seq -= len(specs)  # held candidates take their place in the history when approved
                held.append(
                    ReviewRequested(
                        review_id=review_id(key, index),
                        provenance=provenance,
                        record=merge,
                        changes=record_diff,
                        reasons=reasons,
                        stitch_candidates=list(found.candidates),
                    )
                )
                continue
            for spec in specs:
                overlay[(record_id, spec.name)] = lists[spec.name]
            applied.append(merge)
            changes.extend(record_diff)
        events: list[DatasetEvent] = []
        if applied:
            events.append(MergeApplied(provenance=provenance, records=applied, changes=changes))
        return events + held

    def _preview_value(
        self, record: RecordState, overlay: Mapping[tuple[str, str], list[Candidate]], spec: FieldSpec
    ) -> FieldValue | None:
        pending = overlay.get((record.record_id, spec.name))
        if pending is None:
            return record.value(spec.name)
        winner = choose(spec, pending)
        return winner.value if winner is not None else None

    def _review_reasons(
        self,
        ambiguous: bool,
        stitch_reason: str,
        diff: list[FieldChange],
        specs: list[FieldSpec],
        confidence: Mapping[str, float],
    ) -> list[str]:
        reasons = [stitch_reason[:300]] if ambiguous else []
        by_name = {spec.name: spec for spec in specs}
        for change in diff:
            spec = by_name[change.field]
            if spec.critical and change.before is not None:
                reasons.append(f"critical field {spec.name} changes")
            if confidence[spec.name] < self.schema.review_below:
                reasons.append(
                    f"low confidence {confidence[spec.name]:g} on {spec.name} (below {self.schema.review_below:g})"
                )
        return reasons[:MAX_REASONS]

    # ---- reviews ----

    def _pending(self, state: DatasetState, wanted: str) -> Review:
        review = state.reviews.get(wanted)
        if review is None:
            raise NotFound(f"no review {wanted} in dataset {state.name}")
        if review.status != "pending":
            raise Conflict(f"review {wanted} is {review.status} already")
        return review

    def _approve(self, command: ApproveReview, state: DatasetState) -> list[DatasetEvent]:
        review = self._pending(state, command.review_id)
        target = command.record_id or review.record.record_id
        if command.record_id is not None and command.record_id not in (
            *review.stitch_candidates,
            review.record.record_id,
        ):
            raise BadInput(
                f"record {command.record_id} is not one this change could join "
                f"({', '.join(review.stitch_candidates) or 'none'})",
                field="record_id",
            )
        existing = state.records.get(target)
        if existing is not None and existing.kind != review.record.kind:
            raise Conflict(f"record {target} is a {existing.kind}, not a {review.record.kind}")
        record = existing or RecordState(record_id=target, kind=review.record.kind)
        specs = self.schema.record(review.record.kind)
        before: dict[str, FieldValue | None] = {}
        after: dict[str, Winner | None] = {}
        used: dict[str, FieldSpec] = {}
        for offset, (name, value) in enumerate(sorted(review.record.values.items())):
            spec = specs.field(name)
            if spec is None:
                continue
            used[name] = spec
            state_field = record.fields.get(name)
            current = state_field.candidates if state_field is not None else []
            conf = review.record.confidence.get(name, review.provenance.confidence)
            candidate = new_candidate(spec, value, review.provenance, conf, state.next_seq + offset)
            before[name] = record.value(name)
            after[name] = choose(spec, with_candidate(spec, current, candidate))
        return [
            ReviewApproved(
                review_id=review.review_id,
                reviewer=command.reviewer,
                comment=command.comment,
                record_id=target,
                changes=record_changes(target, used, before, after),
            )
        ]

    # ---- versions and retraction ----

    def _version(
        self, state: DatasetState, digest: str, count: int, by: str, note: str, now: datetime
    ) -> VersionPublished:
        return VersionPublished(
            version=len(state.versions) + 1,
            content_hash=digest,
            records=count,
            schema_version=self.schema.version,
            by=by,
            note=note,
            published_at=now,
        )

    def _retract(self, command: RetractNode, state: DatasetState, now: datetime) -> list[DatasetEvent]:
        _aware(command.since, "since")
        dropped = 0
        changes: list[FieldChange] = []
        overrides: dict[str, dict[str, Winner | None]] = {}
        for record_id in sorted(state.records_of_node.get(command.node_id, ())):
            record = state.records[record_id]
            specs = self.schema.record(record.kind)
            for name in sorted(record.fields):
                spec = specs.field(name)
                field_state = record.fields[name]
                hit = [c for c in field_state.candidates if _retracts(command.node_id, command.since, c)]
                if not hit or spec is None:
                    continue
                dropped += len(hit)
                remaining = [
                    dataclasses.replace(c, retracted=True) if _retracts(command.node_id, command.since, c) else c
                    for c in field_state.candidates
                ]
                winner = choose(spec, remaining)
                overrides.setdefault(record_id, {})[name] = winner
                changes += record_changes(record_id, {name: spec}, {name: record.value(name)}, {name: winner})
        reviews = sorted(
            r.review_id
            for r in state.pending_reviews()
            if _retracts(command.node_id, command.since, None, r.provenance)
        )
        if not dropped and not reviews:
            since = f" since {command.since.isoformat()}" if command.since else ""
            raise NotFound(f"node {command.node_id} has no contributions{since} in dataset {state.name}")
        digest, count = content_hash(self.schema, state, overrides)
        retracted = NodeRetracted(
            node_id=command.node_id,
            since=command.since,
            by=command.by,
            reason=command.reason,
            candidates_dropped=dropped,
            changes=changes,
            reviews_dropped=reviews,
        )
        note = f"retracted node {command.node_id}: {len(changes)} field(s) fell back"
        return [retracted, self._version(state, digest, count, command.by, note[:1000], now)]

    # ---- evolve ----

    def evolve(self, state: DatasetState, event: DatasetEvent) -> DatasetState:
        match event:
            case MergeApplied(provenance=provenance, records=records):
                state.proposals.add(provenance.proposal_key())
                for merge in records:
                    self._apply(state, merge, merge.record_id, provenance)
            case ReviewRequested():
                state.proposals.add(event.provenance.proposal_key())
                state.reviews[event.review_id] = Review(
                    review_id=event.review_id,
                    provenance=event.provenance,
                    record=event.record,
                    changes=list(event.changes),
                    reasons=list(event.reasons),
                    stitch_candidates=list(event.stitch_candidates),
                )
            case ReviewApproved():
                review = state.reviews.get(event.review_id)
                if review is not None and review.status == "pending":
                    review.status, review.reviewer, review.comment = "approved", event.reviewer, event.comment
                    self._apply(state, review.record, event.record_id, review.provenance)
            case ReviewRejected():
                review = state.reviews.get(event.review_id)
                if review is not None and review.status == "pending":
                    review.status, review.reviewer, review.comment = "rejected", event.reviewer, event.comment
            case NodeRetracted():
                self._apply_retraction(state, event)
            case VersionPublished():
                state.versions.append(event)
            case _:
                raise BadInput(f"not a dataset event: {type(event).__name__}")
        return state

    def _apply(self, state: DatasetState, merge: RecordMerge, record_id: str, provenance: Provenance) -> None:
        record = state.records.get(record_id)
        if record is None:
            record = state.records[record_id] = RecordState(record_id=record_id, kind=merge.kind)
        specs = self.schema.record(record.kind)
        for name in sorted(merge.values):
            spec = specs.field(name)
            if spec is None:
                continue  # a field a later schema dropped: its history stays in the events
            confidence = merge.confidence.get(name, provenance.confidence)
            candidate = new_candidate(spec, merge.values[name], provenance, confidence, state.next_seq)
            state.next_seq += 1
            field_state = record.fields.get(name)
            if field_state is None:
                field_state = record.fields[name] = FieldState()
            field_state.candidates = with_candidate(spec, field_state.candidates, candidate)
            field_state.winner = choose(spec, field_state.candidates)
        record.canonical = None
        state.records_of_node.setdefault(provenance.node_id, set()).add(record_id)
        if not STITCH_FIELDS[record.kind].isdisjoint(merge.values):
            state.index.update(record)

    def _apply_retraction(self, state: DatasetState, event: NodeRetracted) -> None:
        for record_id in sorted(state.records_of_node.get(event.node_id, ())):
            record = state.records[record_id]
            specs = self.schema.record(record.kind)
            touched = False
            for name, field_state in record.fields.items():
                hit = False
                for candidate in field_state.candidates:
                    if _retracts(event.node_id, event.since, candidate):
                        candidate.retracted = hit = True
                spec = specs.field(name)
                if hit and spec is not None:
                    field_state.winner = choose(spec, field_state.candidates)
                    touched = True
            if touched:
                record.canonical = None
                state.index.update(record)
        for wanted in event.reviews_dropped:
            review = state.reviews.get(wanted)
            if review is not None and review.status == "pending":
                review.status = "dropped"


def _retracts(
    node_id: str, since: datetime | None, candidate: Candidate | None, provenance: Provenance | None = None
) -> bool:
    source = candidate.provenance if candidate is not None else provenance
    if source is None or source.node_id != node_id or (candidate is not None and candidate.retracted):
        return False
    return since is None or source.observed_at >= since


def explain_field(schema: DatasetSchema, state: DatasetState, record_id: str, field_name: str) -> Explanation:
    """Why a record's field is what it is (`ccn datasets explain RECORD FIELD`): NotFound for a
    record the dataset does not hold, BadInput for a field its kind does not have."""
    record = state.records.get(record_id)
    if record is None:
        raise NotFound(f"dataset {state.name} holds no record {record_id[:128]!r}")
    spec = schema.field_of(record.kind, field_name)
    if spec is None:
        raise BadInput(f"a {record.kind} has no field {field_name[:64]!r}", field="field")
    return explain(record, spec)


def event_subject(dataset: str, event: DatasetEvent) -> str:
    """`ccn.dataset.<name>.<event>`: where the event is appended (stream CCN_DATASETS)."""
    tag = str(type(event).__struct_config__.tag)
    return subjects.event(AGGREGATE, dataset, tag.split(".", 1)[1])


def snapshot_at(
    decider: DatasetDecider, name: str, events: Iterable[DatasetEvent], version: int
) -> dict[str, PublishedRecord]:
    """The records as version `version` published them: the history folded up to that version."""
    state = decider.initial_state(name)
    for event in events:
        decider.evolve(state, event)
        if isinstance(event, VersionPublished) and event.version == version:
            return snapshot(decider.schema, state)
    raise NotFound(f"dataset {name} has no version {version}")
