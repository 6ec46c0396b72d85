"""Connection limits without I/O: the gate's exact boundaries and releases, the typed refusal for
each cap (and that the reference node retries after it), the sampled refusal log's tally, the
settings that carry the caps, and the request-body deadline of every app built with
create_http_app, driven through ASGI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import structlog.testing
from litestar import post
from litestar.params import JSONBody

from ccn_cli.node.decisions import ErrorAction, decide_error
from ccn_core.settings import SettingsError, settings_from_env
from ccn_edge.connection_gate import ConnectionGate, Refusal, Ticket
from ccn_edge.connection_limits import (
    NODE_CAP_RETRY_AFTER_S,
    UNGREETED_RETRY_AFTER_S,
    node_connections_refusal,
    ungreeted_refusal,
)
from ccn_proto.node_protocol import Error
from ccn_web.http import create_http_app
from ccn_web.refusals import RefusalLog, RefusalSummary, RefusalTally


def held(gate: ConnectionGate, key: str) -> Ticket:
    ticket = gate.acquire(key)
    assert isinstance(ticket, Ticket), ticket
    return ticket


def test_a_key_gets_exactly_its_cap() -> None:
    gate = ConnectionGate(per_key=3, total=10)
    tickets = [held(gate, "ip-a") for _ in range(3)]
    assert gate.acquire("ip-a") == Refusal("per_key", 3)
    assert gate.held("ip-a") == 3 and gate.held() == 3
    held(gate, "ip-b")  # another key is not held back by the first one's cap
    tickets[0].release()
    assert gate.held("ip-a") == 2
    held(gate, "ip-a")  # the freed slot, and only it
    assert gate.acquire("ip-a") == Refusal("per_key", 3)


def test_the_total_cap_binds_across_keys() -> None:
    gate = ConnectionGate(per_key=2, total=3)
    first = held(gate, "a")
    held(gate, "a")
    held(gate, "b")
    assert gate.acquire("c") == Refusal("total", 3)
    assert gate.acquire("a") == Refusal("per_key", 2)  # its own cap is named when both bind
    first.release()
    held(gate, "c")
    assert gate.held() == 3


def test_a_ticket_released_twice_frees_one_slot() -> None:
    gate = ConnectionGate(per_key=2, total=2)
    ticket = held(gate, "a")
    other = held(gate, "a")
    ticket.release()
    ticket.release()  # an early release and the final one on the way out: one slot, not two
    assert gate.held("a") == 1 and gate.held() == 1
    other.release()
    assert gate.held() == 0 and gate.held("a") == 0


def test_concurrent_acquires_never_overshoot() -> None:
    async def scenario() -> tuple[int, int]:
        gate = ConnectionGate(per_key=5, total=8)

        async def one(key: str) -> bool:
            await asyncio.sleep(0)
            return isinstance(gate.acquire(key), Ticket)

        admitted = await asyncio.gather(*(one(f"ip-{i % 3}") for i in range(100)))
        return sum(admitted), gate.held()

    assert asyncio.run(scenario()) == (8, 8)


def test_a_gate_with_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        ConnectionGate(per_key=0)
    with pytest.raises(ValueError):
        ConnectionGate(per_key=1, total=0)


def test_each_cap_has_its_typed_refusal_and_the_reference_node_retries_after_it() -> None:
    kind, per_ip = ungreeted_refusal(Refusal("per_key", 16))
    assert (kind, per_ip.code, per_ip.retry_after) == ("ws_ungreeted_per_ip", "rate_limited", UNGREETED_RETRY_AFTER_S)
    assert "16 connections from this address" in per_ip.message
    kind, total = ungreeted_refusal(Refusal("total", 1024))
    assert (kind, total.code, total.retry_after) == ("ws_ungreeted_total", "unavailable", UNGREETED_RETRY_AFTER_S)
    kind, node = node_connections_refusal(Refusal("per_key", 4))
    assert (kind, node.code, node.retry_after) == ("ws_node_connections", "conflict", NODE_CAP_RETRY_AFTER_S)
    assert "already has 4 connections" in node.message
    for refusal in (per_ip, total, node):
        frame = Error(code=refusal.code, message=refusal.message, retry_after=refusal.retry_after)
        # before its welcome, `ccn node` takes each as "reconnect later", never as "give up"
        assert decide_error(frame, welcomed=False) is ErrorAction.RETRY_LATER


def test_the_refusal_tally_logs_the_first_and_counts_the_rest() -> None:
    tally = RefusalTally()
    assert tally.note("ws_ungreeted_per_ip", "ip-a") is True
    assert tally.close("ws_ungreeted_per_ip") is None  # nothing but the first, already logged
    assert tally.note("ws_ungreeted_per_ip", "ip-a") is True  # a new window
    assert tally.note("ws_node_connections", "node-1") is True  # each kind has its own
    for key in ["ip-a"] * 5 + ["ip-b"] * 2 + ["ip-c"]:
        assert tally.note("ws_ungreeted_per_ip", key) is False
    assert tally.close("ws_ungreeted_per_ip") == RefusalSummary(
        kind="ws_ungreeted_per_ip", refused=8, keys=3, top=[("ip-a", 5), ("ip-b", 2), ("ip-c", 1)]
    )
    assert tally.note("ws_ungreeted_per_ip", "ip-a") is True


def test_the_limits_are_read_from_the_environment_and_must_be_positive() -> None:
    settings = settings_from_env(
        {
            "CCN_WS_MAX_UNGREETED_PER_IP": "8",
            "CCN_WS_MAX_UNGREETED": "100",
            "CCN_WS_MAX_CONNECTIONS_PER_NODE": "2",
            "CCN_HTTP_BODY_TIMEOUT_S": "2.5",
            "CCN_HTTP_HEADERS_TIMEOUT_S": "3",
            "CCN_HTTP_KEEP_ALIVE_S": "7",
            "CCN_HTTP_MAX_HEADER_BYTES": "8192",
        }
    )
    assert (settings.ws_max_ungreeted_per_ip, settings.ws_max_ungreeted, settings.ws_max_connections_per_node) == (
        8,
        100,
        2,
    )
    assert (settings.http_body_timeout_s, settings.http_headers_timeout_s) == (2.5, 3.0)
    assert (settings.http_keep_alive_s, settings.http_max_header_bytes) == (7, 8192)
    with pytest.raises(SettingsError, match="CCN_WS_MAX_CONNECTIONS_PER_NODE must be above 0, not 0"):
        settings_from_env({"CCN_WS_MAX_CONNECTIONS_PER_NODE": "0"})
    with pytest.raises(SettingsError, match="CCN_HTTP_BODY_TIMEOUT_S must be above 0"):
        settings_from_env({"CCN_HTTP_BODY_TIMEOUT_S": "-1"})


# -- the request-body deadline, through a real Litestar app over ASGI ---------------------------


@post("/echo", sync_to_thread=False)
def echo(data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
    return data


async def _ready() -> tuple[bool, dict[str, str]]:
    return True, {}


async def _call(chunks: list[bytes], *, stall: bool, timeout_s: float = 0.2) -> tuple[int, dict[str, str], bytes]:
    """POST the chunks to a create_http_app app; with `stall`, the client then sends nothing more."""
    app = create_http_app(
        service="test", title="t", route_handlers=[echo], ready=_ready, max_body_bytes=1024, body_timeout_s=timeout_s
    )
    pending = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    if not stall:
        pending[-1]["more_body"] = False
    sent: list[Any] = []

    async def receive() -> Any:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # a client that stopped sending

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"20")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    async with asyncio.timeout(5):
        await app(scope, receive, send)  # type: ignore[arg-type]
    start = sent[0]
    headers = {key.decode(): value.decode() for key, value in start["headers"]}
    return start["status"], headers, b"".join(message.get("body", b"") for message in sent[1:])


async def test_a_stalled_body_gets_408_with_the_error_body_and_the_connection_closed() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, headers, body = await _call([b'{"a": '], stall=True)
    assert 0.2 <= loop.time() - started < 2
    assert status == 408
    assert headers["connection"] == "close"
    error = json.loads(body)
    assert (error["code"], error["field"]) == ("request_timeout", None)
    assert error["message"] == "the request body did not arrive within 0.2 s"
    assert error["correlation_id"] == headers["x-correlation-id"]


async def test_a_body_that_arrives_in_time_is_served() -> None:
    status, _, body = await _call([b'{"a": ', b"1}"], stall=False)
    assert status == 201
    assert json.loads(body) == {"a": 1}


async def test_a_flood_of_refusals_is_two_log_lines_with_what_an_operator_needs() -> None:
    with structlog.testing.capture_logs() as lines:
        # a logger of its own: one bound before (and cached) would not write to the capture
        refusals = RefusalLog(window_s=0.05, logger=structlog.get_logger("test.refusals"))
        for key in ["ip-a"] * 6 + ["ip-b"] * 3:
            refusals.refused("ws_ungreeted_per_ip", key, "connection refused before hello", ip_hash=key)
        async with asyncio.timeout(5):
            while len(lines) < 2:
                await asyncio.sleep(0.01)
    assert lines == [
        {
            "event": "connection refused before hello",
            "log_level": "warning",
            "refusal": "ws_ungreeted_per_ip",
            "key": "ip-a",
            "ip_hash": "ip-a",
        },
        {
            "event": "more refusals",
            "log_level": "warning",
            "refusal": "ws_ungreeted_per_ip",
            "refused": 8,
            "keys": 2,
            "top": [{"key": "ip-a", "refused": 5}, {"key": "ip-b", "refused": 3}],
            "window_s": 0.05,
        },
    ]
