"""Pairwise precision and recall of `link_entities` on the labelled organisations in
tests/data/linking/organisations.jsonl (see the README there).

Each batch is linked in one job, as a node would link records gathered from several sources;
every pair of records in a batch is then a true pair (same `entity` label) or not, and is
predicted a pair when both records got the same canonical_entity_id. A pair sent to review is
counted as not joined: precision is what is merged without a human."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from ccn_jobs.link_entities import LinkEntitiesPayload, LinkEntitiesResult, OrganisationRecord, link_entities

DATA = Path(__file__).resolve().parent.parent / "data" / "linking" / "organisations.jsonl"
Split = Literal["tune", "heldout"]


@dataclass(frozen=True)
class Batch:
    name: str
    records: tuple[OrganisationRecord, ...]
    entity_of: dict[str, str]  # record_id -> true entity label


@dataclass(frozen=True)
class PairwiseScore:
    true_positives: int
    false_positives: int
    false_negatives: int
    pairs: int
    review_pairs: int
    mistakes: tuple[str, ...]

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0


def load_batches(split: Split) -> list[Batch]:
    by_batch: dict[str, list[dict[str, object]]] = {}
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row["split"] == split:
                by_batch.setdefault(row["batch"], []).append(row)
    return [
        Batch(
            name=name,
            records=tuple(msgspec.convert(row["record"], OrganisationRecord) for row in rows),
            entity_of={row["record"]["record_id"]: str(row["entity"]) for row in rows},  # type: ignore[index]
        )
        for name, rows in sorted(by_batch.items())
    ]


def link_batch(batch: Batch, match_threshold: float | None = None) -> LinkEntitiesResult:
    payload = LinkEntitiesPayload(records=batch.records)
    if match_threshold is not None:
        payload = LinkEntitiesPayload(
            records=batch.records,
            match_threshold=match_threshold,
            review_threshold=min(payload.review_threshold, match_threshold),
        )
    return link_entities(payload)


def evaluate(batches: Iterable[Batch], match_threshold: float | None = None) -> PairwiseScore:
    tp = fp = fn = pairs = review = 0
    mistakes: list[str] = []
    for batch in batches:
        result = link_batch(batch, match_threshold)
        entity = {link.record_id: link.canonical_entity_id for link in result.links}
        review += len(result.review)
        for a, b in itertools.combinations(sorted(entity), 2):
            pairs += 1
            truth = batch.entity_of[a] == batch.entity_of[b]
            predicted = entity[a] == entity[b]
            if truth and predicted:
                tp += 1
            elif predicted:
                fp += 1
                mistakes.append(f"{batch.name}: joined {a} and {b}")
            elif truth:
                fn += 1
                mistakes.append(f"{batch.name}: missed {a} and {b}")
    return PairwiseScore(tp, fp, fn, pairs, review, tuple(mistakes))
