"""The `nlp` group: quality of classify_document and extract_entities on their held-out sets
(the parts of ccn_jobs/data/*.jsonl written in wording no training or rule-writing saw), and
their throughput on one core over the text extract_text gets from the demo corpus pages
(realistic lengths, several languages). Each handler runs in this one process, so documents/s
is per core."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec

from bench.measure import Figure, figure
from ccn_jobs.classifier_training import read_sample
from ccn_jobs.classify_document import ClassifyDocumentPayload, classify_document
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.document_classifier import LABELS
from ccn_jobs.entity_rules import ENTITY_TYPES
from ccn_jobs.extract_entities import ExtractEntitiesPayload, extract_entities
from ccn_jobs.extract_text import ExtractTextPayload, extract_text
from ccn_jobs.nlp_corpus import ENTITY_EVAL_PATH, SAMPLE_PATH, EntityDocument
from ccn_jobs.nlp_metrics import Span, classification_scores, entity_scores

GROUP = "nlp"
ACCURACY_TARGET = 0.90
ENTITY_F1_TARGET = 0.85
F1_TARGET_TYPES = ("deadline_date", "monetary_amount")


def classification_figures() -> list[Figure]:
    heldout = [doc for doc in read_sample(SAMPLE_PATH) if doc.split == "heldout"]
    started = time.perf_counter()
    results = [classify_document(ClassifyDocumentPayload(text=d.text, title=d.title, url=d.url)) for d in heldout]
    seconds = time.perf_counter() - started
    scores = classification_scores([d.label for d in heldout], [r.label for r in results], LABELS)
    flagged = sum(r.needs_review for r in results)
    wrong_unflagged = sum(1 for d, r in zip(heldout, results, strict=True) if d.label != r.label and not r.needs_review)
    accuracy = figure(
        "classify_document held-out accuracy",
        GROUP,
        len(heldout),
        seconds,
        notes=f"accuracy {scores.accuracy:.3f}; {flagged} flagged needs_review, "
        f"{wrong_unflagged} wrong and not flagged",
    )
    accuracy.target = f"accuracy >= {ACCURACY_TARGET}"
    accuracy.meets_target = scores.accuracy >= ACCURACY_TARGET
    # quality rows: their numbers are in the notes, so no rate is shown (seconds 0)
    per_class = [
        figure(
            f"  class {label.name}",
            GROUP,
            label.support,
            0.0,
            notes=f"precision {label.precision:.3f} recall {label.recall:.3f} F1 {label.f1:.3f}",
        )
        for label in scores.per_class
    ]
    return [accuracy, *per_class]


def entity_figures() -> list[Figure]:
    lines = ENTITY_EVAL_PATH.read_bytes().splitlines()
    heldout = [d for d in (msgspec.json.decode(line, type=EntityDocument) for line in lines) if d.split == "heldout"]
    results = [extract_entities(ExtractEntitiesPayload(text=d.text, reference_date=d.reference_date)) for d in heldout]
    scores = entity_scores(
        [[Span(e.type, e.start, e.end, f"{e.value}{e.currency or ''}") for e in d.entities] for d in heldout],
        [[Span(e.type, e.start, e.end, f"{e.value}{e.currency or ''}") for e in r.entities] for r in results],
        ENTITY_TYPES,
    )
    figures = []
    for score in scores.per_class:
        fig = figure(
            f"extract_entities {score.name}",
            GROUP,
            score.support,
            0.0,
            notes=f"precision {score.precision:.3f} recall {score.recall:.3f} F1 {score.f1:.3f} "
            f"({len(heldout)} held-out documents)",
        )
        if score.name in F1_TARGET_TYPES:
            fig.target = f"F1 >= {ENTITY_F1_TARGET}"
            fig.meets_target = score.f1 >= ENTITY_F1_TARGET
        figures.append(fig)
    return figures


def throughput_figures(pages: int) -> list[Figure]:
    texts = [extract_text(ExtractTextPayload(html=page.html, url=page.url)) for page in grant_pages(pages)]
    mean_chars = sum(t.chars for t in texts) // max(1, len(texts))
    runs: Sequence[tuple[str, Callable[[], object]]] = (
        (
            "classify_document docs/s, one core",
            lambda: [classify_document(ClassifyDocumentPayload(text=t.text, title=t.title)) for t in texts],
        ),
        (
            "extract_entities docs/s, one core",
            lambda: [extract_entities(ExtractEntitiesPayload(text=t.text, reference_date="2026-01-15")) for t in texts],
        ),
    )
    figures = []
    for name, run in runs:
        run()  # loads the model, rules and gazetteers: a node pays that once per process
        started = time.perf_counter()
        run()
        figures.append(
            figure(
                name,
                GROUP,
                len(texts),
                time.perf_counter() - started,
                notes=f"demo pages' text, {mean_chars} chars mean",
            )
        )
    return figures


def nlp_figures(*, quick: bool) -> list[Figure]:
    return [*classification_figures(), *entity_figures(), *throughput_figures(40 if quick else 400)]
