"""Bench group `merge`: the dataset decider (ccn_merge.dataset) alone, no servers: merge
throughput in fields per second (decide and evolve, as the merge service will run them), for
new records, for updates of existing ones and for records that must be stitched, and the time
to publish a version of 100,000 records (the content hash of every record's canonical bytes)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.measure import Figure, figure
from ccn_merge.dataset import DatasetDecider
from ccn_merge.dataset_state import DatasetState
from ccn_proto.datasets import DatasetCommand, ProposeMerge, Provenance, PublishVersion, RecordProposal

GROUP = "merge"
NOW = datetime(2026, 12, 7, tzinfo=UTC)
RECORDS_PER_PROPOSAL = 1000  # a normalisation job's batch
CITIES = ("London", "Leeds", "Seattle", "Boston", "Dublin", "Berlin", "Lyon", "Austin")
TOPICS = ("arts", "health", "youth", "environment", "education", "research", "housing", "sport")


def _provenance(job: str, node: str, hours: int = 0) -> Provenance:
    return Provenance(
        source="crawl",
        job_id=job,
        node_id=node,
        result_checksum=hashlib.sha256(job.encode()).hexdigest(),
        confidence=0.9,
        observed_at=NOW + timedelta(hours=hours),
    )


def _funder(index: int) -> dict[str, Any]:
    return {
        "name": f"Fund {index:06d} for {TOPICS[index % 8].title()} in {CITIES[index % 7]}",
        "ein": f"{10 + index % 89:02d}-{index:07d}",
        "website": f"https://fund{index}.example.org/",
        "country": "GB" if index % 2 else "US",
        "city": CITIES[index % 7],
        "categories": [TOPICS[index % 8], TOPICS[(index + 3) % 8]],
        "aliases": [f"F{index:06d}"],
        "description": f"Fund number {index} gives grants for {TOPICS[index % 8]}.",
    }


def _run(decider: DatasetDecider, state: DatasetState, command: DatasetCommand) -> None:
    for event in decider.decide(command, state, NOW + timedelta(days=1)):
        decider.evolve(state, event)


def merge_figures(*, quick: bool) -> list[Figure]:
    records = 10_000 if quick else 100_000
    decider = DatasetDecider()
    state = decider.initial_state("bench")
    fields = 0
    start = time.perf_counter()
    for batch in range(records // RECORDS_PER_PROPOSAL):
        proposals = [
            RecordProposal(kind="funder", record_id=f"fun-{index:07d}", fields=_funder(index))
            for index in range(batch * RECORDS_PER_PROPOSAL, (batch + 1) * RECORDS_PER_PROPOSAL)
        ]
        fields += sum(len(p.fields) for p in proposals)
        _run(
            decider,
            state,
            ProposeMerge(dataset="bench", provenance=_provenance(f"load-{batch}", "n1"), records=proposals),
        )
    scale = "" if not quick else f" (CCN_BENCH_QUICK: {records:,} records, not 100,000)"
    new = figure(
        "merge new records (fields/s)",
        GROUP,
        fields,
        time.perf_counter() - start,
        notes=f"{records:,} funders, {RECORDS_PER_PROPOSAL} a proposal, 8 fields each, by record key{scale}",
    )
    # updates: one record a proposal, three fields, agreeing or not with what is there
    updates = 2_000 if quick else 10_000
    start = time.perf_counter()
    for index in range(updates):
        record = (index * 7919) % records
        command = ProposeMerge(
            dataset="bench",
            provenance=_provenance(f"update-{index}", f"n{index % 5}", hours=1),
            records=[
                RecordProposal(
                    kind="funder",
                    record_id=f"fun-{record:07d}",
                    fields={
                        "city": CITIES[index % 8],
                        "categories": [TOPICS[index % 8]],
                        "website": f"https://u{index}.example",
                    },
                )
            ],
        )
        _run(decider, state, command)
    updated = figure(
        "merge updates of existing records (fields/s)",
        GROUP,
        updates * 3,
        time.perf_counter() - start,
        notes=f"{updates:,} proposals of one record, 3 fields, into a dataset of {records:,}",
    )
    # stitched: no record key, the name and place decide (link_entities against the candidates)
    stitched = 200 if quick else 1_000
    start = time.perf_counter()
    for index in range(stitched):
        values = _funder((index * 104_729) % records)
        values.pop("ein")
        command = ProposeMerge(
            dataset="bench",
            provenance=_provenance(f"stitch-{index}", "n9", hours=2),
            records=[
                RecordProposal(
                    kind="funder", fields={"name": values["name"], "city": values["city"], "country": values["country"]}
                )
            ],
        )
        _run(decider, state, command)
    stitch_figure = figure(
        "merge stitched records (fields/s)",
        GROUP,
        stitched * 3,
        time.perf_counter() - start,
        notes=f"{stitched:,} proposals without a record key, 3 fields, matched by name and place among {records:,}",
    )
    start = time.perf_counter()
    _run(decider, state, PublishVersion(dataset="bench", by="bench"))
    first = figure(
        f"publish a version of {len(state.records):,} records",
        GROUP,
        len(state.records),
        time.perf_counter() - start,
        notes=f"records/s; every record encoded and hashed (sha256 of the canonical bytes){scale}",
    )
    for index in range(100):
        _run(
            decider,
            state,
            ProposeMerge(
                dataset="bench",
                provenance=_provenance(f"late-{index}", "n1", hours=3),
                records=[
                    RecordProposal(kind="funder", record_id=f"fun-{index:07d}", fields={"description": f"v2 {index}"})
                ],
            ),
        )
    start = time.perf_counter()
    _run(decider, state, PublishVersion(dataset="bench", by="bench"))
    again = figure(
        f"publish the next version of {len(state.records):,} records",
        GROUP,
        len(state.records),
        time.perf_counter() - start,
        notes="records/s; 100 records changed, the others' canonical bytes cached",
    )
    return [new, updated, stitch_figure, first, again]
