"""A final job result as merge proposals (pure): which job types' results carry funder or
opportunity records, and how their normalised records become the dataset's fields.

Proposing job types (docs/datasets.md, "Which results are merged"):
- `normalize_funders`: each normalised funder is a `funder` record (name, aliases, EIN, website,
  country, region, city, categories), stitched to its canonical record by EIN, name and place;
- `normalize_opportunities`: each normalised opportunity is an `opportunity` record (title,
  funder name, URL, amounts in whole units, currency, deadline, eligibility, categories).
Not proposing: `enrich_opportunity` (inferences about a record it does not identify in the
dataset, each with its own confidence: the scorer's input, not a field value) and
`link_entities` (pairs of records that may be one: what stitching itself decides, with review).

A result whose records came from several sources proposes once per source, in the order the
sources first appear, so `prefer_source` ranks each value by its own source; a source with more
records than one proposal holds is cut into parts. The part number is in the provenance, so the
proposal key (job, checksum, part) stays unique and a redelivered result proposes nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from ccn_core.errors import BadInput
from ccn_jobs.normalize_funders import NormalizedFunder, NormalizeFundersResult
from ccn_jobs.normalize_opportunities import NormalizedOpportunity, NormalizeOpportunitiesResult
from ccn_proto.datasets import (
    MAX_RECORDS_PER_PROPOSAL,
    ProposeMerge,
    Provenance,
    RecordProposal,
)

PROPOSING_JOB_TYPES = frozenset({"normalize_funders", "normalize_opportunities"})
# the longest eligibility text kept as one item of the `eligibility` list (the schema's item bound)
MAX_ITEM_CHARS = 300


class FinalResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the merge service knows of a completed job: its type, the node, the result and when."""

    job_id: str
    job_type: str
    node_id: str
    checksum: str
    result: dict[str, Any]
    observed_at: datetime


def might_propose(result: dict[str, Any]) -> bool:
    """A cheap look before the job's type is fetched: every proposing result lists `records`."""
    return isinstance(result.get("records"), list) and bool(result["records"])


def _whole_units(amount: str | None) -> int | None:
    return None if amount is None else int(Decimal(amount))


def funder_fields(record: NormalizedFunder) -> dict[str, Any]:
    address = record.address
    fields: dict[str, Any] = {
        "name": record.name,
        "aliases": list(record.aliases) or None,
        "ein": record.ein,
        "website": record.website,
        "country": address.country,
        "region": address.region_name or address.region,
        "city": address.city,
        "categories": list(record.categories) or None,
    }
    return {name: value for name, value in fields.items() if value is not None}


def opportunity_fields(record: NormalizedOpportunity) -> dict[str, Any]:
    eligibility = record.eligibility
    fields: dict[str, Any] = {
        "title": record.title,
        "funder_name": record.funder_name,
        "url": record.url,
        "amount_min": _whole_units(record.amount_min),
        "amount_max": _whole_units(record.amount_max),
        "currency": record.currency,
        "deadline": record.deadline,
        "eligibility": [eligibility[:MAX_ITEM_CHARS].strip()] if eligibility and eligibility.strip() else None,
        "categories": list(record.categories) or None,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _records(final: FinalResult) -> list[tuple[str, RecordProposal]]:
    """(source, record) for every record of the result, in the result's order."""
    try:
        if final.job_type == "normalize_funders":
            funders = msgspec.convert(final.result, NormalizeFundersResult)
            return [(r.source, RecordProposal(kind="funder", fields=funder_fields(r))) for r in funders.records]
        if final.job_type == "normalize_opportunities":
            opportunities = msgspec.convert(final.result, NormalizeOpportunitiesResult)
            return [
                (r.source, RecordProposal(kind="opportunity", fields=opportunity_fields(r)))
                for r in opportunities.records
            ]
    except msgspec.ValidationError as exc:
        raise BadInput(f"job {final.job_id}'s {final.job_type} result does not decode: {exc}") from None
    return []


def _parts(records: Sequence[tuple[str, RecordProposal]]) -> Iterator[tuple[str, list[RecordProposal]]]:
    by_source: dict[str, list[RecordProposal]] = {}
    for source, record in records:
        by_source.setdefault(source, []).append(record)
    for source, proposals in by_source.items():
        for start in range(0, len(proposals), MAX_RECORDS_PER_PROPOSAL):
            yield source, proposals[start : start + MAX_RECORDS_PER_PROPOSAL]


def proposals_for(final: FinalResult, dataset: str) -> list[ProposeMerge]:
    """The merge proposals a final result makes (none for a job type that proposes nothing)."""
    if final.job_type not in PROPOSING_JOB_TYPES:
        return []
    return [
        ProposeMerge(
            dataset=dataset,
            provenance=Provenance(
                source=source,
                job_id=final.job_id,
                node_id=final.node_id,
                result_checksum=final.checksum,
                observed_at=final.observed_at,
                part=part,
            ),
            records=records,
        )
        for part, (source, records) in enumerate(_parts(_records(final)))
    ]
