"""A dataset as a version publishes it, and its canonical bytes: every record with a value,
one JSON line each (keys sorted, a newline after each), in record-id order, each field with its
value, the rule that chose it and the provenance of the candidates behind it. A version's
`content_hash` is the sha256 of these bytes. Each record's line is cached on the record until
one of its winners moves, so publishing again after a few changes encodes only those records."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping

import msgspec

from ccn_merge.dataset_state import DatasetState
from ccn_merge.merge_rules import RecordState, Winner
from ccn_merge.schema import DatasetSchema
from ccn_proto.datasets import FieldValue


class ProvenanceRef(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    job_id: str
    node_id: str
    result_checksum: str


class PublishedField(msgspec.Struct, frozen=True, kw_only=True):
    value: FieldValue
    rule: str
    provenance: list[ProvenanceRef]


class PublishedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A record as a version publishes it: each field's value with the rule and candidates behind it."""

    record_id: str
    kind: str
    fields: dict[str, PublishedField]

    def values(self) -> dict[str, FieldValue]:
        return {name: f.value for name, f in self.fields.items()}


def published_record(
    schema: DatasetSchema, record: RecordState, winners: Mapping[str, Winner | None] | None = None
) -> PublishedRecord | None:
    """The record as published (None: no field has a value); `winners` overrides some fields'."""
    specs = schema.record(record.kind)
    fields: dict[str, PublishedField] = {}
    for name in sorted(record.fields):
        state = record.fields[name]
        winner = winners[name] if winners is not None and name in winners else state.winner
        if winner is None or specs.field(name) is None:
            continue
        chosen = set(winner.chosen)
        refs = [
            ProvenanceRef(
                source=c.provenance.source,
                job_id=c.provenance.job_id,
                node_id=c.provenance.node_id,
                result_checksum=c.provenance.result_checksum,
            )
            for c in state.candidates
            if c.seq in chosen
        ]
        fields[name] = PublishedField(value=winner.value, rule=winner.rule, provenance=refs)
    if not fields:
        return None
    return PublishedRecord(record_id=record.record_id, kind=record.kind, fields=fields)


_ENCODER = msgspec.json.Encoder(order="sorted")


def _record_bytes(schema: DatasetSchema, record: RecordState) -> bytes:
    if record.canonical is None:
        published = published_record(schema, record)
        record.canonical = b"" if published is None else _ENCODER.encode(published)
    return record.canonical


def _lines(
    schema: DatasetSchema, state: DatasetState, overrides: Mapping[str, Mapping[str, Winner | None]] | None
) -> Iterator[bytes]:
    for record_id in sorted(state.records):
        record = state.records[record_id]
        if overrides is not None and record_id in overrides:
            published = published_record(schema, record, overrides[record_id])
            line = b"" if published is None else _ENCODER.encode(published)
        else:
            line = _record_bytes(schema, record)
        if line:
            yield line


def canonical_bytes(
    schema: DatasetSchema, state: DatasetState, overrides: Mapping[str, Mapping[str, Winner | None]] | None = None
) -> bytes:
    """Every published record, one JSON line each (keys sorted, a newline after each), in
    record-id order; `overrides` replaces some records' winners (a retraction's preview)."""
    return b"".join(line + b"\n" for line in _lines(schema, state, overrides))


def content_hash(
    schema: DatasetSchema, state: DatasetState, overrides: Mapping[str, Mapping[str, Winner | None]] | None = None
) -> tuple[str, int]:
    """The sha256 of the canonical bytes, and the number of published records."""
    digest = hashlib.sha256()
    count = 0
    for line in _lines(schema, state, overrides):
        digest.update(line + b"\n")
        count += 1
    return digest.hexdigest(), count


def record_lines(schema: DatasetSchema, state: DatasetState) -> dict[str, bytes]:
    """Every published record's canonical line, by record id: a version as it was published,
    cheap to keep (the lines are the records' cached bytes, shared until a record changes)."""
    lines = {}
    for record_id, record in state.records.items():
        line = _record_bytes(schema, record)
        if line:
            lines[record_id] = line
    return lines


_decode_record = msgspec.json.Decoder(PublishedRecord).decode


def changed_records(
    before: Mapping[str, bytes], after: Mapping[str, bytes]
) -> tuple[dict[str, PublishedRecord], dict[str, PublishedRecord]]:
    """The records whose lines differ between two versions' `record_lines`, decoded: all a diff
    needs to look at (a record with the same line has no change)."""
    old: dict[str, PublishedRecord] = {}
    new: dict[str, PublishedRecord] = {}
    for record_id in set(before) | set(after):
        a, b = before.get(record_id), after.get(record_id)
        if a is b or a == b:
            continue
        if a is not None:
            old[record_id] = _decode_record(a)
        if b is not None:
            new[record_id] = _decode_record(b)
    return old, new


def snapshot(schema: DatasetSchema, state: DatasetState) -> dict[str, PublishedRecord]:
    records = {}
    for record_id in sorted(state.records):
        published = published_record(schema, state.records[record_id])
        if published is not None:
            records[record_id] = published
    return records
