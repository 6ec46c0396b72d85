"""The rate limits' configuration (typed, bounded, refused with the field named), the violation
windows an edge reports (one report per node per window, bounded), what each frame spends, and
`ccn admin limits set`'s rule syntax."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ccn_cli.admin_limits_cmd import changed, parse_rule
from ccn_core.errors import BadInput
from ccn_core.rate_limit_config import (
    DEFAULT_RATE_LIMITS,
    LimitRule,
    RateLimits,
    checked,
    encode_rate_limits,
    parse_rate_limits,
)
from ccn_edge.node_socket import metered
from ccn_edge.rate_limits import Violations, node_key, window_start
from ccn_proto import node_protocol as frames

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def test_the_defaults_are_enforceable_and_round_trip() -> None:
    assert checked(DEFAULT_RATE_LIMITS) == DEFAULT_RATE_LIMITS
    assert parse_rate_limits(encode_rate_limits(DEFAULT_RATE_LIMITS)) == DEFAULT_RATE_LIMITS
    assert b'"global":' in encode_rate_limits(DEFAULT_RATE_LIMITS)


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        (
            b'{"per_node": {"ws.nonsense": {"rate": 1, "period_s": 1, "burst": 1}}}',
            None,
            "Invalid enum value 'ws.nonsense'",
        ),
        (b'{"per_node": {"ws.ready": {"rate": 0, "period_s": 1, "burst": 1}}}', "per_node[...].rate", ">= 1"),
        (b'{"per_node": {"ws.ready": {"rate": 1, "period_s": 0, "burst": 1}}}', "period_s", ">= 0.001"),
        (b'{"per_node": {"ws.ready": {"rate": 1, "period_s": 1, "burst": -2}}}', "burst", ">= 1"),
        (b'{"per_node": {"ws.ready": {"rate": 1, "period_s": 1, "burst": 2, "chunk": 3}}}', "ws.ready", "chunk"),
        (b'{"per_node": {"ws.ready": {"rate": "1", "period_s": 1, "burst": 1}}}', "rate", "Expected `int`"),
        (b'{"global": {"rate": 1, "period_s": 86400, "burst": 2}}', "global", "at most 3600 s"),
        (b'{"per_job_type": {"Crawl!": {"rate": 1, "period_s": 1, "burst": 1}}}', None, "regex"),
        (b'{"per_node": {}, "surprise": 1}', "surprise", "unknown field"),
        (b'{"per_node": {"ws.ready": ', None, "truncated"),
    ],
)
def test_a_limit_that_cannot_be_enforced_is_refused_naming_its_field(
    document: bytes, field: str | None, words: str
) -> None:
    with pytest.raises(BadInput) as refused:
        parse_rate_limits(document)
    assert words.lower() in refused.value.message.lower()
    if field is not None:
        assert refused.value.field is not None and field in refused.value.field


def test_an_empty_document_means_no_limits_at_all_but_enabled() -> None:
    limits = parse_rate_limits(b"{}")
    assert limits == RateLimits() and limits.enabled and limits.global_ is None


def test_a_changed_rule_gets_keys_of_its_own() -> None:
    before = LimitRule(rate=2, period_s=1.0, burst=10)
    after = LimitRule(rate=1, period_s=60.0, burst=1)
    assert node_key("http.job", before, "n1") == "node.http_job.r2p1000b10.n1"
    assert node_key("http.job", before, "n1") != node_key("http.job", after, "n1")
    # the chunk changes how permits are taken, not what the arrival time means
    assert node_key("http.job", before, "n1") == node_key("http.job", msgspec.structs.replace(before, chunk=5), "n1")


def test_violations_make_one_report_per_node_per_finished_window() -> None:
    violations = Violations(replica="edge-a", window_s=10.0)
    for second in range(3):
        violations.count("node-1", "http.job", T0 + timedelta(seconds=second))
    violations.count("node-1", "ws.ready", T0 + timedelta(seconds=4))
    violations.count("node-2", "http.job", T0 + timedelta(seconds=9))
    violations.count("node-1", "http.job", T0 + timedelta(seconds=12))  # the next window
    assert violations.finished(T0 + timedelta(seconds=9.9)) == []
    reports = violations.finished(T0 + timedelta(seconds=10))
    assert [(r.node_id, r.refused) for r in reports] == [
        ("node-1", {"http.job": 3, "ws.ready": 1}),
        ("node-2", {"http.job": 1}),
    ]
    assert reports[0].window_start == T0 and reports[0].window_end == T0 + timedelta(seconds=10)
    assert reports[0].key == f"edge-a:{int(T0.timestamp())}:node-1"
    assert violations.finished(T0 + timedelta(seconds=15)) == []  # sent once
    stopping = violations.finished(T0 + timedelta(seconds=15), all_windows=True)
    assert [(r.node_id, r.refused) for r in stopping] == [("node-1", {"http.job": 1})]


def test_windows_are_aligned_so_every_replica_agrees_on_them() -> None:
    assert window_start(T0 + timedelta(seconds=17.5), 10.0) == T0 + timedelta(seconds=10)


def test_a_window_holds_a_bounded_number_of_nodes() -> None:
    violations = Violations(replica="edge-a", window_s=10.0, max_nodes=2)
    for node in ("a", "b", "c", "d"):
        for _ in range(1000):
            violations.count(node, "http.job", T0)
    reports = violations.finished(T0 + timedelta(seconds=10))
    assert [r.node_id for r in reports] == ["a", "b"]
    assert violations.uncounted == 2000


def test_a_long_replica_name_still_makes_a_valid_report_key() -> None:
    violations = Violations(replica="edge-" + "x" * 200, window_s=10.0)
    violations.count("0" * 64, "http.job", T0)
    (report,) = violations.finished(T0 + timedelta(seconds=10))
    assert len(report.key) <= 128
    msgspec.json.decode(msgspec.json.encode(report), type=type(report))  # within its declared bounds


def test_what_each_frame_spends() -> None:
    item = frames.ResultItem(job_id="j1", result={}, checksum="0" * 64)
    assert metered(frames.Ready(slots=3), ["crawl"]) == ("ws.ready", 1, ["crawl"])
    assert metered(frames.JobResults(results=[item, item, item]), ["crawl"]) == ("ws.result", 3, [])
    assert metered(frames.JobResult(job_id="j1", result={}, checksum="0" * 64), []) == ("ws.result", 1, [])
    assert metered(frames.JobFail(job_id="j1", reason="x"), []) == ("ws.fail", 1, [])
    assert metered(frames.Heartbeat(job_ids=[]), []) == ("ws.heartbeat", 1, [])


def test_cli_rules_parse_and_apply_over_what_is_in_force() -> None:
    assert parse_rule("per_node.ws.ready=50/1:100") == (
        "per_node.ws.ready",
        LimitRule(rate=50, period_s=1.0, burst=100),
    )
    assert parse_rule("global=5000/0.5s:10000:100")[1] == LimitRule(rate=5000, period_s=0.5, burst=10000, chunk=100)
    limits = changed(
        DEFAULT_RATE_LIMITS,
        rules=["per_node.http.job=1/5:2", "per_job_type.extract_text=10/1:10"],
        removed=["global"],
        enabled=None,
    )
    assert limits.per_node["http.job"] == LimitRule(rate=1, period_s=5.0, burst=2)
    assert limits.per_job_type == {"extract_text": LimitRule(rate=10, period_s=1.0, burst=10)}
    assert limits.global_ is None
    assert limits.per_node["ws.ready"] == DEFAULT_RATE_LIMITS.per_node["ws.ready"]  # the rest is kept
    assert not changed(limits, rules=[], removed=[], enabled="off").enabled


@pytest.mark.parametrize(
    ("rules", "removed", "words"),
    [
        (["per_node.http.job"], [], "is not SCOPE=RATE/PERIOD:BURST"),
        (["per_node.http.job=1/1"], [], "is not SCOPE=RATE/PERIOD:BURST"),
        (["per_node.bogus=1/1:1"], [], "unknown scope"),
        (["per_node.http.job=1/1:1:5"], [], "chunk"),
        (["per_node.http.job=0/1:1"], [], ">= 1"),
        ([], ["per_job_type.crawl"], "no limit to remove"),
    ],
)
def test_cli_rules_that_cannot_be_applied_are_refused(rules: list[str], removed: list[str], words: str) -> None:
    with pytest.raises(BadInput, match=words):
        changed(DEFAULT_RATE_LIMITS, rules=rules, removed=removed, enabled=None)
