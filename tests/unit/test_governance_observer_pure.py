"""The governance observer's pure cores: job outcomes summed per node over a window
(work_windows), the window's idempotency key, checksum agreement with set-aside results, budget
misreports, and the bands of silence the liveness book reports (liveness)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import msgspec

from ccn_core.topology import GOVERNANCE_WORK
from ccn_proto.budgets import JobUsage
from ccn_proto.jobs import (
    JobAbandoned,
    JobClaimed,
    JobCompletedBytes,
    JobDead,
    JobEvent,
    JobFailed,
    JobReleased,
    JobResultRejected,
    JobResultSetAside,
    JobResultSubmittedBytes,
)
from ccn_proto.nodes import NodeBudgetsSet, NodeMetrics, NodeWorkRecorded
from ccn_registry.liveness import LivenessBook, band_of
from ccn_registry.observer import OBSERVED_TYPES
from ccn_registry.work_windows import Claim, ObservedJobEvent, WorkAggregator, budget_of, window_key

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def claimed(node: str, attempt: int = 1) -> JobClaimed:
    return JobClaimed(node_id=node, attempt=attempt, lease_until=at(600))


def completed(node: str, checksum: str = "c1", attempt: int = 1, usage: JobUsage | None = None) -> JobCompletedBytes:
    return JobCompletedBytes(node_id=node, attempt=attempt, result=msgspec.Raw(b"{}"), checksum=checksum, usage=usage)


def submitted(node: str, attempt: int = 1, usage: JobUsage | None = None) -> JobResultSubmittedBytes:
    return JobResultSubmittedBytes(
        node_id=node, attempt=attempt, job_type="t", result=msgspec.Raw(b"{}"), checksum="c1", usage=usage
    )


def failed(node: str, kind: str = "error", attempt: int = 1) -> JobFailed:
    return JobFailed(node_id=node, attempt=attempt, reason="boom", retry_at=at(700), kind=kind)  # type: ignore[arg-type]


def test_a_window_sums_each_nodes_outcomes_and_times_claim_to_completion() -> None:
    agg = WorkAggregator()
    agg.observe(10, "j1", at(0), claimed("a"))
    agg.observe(11, "j2", at(1), claimed("a"))
    agg.observe(12, "j3", at(1), claimed("b"))
    agg.observe(13, "j1", at(2.5), submitted("a"))  # the node's part ends: timed here
    agg.observe(13, "j1", at(3), completed("a"))  # the verdict: counted here
    agg.observe(14, "j2", at(5), failed("a"))
    agg.observe(15, "j3", at(6), failed("b", kind="budget_exceeded"))
    agg.observe(16, "j4", at(7), JobAbandoned(node_id="b", attempt=1, reason="lease ran out", retry_at=None))
    window = agg.close()
    assert (window.first_seq, window.last_seq) == (10, 16)
    records = window.records()
    assert records == {
        "a": NodeWorkRecorded(window_start=at(0), window_end=at(7), completed=1, failed=1, total_job_ms=2500),
        "b": NodeWorkRecorded(window_start=at(0), window_end=at(7), budget_exceeded=1, abandoned=1),
    }
    assert agg.claims == {}  # every claim ended: memory follows the jobs in hand
    assert agg.window.empty  # a fresh window is open


def test_a_claim_carries_over_to_the_window_where_the_job_completes() -> None:
    agg = WorkAggregator()
    agg.observe(1, "j1", at(0), claimed("a"))
    assert agg.close().records() == {}  # a claim alone records nothing
    agg.observe(2, "j1", at(12), submitted("a"))
    agg.observe(3, "j1", at(13), completed("a"))
    assert agg.close().records()["a"].total_job_ms == 12_000


def test_a_completion_of_another_attempt_or_node_is_not_timed_against_a_stale_claim() -> None:
    agg = WorkAggregator()
    agg.observe(1, "j1", at(0), claimed("a", attempt=1))
    agg.observe(2, "j1", at(1), JobReleased(node_id="a", attempt=1, reason="offer lost"))
    agg.observe(3, "j1", at(2), completed("a", attempt=1))
    record = agg.close().records()["a"]
    assert (record.completed, record.total_job_ms) == (1, 0)


def test_a_claim_learned_from_the_stream_times_a_completion_seen_after_a_restart() -> None:
    agg = WorkAggregator()
    assert not agg.knows_claim("j1", "a", 2)
    agg.learn_claim("j1", Claim(node_id="a", attempt=2, at=at(0)))
    assert agg.knows_claim("j1", "a", 2)
    agg.observe(5, "j1", at(3), submitted("a", attempt=2))
    assert agg.close().records()["a"].total_job_ms == 3000


def test_set_aside_results_count_agreement_for_their_nodes_when_the_job_completes() -> None:
    agg = WorkAggregator()
    agg.observe(1, "j1", at(0), JobResultSetAside(node_id="shadow", attempt=1, checksum="same", reason="shadow"))
    agg.observe(2, "j2", at(0), JobResultSetAside(node_id="shadow", attempt=1, checksum="wrong", reason="shadow"))
    agg.observe(3, "j2", at(1), JobResultSetAside(node_id="liar", attempt=1, checksum="x", reason="shadow"))
    first = agg.close()
    assert first.records() == {}  # a set-aside result is compared later, when the job completes
    agg.observe(4, "j1", at(5), completed("honest", checksum="same"))
    agg.observe(5, "j2", at(6), completed("honest", checksum="right"))
    records = agg.close().records()
    assert (records["shadow"].agreed, records["shadow"].disagreed) == (1, 1)
    assert (records["liar"].agreed, records["liar"].disagreed) == (0, 1)
    assert (records["honest"].completed, records["honest"].agreed) == (2, 0)
    assert agg.set_aside == {}  # compared once, then forgotten


def test_a_set_aside_result_of_the_completing_node_itself_is_not_compared() -> None:
    agg = WorkAggregator()
    agg.observe(1, "j1", at(0), JobResultSetAside(node_id="a", attempt=1, checksum="c", reason="shadow"))
    agg.observe(2, "j1", at(1), completed("a", checksum="c"))
    assert agg.close().records()["a"].agreed == 0


def test_a_dead_job_drops_its_set_aside_results_uncompared() -> None:
    agg = WorkAggregator()
    agg.observe(1, "j1", at(0), JobResultSetAside(node_id="s", attempt=1, checksum="c", reason="shadow"))
    agg.observe(2, "j1", at(1), JobDead(attempts=3, reason="out of attempts"))
    assert agg.set_aside == {}
    assert agg.close().records() == {}


def test_a_completion_reporting_usage_over_the_nodes_budget_is_a_misreport() -> None:
    agg = WorkAggregator()
    agg.budgets["a"] = budget_of(NodeBudgetsSet(max_cpu_time_per_job_s=1.0, max_memory_mb=64, by="admin"))
    agg.observe(1, "j1", at(0), submitted("a", usage=JobUsage(cpu_time_s=0.5, max_memory_mb=32)))
    agg.observe(2, "j2", at(0), submitted("a", usage=JobUsage(cpu_time_s=3.0, max_memory_mb=32)))
    agg.observe(3, "j3", at(0), submitted("a", usage=JobUsage(cpu_time_s=0.1, max_memory_mb=512)))
    agg.observe(4, "j4", at(0), submitted("b", usage=JobUsage(cpu_time_s=99.0)))  # no budget: none to break
    records = agg.close().records()
    assert records["a"].budget_misreported == 2
    assert "b" not in records  # no budget: nothing to record


def test_a_rejected_result_counts_as_a_failed_job_and_its_time_is_still_the_nodes() -> None:
    agg = WorkAggregator()
    agg.observe(1, "j1", at(0), claimed("a"))
    agg.observe(2, "j1", at(4), submitted("a"))
    agg.observe(3, "j1", at(5), JobResultRejected(node_id="a", attempt=1, checksum="c1", reason="bad", retry_at=at(9)))
    record = agg.close().records()["a"]
    assert (record.completed, record.failed, record.total_job_ms) == (0, 1, 4000)


def test_the_window_key_names_its_stream_sequences() -> None:
    assert window_key(10, 16) == "jobs:10-16"
    assert window_key(10, 16) == window_key(10, 16)
    assert window_key(10, 16) != window_key(10, 17)
    assert len(window_key(2**63 - 1, 2**63 - 1)) <= 128  # fits the command's ShortText key


def test_a_window_replayed_from_the_same_events_records_the_same() -> None:
    def run() -> dict[str, NodeWorkRecorded]:
        agg = WorkAggregator()
        agg.observe(7, "j1", at(0), claimed("a"))
        agg.observe(8, "j1", at(2), completed("a"))
        agg.observe(9, "j2", at(3), failed("b"))
        return agg.close().records()

    assert run() == run()


def test_memory_of_claims_is_bounded() -> None:
    import ccn_registry.work_windows as work_windows

    agg = WorkAggregator()
    limit = work_windows.MAX_CLAIMS
    work_windows.MAX_CLAIMS = 3  # type: ignore[misc]
    try:
        for index in range(10):
            agg.observe(index + 1, f"j{index}", at(index), claimed("a"))
    finally:
        work_windows.MAX_CLAIMS = limit  # type: ignore[misc]
    assert list(agg.claims) == ["j7", "j8", "j9"]


# -- liveness ---------------------------------------------------------------------------------


def test_bands_follow_the_health_policys_thresholds() -> None:
    assert [band_of(s) for s in (0.0, 24.9, 25.0, 44.9, 45.0, 1e6)] == [
        "fresh",
        "fresh",
        "unstable",
        "unstable",
        "offline",
        "offline",
    ]


def test_a_node_is_observed_when_first_seen_then_only_when_its_band_moves() -> None:
    book = LivenessBook()
    metrics = NodeMetrics(cpu_load=0.5)
    book.seen("n1", at(0), metrics)
    due = book.due(at(1))
    assert [(o.node_id, o.band, o.metrics) for o in due] == [("n1", "fresh", metrics)]
    book.reported(due[0])
    assert book.due(at(20)) == []
    book.seen("n1", at(20), None)
    assert book.due(at(44)) == []  # 24 s of silence: still fresh
    unstable = book.due(at(45.5))
    assert [(o.band, o.silent_s) for o in unstable] == [("unstable", 25.5)]
    book.reported(unstable[0])
    assert book.due(at(50)) == []
    offline = book.due(at(66))
    assert [o.band for o in offline] == ["offline"]
    book.reported(offline[0])
    assert len(book) == 0  # forgotten after its offline verdict: memory stays bounded
    book.seen("n1", at(300), None)  # it comes back
    back = book.due(at(301))
    assert [(o.band, o.silent_s) for o in back] == [("fresh", 1.0)]


def test_a_node_that_speaks_while_its_offline_verdict_is_sent_stays_watched() -> None:
    book = LivenessBook()
    book.seen("n1", at(0), None)
    offline = book.due(at(50))
    book.seen("n1", at(51), None)
    book.reported(offline[0])
    assert [o.band for o in book.due(at(52))] == ["fresh"]


def test_an_observation_not_taken_is_due_again() -> None:
    book = LivenessBook()
    book.seen("n1", at(0), None)
    assert [o.band for o in book.due(at(30))] == ["unstable"]
    assert [o.band for o in book.due(at(31))] == ["unstable"]  # not reported: asked again


def test_samples_arriving_out_of_order_never_move_the_last_seen_back() -> None:
    book = LivenessBook()
    book.seen("n1", at(40), None)
    book.seen("n1", at(0), None)
    assert [o.band for o in book.due(at(41))] == ["fresh"]


def test_a_result_is_a_sign_of_life_for_a_watched_node_and_keeps_its_metrics() -> None:
    book = LivenessBook()
    metrics = NodeMetrics(cpu_load=0.5)
    book.seen("n1", at(0), metrics)
    book.reported(book.due(at(1))[0])
    book.heard_from("n1", at(20))  # a result, twenty seconds on
    book.heard_from("n1", at(5))  # an older one read late moves nothing back
    assert book.due(at(44)) == []  # 24 s since the result: fresh, though 44 s since the heartbeat
    unstable = book.due(at(46))
    assert [(o.band, o.silent_s, o.metrics) for o in unstable] == [("unstable", 26.0, metrics)]
    book.heard_from("stranger", at(46))  # never sent telemetry: not watched on a result alone
    assert [o.node_id for o in book.due(at(47))] == ["n1"]


def test_the_book_holds_at_most_its_bound_forgetting_the_quietest() -> None:
    book = LivenessBook(max_nodes=2)
    book.seen("old", at(0), None)
    book.seen("mid", at(5), None)
    book.seen("new", at(9), None)
    assert sorted(o.node_id for o in book.due(at(10))) == ["mid", "new"]


def test_the_observer_reads_every_job_event_and_counts_exactly_those_it_decodes() -> None:
    """A dense read (a filter of several subjects costs the server a search of the stream's
    subjects on every pull): the kinds it does not count are skipped by their type header."""
    assert GOVERNANCE_WORK.filter_subjects == ("ccn.job.>",)
    decoded = {event_type.__struct_config__.tag for event_type in get_args(ObservedJobEvent)}
    assert decoded == OBSERVED_TYPES
    job_events = {event_type.__struct_config__.tag for event_type in get_args(JobEvent)}
    assert decoded < job_events and "job.created" not in decoded
