"""Two versions of a dataset compared record by record and field by field (CC-84): the records
added, removed and changed, each change with its value before and after.

Schema-aware: two values of a field are compared by the field's comparison key
(ccn_merge.schema.comparison_key), so a difference of formatting alone (spaces, case in a name,
a URL's spelling, "10,000" and 10000) is no change; a field the schema no longer knows is
compared as it is. Only values count: a field whose value stayed while its provenance moved
(another result agreeing) is not a change of the data.

As data (`DatasetDiff`, msgspec, for `GET /datasets/{name}/diff` and downstream jobs) and as a
table (`diff_table`) for people.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from ccn_merge.published import PublishedRecord
from ccn_merge.schema import DatasetSchema, same_value
from ccn_proto.datasets import FieldValue

MAX_CELL_CHARS = 60


class FieldDiff(msgspec.Struct, frozen=True, kw_only=True):
    field: str
    before: FieldValue | None
    after: FieldValue | None


class RecordDiff(msgspec.Struct, frozen=True, kw_only=True):
    record_id: str
    kind: str
    fields: list[FieldDiff]


class DatasetDiff(msgspec.Struct, frozen=True, kw_only=True):
    dataset: str
    from_version: int
    to_version: int
    added: list[RecordDiff]
    removed: list[RecordDiff]
    changed: list[RecordDiff]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _same(schema: DatasetSchema, kind: str, name: str, a: FieldValue | None, b: FieldValue | None) -> bool:
    spec = schema.field_of(kind, name)
    return same_value(spec, a, b) if spec is not None else a == b


def _field_diffs(
    schema: DatasetSchema, kind: str, before: Mapping[str, FieldValue], after: Mapping[str, FieldValue]
) -> list[FieldDiff]:
    diffs = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if not _same(schema, kind, name, old, new):
            diffs.append(FieldDiff(field=name, before=old, after=new))
    return diffs


def diff_versions(
    schema: DatasetSchema,
    before: Mapping[str, PublishedRecord],
    after: Mapping[str, PublishedRecord],
    *,
    dataset: str,
    from_version: int,
    to_version: int,
) -> DatasetDiff:
    added, removed, changed = [], [], []
    for record_id in sorted(set(before) | set(after)):
        old, new = before.get(record_id), after.get(record_id)
        if old is None and new is not None:
            added.append(
                RecordDiff(record_id=record_id, kind=new.kind, fields=_field_diffs(schema, new.kind, {}, new.values()))
            )
        elif new is None and old is not None:
            removed.append(
                RecordDiff(record_id=record_id, kind=old.kind, fields=_field_diffs(schema, old.kind, old.values(), {}))
            )
        elif old is not None and new is not None:
            fields = _field_diffs(schema, new.kind, old.values(), new.values())
            if fields:
                changed.append(RecordDiff(record_id=record_id, kind=new.kind, fields=fields))
    return DatasetDiff(
        dataset=dataset,
        from_version=from_version,
        to_version=to_version,
        added=added,
        removed=removed,
        changed=changed,
    )


def _cell(value: FieldValue | None) -> str:
    if value is None:
        return "-"
    text = ", ".join(value) if isinstance(value, list) else str(value)
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def diff_table(diff: DatasetDiff) -> str:
    """The diff as an aligned text table: one row per field added, removed or changed."""
    rows: list[tuple[str, str, str, str, str]] = []
    for change, records in (("added", diff.added), ("removed", diff.removed), ("changed", diff.changed)):
        for record in records:
            for field in record.fields:
                rows.append((change, record.record_id, field.field, _cell(field.before), _cell(field.after)))
    title = (
        f"dataset {diff.dataset}: version {diff.from_version} -> {diff.to_version}: "
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.changed)} changed"
    )
    if not rows:
        return title + "\n(no differences)\n"
    header = ("change", "record", "field", "before", "after")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"
