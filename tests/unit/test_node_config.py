"""Node options: URLs, job types and bounds are checked before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccn_cli.main import build_parser
from ccn_cli.node.config import (
    ConfigError,
    JobLimits,
    NodeConfig,
    http_url,
    parse_job_types,
    validate_config,
    ws_url,
)
from ccn_cli.node_cmd import config_from_args
from ccn_core.settings import Settings

KNOWN = frozenset({"extract_text", "parse_pdf"})


@pytest.mark.parametrize(
    ("edge", "ws", "http"),
    [
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/ws", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/ws", "http://127.0.0.1:8080"),
        ("https://edge.example/ccn", "wss://edge.example/ccn/ws", "https://edge.example/ccn"),
        ("ws://h:1", "ws://h:1/ws", "http://h:1"),
    ],
)
def test_edge_urls(edge: str, ws: str, http: str) -> None:
    assert ws_url(edge) == ws
    assert http_url(edge) == http


@pytest.mark.parametrize("edge", ["ftp://h", "127.0.0.1:8080", "http://", ""])
def test_an_edge_url_that_is_not_http_is_refused(edge: str) -> None:
    with pytest.raises(ConfigError, match="--edge"):
        ws_url(edge)


def test_job_types_are_trimmed_and_deduplicated_in_order() -> None:
    assert parse_job_types(" extract_text, parse_pdf ,,extract_text") == ("extract_text", "parse_pdf")


def config(**fields: object) -> NodeConfig:
    return NodeConfig(edge_url="http://127.0.0.1:8080", home=Path("/tmp/x"), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "../etc"}, "--name"),
        ({"name": ""}, "--name"),
        ({"concurrency": 0}, "--concurrency"),
        ({"concurrency": 65}, "--concurrency"),
        ({"job_types": ()}, "--job-types"),
        ({"job_types": ("extract_text", "mine_bitcoin")}, "cannot run mine_bitcoin"),
        ({"max_offer_bytes": 10, "max_frame_bytes": 5}, "offer limit"),
        ({"job_limits": JobLimits(cpu_s=0)}, "--job-cpu"),
        ({"job_limits": JobLimits(memory_mib=64)}, "--job-memory"),
    ],
)
def test_bad_options_are_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(config(**fields), KNOWN)


def test_good_options_pass_unchanged() -> None:
    good = config(name="laptop-1", concurrency=4, job_types=("parse_pdf",))
    assert validate_config(good, KNOWN) is good


def test_the_command_line_builds_a_config_from_settings_and_options() -> None:
    settings = Settings(home=Path("/srv/ccn"), edge_host="10.0.0.5", edge_port=9000)
    args = build_parser().parse_args(["node", "--name", "n2", "--concurrency", "3", "--job-types", "extract_text"])
    built = config_from_args(args, settings)
    assert (built.edge_url, built.home, built.name, built.concurrency, built.job_types) == (
        "http://10.0.0.5:9000",
        Path("/srv/ccn"),
        "n2",
        3,
        ("extract_text",),
    )
    assert built.job_limits == JobLimits()  # 60 s of CPU, 1 GiB of data per job
    args = build_parser().parse_args(["node", "--job-cpu", "5", "--job-memory", "512"])
    assert config_from_args(args, settings).job_limits == JobLimits(cpu_s=5, memory_mib=512)
    args = build_parser().parse_args(["node", "--edge", "https://edge.example", "--grace", "-1"])
    with pytest.raises(ConfigError, match="--grace"):
        config_from_args(args, settings)
