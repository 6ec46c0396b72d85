"""Consensus disagreements in node governance, as pure rules: consensus.node_disagreed events of
CCN_RESULTS are summed per node over a window (work_windows.DisagreementAggregator) under a key
of their own stream, join the node's record through node.work_recorded, and weigh against the
agreement term of its reputation: a node that disagrees often loses reputation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ccn_core.decider import fold
from ccn_core.domain import governance
from ccn_core.domain.governance import CONSENSUS_DISAGREEMENT_WEIGHT, Record
from ccn_proto.consensus import NodeDisagreed
from ccn_proto.nodes import NodeWorkRecorded
from ccn_registry.work_windows import DisagreementAggregator, window_key
from tests.unit.test_node_decider import NODE, REGISTERED, decider

T0 = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)


def disagreed(node: str, job: str = "j1") -> NodeDisagreed:
    return NodeDisagreed(node_id=node, job_id=job, job_type="extract_text", checksum="f" * 64)


def test_a_window_of_the_result_stream_counts_each_nodes_disagreements() -> None:
    aggregator = DisagreementAggregator()
    aggregator.observe(40, T0, disagreed("forger", "j1"))
    aggregator.observe(41, T0 + timedelta(seconds=2), disagreed("forger", "j2"))
    aggregator.observe(45, T0 + timedelta(seconds=1), disagreed("sloppy", "j3"))
    window = aggregator.close()
    assert (window.first_seq, window.last_seq) == (40, 45)
    assert window.records() == {
        "forger": NodeWorkRecorded(window_start=T0, window_end=T0 + timedelta(seconds=2), consensus_disagreed=2),
        "sloppy": NodeWorkRecorded(window_start=T0, window_end=T0 + timedelta(seconds=2), consensus_disagreed=1),
    }
    assert aggregator.close().empty and aggregator.close().records() == {}


def test_the_windows_of_the_two_streams_have_keys_that_never_meet() -> None:
    # the registry derives the event id from the key: a jobs window and a results window cut at
    # the same sequences are two records, not one record sent twice
    assert window_key(3, 9) == "jobs:3-9"
    assert window_key(3, 9, "results") == "results:3-9"


def test_disagreements_recorded_join_the_nodes_record() -> None:
    work = NodeWorkRecorded(window_start=T0, window_end=T0, completed=2, consensus_disagreed=3)
    state = fold(decider, NODE, [REGISTERED, work, work])
    assert state.record == Record(completed=4, consensus_disagreed=6)


def test_consensus_disagreements_lower_the_agreement_term_with_their_weight() -> None:
    plain = governance.reputation(Record(completed=50, agreed=10, disagreed=4))
    weighed = governance.reputation(Record(completed=50, agreed=10, consensus_disagreed=2))
    # two disagreements with a consensus weigh as 2 * weight plain ones
    assert CONSENSUS_DISAGREEMENT_WEIGHT == 2.0
    assert weighed.components["agreement"] == pytest.approx(plain.components["agreement"])
    assert weighed.components["agreement"] == pytest.approx(25.0 * 11 / (10 + 4 + 2), abs=1e-3)
    assert weighed.score == pytest.approx(sum(weighed.components.values()), abs=0.01)


def test_a_node_with_many_disagreements_loses_reputation() -> None:
    honest = Record(completed=100, total_job_ms=100 * 1000)
    forger = Record(completed=100, total_job_ms=100 * 1000, consensus_disagreed=60)
    assert governance.reputation(forger).score < governance.reputation(honest).score - 10
    scores = [governance.reputation(Record(completed=100, consensus_disagreed=n)).score for n in (0, 1, 5, 20, 80)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
