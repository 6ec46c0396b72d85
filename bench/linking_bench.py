"""Bench group `linking`: link_entities' pairwise precision and recall on the labelled
organisations (tests/data/linking), and documents per second on one core for link_entities,
enrich_opportunity and score_opportunity. No servers: the handlers are pure functions, timed in
this one process, so the rate is per core."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Sequence

from bench.measure import Figure, figure
from ccn_jobs.demo_corpus import grant_pages
from ccn_jobs.enrich_opportunity import EnrichOpportunityPayload, Opportunity, enrich_opportunity
from ccn_jobs.link_entities import LinkEntitiesPayload, OrganisationRecord, link_entities
from ccn_jobs.score_opportunity import ScoreOpportunityPayload, score_opportunity
from tests.support.linking_eval import Split, evaluate, load_batches

GROUP = "linking"
PRECISION_TARGET = 0.99
SPLITS: tuple[tuple[Split, str], ...] = (
    ("tune", "tuned on"),
    ("heldout", "held out; blind run: P 0.939 R 0.912, fixed after"),
    ("heldout2", "held out; blind run: P 0.75 R 0.82, fixed after"),
    ("heldout3", "held out, measured blind, not tuned on"),
)


def quality_figures() -> list[Figure]:
    figures = []
    for split, how in SPLITS:
        start = time.perf_counter()
        score = evaluate(load_batches(split))
        fig = figure(f"link_entities pairwise P/R, {split}", GROUP, score.pairs, time.perf_counter() - start)
        fig.notes = (
            f"precision {score.precision:.3f}, recall {score.recall:.3f} at threshold 0.9 "
            f"({score.true_positives} pairs joined right, {score.false_positives} wrong, {score.false_negatives} "
            f"missed; {score.review_pairs} sent to review); {how}"
        )
        fig.target = f"precision >= {PRECISION_TARGET}"
        fig.meets_target = score.precision >= PRECISION_TARGET
        figures.append(fig)
    return figures


def _rate(name: str, documents_per_call: int, calls: Sequence[Callable[[], object]], seconds: float) -> Figure:
    """Run the calls round and round for about `seconds`; documents per second, one core."""
    done = 0
    start = time.perf_counter()
    while True:
        for call in calls:
            call()
            done += documents_per_call
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return figure(name, GROUP, done, elapsed, notes="documents/s on one core (one process)")


def _all_labelled_records(copies: int) -> tuple[OrganisationRecord, ...]:
    records = [r for split, _ in SPLITS for batch in load_batches(split) for r in batch.records]
    return tuple(
        OrganisationRecord(
            record_id=f"c{copy}-{r.record_id}", source=r.source, name=r.name, ein=r.ein, website=r.website,
            location=r.location,
        )
        for copy in range(copies)
        for r in records
    )  # fmt: skip


def _opportunities(count: int) -> list[Opportunity]:
    pages = grant_pages(count)
    return [
        Opportunity(
            title=page.title[:500],
            description=html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page.html).split()))[:100_000],
            location="United States" if index % 3 == 0 else None,
        )
        for index, page in enumerate(pages)
    ]


def throughput_figures(*, quick: bool) -> list[Figure]:
    seconds = 0.5 if quick else 3.0
    figures = []
    for copies in (1, 5):
        records = _all_labelled_records(copies)
        payload = LinkEntitiesPayload(records=records)
        fig = _rate(
            f"link_entities, {len(records)} records a job", len(records), [lambda p=payload: link_entities(p)], seconds
        )
        figures.append(fig)
    opportunities = _opportunities(60)
    enrich_payloads = [EnrichOpportunityPayload(opportunity=o) for o in opportunities]
    figures.append(
        _rate("enrich_opportunity", 1, [lambda p=p: enrich_opportunity(p) for p in enrich_payloads], seconds)
    )
    score_payloads = [ScoreOpportunityPayload(opportunity=o, as_of="2027-01-15") for o in opportunities]
    figures.append(
        _rate(
            "score_opportunity (enriching too)", 1, [lambda p=p: score_opportunity(p) for p in score_payloads], seconds
        )
    )
    return figures


def linking_figures(*, quick: bool) -> list[Figure]:
    return quality_figures() + throughput_figures(quick=quick)
