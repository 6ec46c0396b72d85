"""Precision, recall and F1 of classifications, of extracted entities against gold ones and of
extracted text against the true main text: what `ccn jobs train-classifier` prints and the
`nlp` and `html` bench groups report."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClassScore:
    name: str
    precision: float
    recall: float
    support: int

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Scores:
    accuracy: float
    per_class: list[ClassScore]


def classification_scores(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> Scores:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    per_class = []
    for label in labels:
        true_positive = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        predicted_count = sum(1 for p in predicted if p == label)
        support = sum(1 for g in gold if g == label)
        per_class.append(
            ClassScore(
                name=label,
                precision=true_positive / predicted_count if predicted_count else 0.0,
                recall=true_positive / support if support else 0.0,
                support=support,
            )
        )
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    return Scores(accuracy=correct / len(gold) if gold else 0.0, per_class=per_class)


@dataclass(frozen=True, slots=True)
class Span:
    """An entity for scoring: its type, where it is, and its normalised value ("" when the
    type has none that is scored)."""

    type: str
    start: int
    end: int
    value: str


def entity_scores(gold: Sequence[Sequence[Span]], found: Sequence[Sequence[Span]], types: Sequence[str]) -> Scores:
    """Per type over all documents: a found entity is right when a gold one of its type overlaps
    it and has the same value; each gold entity is matched at most once."""
    per_class = []
    for entity_type in types:
        true_positive = found_count = gold_count = 0
        for gold_spans, found_spans in zip(gold, found, strict=True):
            remaining = [span for span in gold_spans if span.type == entity_type]
            gold_count += len(remaining)
            for span in (s for s in found_spans if s.type == entity_type):
                found_count += 1
                match = next((g for g in remaining if _overlaps(g, span) and g.value == span.value), None)
                if match is not None:
                    remaining.remove(match)
                    true_positive += 1
        per_class.append(
            ClassScore(
                name=entity_type,
                precision=true_positive / found_count if found_count else 0.0,
                recall=true_positive / gold_count if gold_count else 0.0,
                support=gold_count,
            )
        )
    return Scores(accuracy=0.0, per_class=per_class)


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


_TOKEN = re.compile(r"\w+")


def token_scores(truth: str, extracted: str) -> ClassScore:
    """Precision and recall of an extracted text's words against the true main text, as bags of
    case-folded word tokens (each true token matched at most once): the measure of the
    article-extraction benchmarks. Order and punctuation are not scored."""
    true_tokens = Counter(_TOKEN.findall(truth.casefold()))
    found_tokens = Counter(_TOKEN.findall(extracted.casefold()))
    matched = sum((true_tokens & found_tokens).values())
    found, support = sum(found_tokens.values()), sum(true_tokens.values())
    return ClassScore(
        name="tokens",
        precision=matched / found if found else float(not support),
        recall=matched / support if support else 1.0,
        support=support,
    )
