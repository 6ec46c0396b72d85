"""Final job results as merge proposals (ccn_merge.proposals): which job types propose, how a
normalised funder or opportunity becomes a record's fields, one proposal per source with its
part in the provenance, and a result that does not decode refused as bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ccn_core.errors import BadInput
from ccn_jobs.normalize_funders import NormalizeFundersPayload, RawFunder, normalize_funders
from ccn_jobs.normalize_opportunities import (
    NormalizeOpportunitiesPayload,
    RawOpportunity,
    normalize_opportunities,
)
from ccn_merge.dataset import DatasetDecider
from ccn_merge.proposals import FinalResult, might_propose, proposals_for
from ccn_proto.datasets import MergeApplied

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def final(job_type: str, result: Any) -> FinalResult:
    return FinalResult(
        job_id="job-1",
        job_type=job_type,
        node_id="node-1",
        checksum="c" * 64,
        result=msgspec.to_builtins(result),
        observed_at=NOW,
    )


def funders_result(*sources: str) -> Any:
    records = tuple(
        RawFunder(source=source, source_record_id=f"r{i}", name=f"Fund {i} Inc", ein="12-345678" + str(i), country="US")
        for i, source in enumerate(sources)
    )
    return normalize_funders(NormalizeFundersPayload(records=records))


def test_a_normalized_funder_becomes_a_funder_record_with_its_provenance() -> None:
    [proposal] = proposals_for(final("normalize_funders", funders_result("irs-bmf")), "grants")
    assert proposal.dataset == "grants"
    p = proposal.provenance
    assert (p.source, p.job_id, p.node_id, p.result_checksum, p.observed_at, p.part) == (
        "irs-bmf", "job-1", "node-1", "c" * 64, NOW, 0,
    )  # fmt: skip
    [record] = proposal.records
    assert record.kind == "funder" and record.record_id is None
    assert record.fields == {"name": "Fund 0 Inc", "ein": "12-3456780", "country": "US"}


def test_a_result_from_several_sources_proposes_once_per_source_each_with_its_part() -> None:
    proposals = proposals_for(final("normalize_funders", funders_result("irs-bmf", "crawl", "irs-bmf")), "grants")
    assert [(p.provenance.source, p.provenance.part, len(p.records)) for p in proposals] == [
        ("irs-bmf", 0, 2),
        ("crawl", 1, 1),
    ]
    keys = [p.provenance.proposal_key() for p in proposals]
    assert keys == ["job-1/" + "c" * 64, "job-1/" + "c" * 64 + "/1"]
    # and the decider merges both, then neither again
    decider = DatasetDecider()
    state = decider.initial_state("grants")
    for proposal in proposals:
        for event in decider.decide(proposal, state, NOW):
            assert isinstance(event, MergeApplied)
            decider.evolve(state, event)
    assert len(state.records) == 3
    assert all(decider.decide(p, state, NOW) == [] for p in proposals)


def test_a_normalized_opportunity_becomes_an_opportunity_record_in_whole_units() -> None:
    raw = RawOpportunity(
        source="grants-gov",
        source_record_id="opp-1",
        title="Rural Library Grants",
        funder_name="Acme Foundation",
        award_floor="$5,000.50",
        award_ceiling="$25,000",
        deadline_text="2026-06-30",
        eligibility_text="Public libraries in rural counties",
        url="https://grants.example/rural",
    )
    result = normalize_opportunities(NormalizeOpportunitiesPayload(records=(raw,), as_of="2026-03-01"))
    [proposal] = proposals_for(final("normalize_opportunities", result), "grants")
    [record] = proposal.records
    assert record.kind == "opportunity"
    assert record.fields["title"] == "Rural Library Grants"
    assert (record.fields["amount_min"], record.fields["amount_max"]) == (5000, 25000)
    assert record.fields["deadline"] == "2026-06-30"
    assert record.fields["eligibility"] == ["Public libraries in rural counties"]


@pytest.mark.parametrize("job_type", ["enrich_opportunity", "link_entities", "extract_text"])
def test_job_types_that_carry_no_dataset_records_propose_nothing(job_type: str) -> None:
    assert proposals_for(final(job_type, {"records": [{"x": 1}]}), "grants") == []


def test_a_result_that_does_not_decode_is_bad_input_and_a_recordless_one_is_not_looked_at() -> None:
    with pytest.raises(BadInput, match="does not decode"):
        proposals_for(final("normalize_funders", {"records": [{"name": 3}]}), "grants")
    assert not might_propose({"text": "no records"})
    assert not might_propose({"records": []})
    assert might_propose(msgspec.json.decode(msgspec.json.encode(funders_result("crawl"))))
