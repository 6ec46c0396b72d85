"""What the node does with each frame from the edge: tables of (view, frame) → decision."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ccn_cli.node.decisions import (
    MAX_REASON_CHARS,
    RESULT_PACE_MEMORY_S,
    SHUTTING_DOWN,
    AlreadyRunning,
    ErrorAction,
    NodeView,
    OfferDecision,
    Refuse,
    ResultPacer,
    Run,
    bounded_reason,
    decide_error,
    decide_offer,
    oversized_offer_reason,
    slots_to_ask,
)
from ccn_proto.node_protocol import Error, JobOffer


def offer(job_id: str = "j1", job_type: str = "extract_text") -> JobOffer:
    return JobOffer(
        job_id=job_id,
        job_type=job_type,
        payload={"html": "<p>x</p>"},
        lease_until=datetime(2026, 1, 1, tzinfo=UTC),
        attempt=1,
        correlation_id="c1",
    )


def view(running: tuple[str, ...] = (), free: int = 1, draining: bool = False) -> NodeView:
    return NodeView(
        job_types=frozenset({"extract_text"}), running=frozenset(running), free_slots=free, draining=draining
    )


@pytest.mark.parametrize(
    ("node", "frame", "expected"),
    [
        (view(), offer(), Run()),
        (view(running=("j0",), free=1), offer(), Run()),
        (view(running=("j1",), free=0), offer(), AlreadyRunning()),
        (view(running=("j1",), draining=True), offer(), AlreadyRunning()),
        (view(draining=True), offer(), Refuse(SHUTTING_DOWN)),
        (view(free=0), offer(), Refuse("node has no free slot")),
        (view(free=-1), offer(), Refuse("node has no free slot")),
        (view(), offer(job_type="parse_pdf"), Refuse("job type 'parse_pdf' is not one this node runs (extract_text)")),
    ],
)
def test_offers(node: NodeView, frame: JobOffer, expected: OfferDecision) -> None:
    assert decide_offer(node, frame) == expected


def test_an_oversized_offer_is_refused_with_both_sizes() -> None:
    assert oversized_offer_reason(9_000_001, 8_000_000) == (
        "offer of 9000001 bytes is over this node's limit of 8000000 bytes"
    )


@pytest.mark.parametrize(
    ("error", "welcomed", "action"),
    [
        # before Welcome: the handshake failed
        (Error(code="unauthorized", message="session ended"), False, ErrorAction.REFRESH_SESSION),
        (Error(code="forbidden", message="no consent"), False, ErrorAction.REFRESH_SESSION),
        (Error(code="unavailable", message="nats down"), False, ErrorAction.RETRY_LATER),
        (Error(code="rate_limited", message="slow", retry_after=2.0), False, ErrorAction.RETRY_LATER),
        (Error(code="whatever", message="busy", retry_after=1.0), False, ErrorAction.RETRY_LATER),
        (Error(code="bad_input", message="node version below 0.1.0"), False, ErrorAction.FATAL),
        (Error(code="unsupported_protocol", message="protocol 2 required"), False, ErrorAction.FATAL),
        # after Welcome: about one job, or the pace, or the session
        (Error(code="not_found", message="lease expired", job_id="j1"), True, ErrorAction.STOP_JOB),
        (Error(code="conflict", message="checksum", job_id="j1", retry_after=1.0), True, ErrorAction.STOP_JOB),
        (Error(code="unavailable", message="down", job_id="j1", retry_after=2.0), True, ErrorAction.RESEND_LATER),
        (Error(code="rate_limited", message="slow", job_id="j1", retry_after=1.0), True, ErrorAction.RESEND_LATER),
        (Error(code="unavailable", message="down", job_id="j1"), True, ErrorAction.STOP_JOB),
        (Error(code="rate_limited", message="slow", retry_after=0.5), True, ErrorAction.PAUSE),
        # node governance: backed off (or its quota spent) until a time, or withheld (offline)
        (
            Error(
                code="backed_off",
                message="mild",
                retry_after=30.0,
                backoff_until=datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC),
            ),
            True,
            ErrorAction.PAUSE,
        ),
        (Error(code="withheld", message="offline", retry_after=5.0), True, ErrorAction.PAUSE),
        (Error(code="unauthorized", message="session superseded"), True, ErrorAction.REFRESH_SESSION),
        (Error(code="bad_input", message="malformed frame"), True, ErrorAction.NOTE),
    ],
)
def test_errors(error: Error, welcomed: bool, action: ErrorAction) -> None:
    assert decide_error(error, welcomed=welcomed) is action


@pytest.mark.parametrize(
    ("free", "draining", "paused", "slots"),
    [(2, False, False, 2), (0, False, False, 0), (-1, False, False, 0), (2, True, False, 0), (2, False, True, 0)],
)
def test_slots_to_ask(free: int, draining: bool, paused: bool, slots: int) -> None:
    assert slots_to_ask(free, draining=draining, paused=paused) == slots


def test_reasons_fit_the_protocol_bound() -> None:
    assert bounded_reason("short") == "short"
    long = bounded_reason("x" * 5000)
    assert len(long) == MAX_REASON_CHARS and long.endswith("…")


def test_results_go_all_at_once_until_the_edge_refuses_one_for_the_nodes_rate_limit() -> None:
    pacer = ResultPacer()
    assert pacer.allowed(100.0) is None and pacer.wait_s(100.0) == 0.0


def test_after_a_rate_limit_refusal_results_go_one_at_a_time_an_estimated_interval_apart() -> None:
    pacer = ResultPacer()
    pacer.sent(100.0)  # took the limit's last token
    pacer.sent(100.1)  # refused: the next token is 0.4 s away, so it regrows 0.5 s after 100.0
    pacer.refused(0.4, 100.1)
    assert pacer.allowed(100.3) == 0 and pacer.wait_s(100.3) == pytest.approx(0.2)
    assert pacer.allowed(100.5) == 1
    pacer.sent(100.5)
    # 0.5 s with a margin of a quarter: the next goes 0.625 s later
    assert pacer.allowed(101.0) == 0 and pacer.wait_s(101.0) == pytest.approx(0.125)
    assert pacer.allowed(101.125) == 1


def test_a_refusal_while_paced_widens_the_spacing() -> None:
    pacer = ResultPacer()
    pacer.sent(100.0)
    pacer.refused(0.1, 100.0)  # the estimate: 0.1 s, paced 0.125 apart
    pacer.sent(100.1)
    pacer.sent(100.225)
    pacer.refused(0.3, 100.225)  # too close after all
    pacer.sent(100.525)
    assert pacer.wait_s(100.525) >= 0.5


def test_pacing_ends_a_while_after_the_last_refusal() -> None:
    pacer = ResultPacer()
    pacer.refused(0.5, 100.0)
    assert pacer.allowed(100.0 + RESULT_PACE_MEMORY_S - 1) == 1
    assert pacer.allowed(100.0 + RESULT_PACE_MEMORY_S) is None
    pacer.sent(100.0 + RESULT_PACE_MEMORY_S)
    assert pacer.allowed(100.0 + RESULT_PACE_MEMORY_S + 0.1) is None
