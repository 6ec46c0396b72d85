"""Receipts fetched after the answer (ccn_cli.node.receipt_fetcher): which results wait, how
often they are asked for, when the node gives up, the bound on what it remembers, and what it
does with each answer of the edge (stored, asked again later, refused for good)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccn_cli.node.config import NodeConfig
from ccn_cli.node.edge_http import EdgeRefused, EdgeRejected, EdgeUnavailable
from ccn_cli.node.node import build_client
from ccn_cli.node.receipt_fetcher import GIVE_UP_S, PendingReceipts, ReceiptFetcher
from ccn_cli.node.receipts_store import stored_receipts
from ccn_core.receipts import ServiceKey, sign_receipt
from ccn_proto.node_protocol import Ack, Acks
from ccn_proto.receipts import Receipt

KEY = ServiceKey("k1", Ed25519PrivateKey.generate())


def receipt(job_id: str, node_id: str = "node-1", attempt: int = 1) -> Receipt:
    return sign_receipt(
        KEY,
        job_id=job_id,
        attempt=attempt,
        node_id=node_id,
        result_checksum="a" * 64,
        verdict="validated",
        issued_at=datetime(2026, 12, 7, 7, 0, tzinfo=UTC),
    )


def test_a_result_is_first_asked_for_after_a_delay_then_less_and_less_often() -> None:
    pending = PendingReceipts(first_delay_s=1.0, max_delay_s=8.0)
    pending.remember("j1", 1, now=100.0)
    assert pending.due(100.5) == [] and pending.due(101.0) == [("j1", 1)]
    waits = []
    now = 101.0
    for _ in range(6):
        assert pending.later("j1", now, jitter=1.0)
        waits.append(pending.next_due() - now)  # type: ignore[operator]
        now = pending.next_due()  # type: ignore[assignment]
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert pending.later("j1", 500.0, jitter=0.0) and pending.next_due() == 504.0  # jitter halves at most


def test_retry_after_is_honoured_and_the_node_gives_up_after_ten_minutes() -> None:
    pending = PendingReceipts()
    pending.remember("j1", None, now=0.0)
    assert pending.later("j1", 1.0, jitter=0.0, retry_after=30.0) and pending.next_due() == 31.0
    assert not pending.later("j1", GIVE_UP_S, jitter=0.0)
    assert "j1" not in pending and pending.next_due() is None
    assert GIVE_UP_S == 600.0


def test_the_set_is_bounded_and_the_oldest_is_dropped() -> None:
    pending = PendingReceipts(max_pending=3)
    dropped = [pending.remember(f"j{n}", n, now=float(n)) for n in range(5)]
    assert dropped == [[], [], [], ["j0"], ["j1"]]
    assert len(pending) == 3 and pending.due(100.0) == [("j2", 2), ("j3", 3), ("j4", 4)]
    assert pending.due(100.0, limit=2) == [("j2", 2), ("j3", 3)]


async def fetch_all(fetcher: ReceiptFetcher, until: float = 5.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(fetcher.run(stop))
    try:
        async with asyncio.timeout(until):
            while len(fetcher.pending):
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


async def test_each_answer_of_the_edge_is_stored_retried_or_given_up(tmp_path: Path) -> None:
    answers: dict[str, list[Receipt | Exception | None]] = {
        "late": [None, EdgeUnavailable("busy", status=503, retry_after=0.01), receipt("late")],
        "theirs": [EdgeRefused("not yours", status=403)],
        "session": [EdgeRefused("expired", status=401), receipt("session")],
        "wrong-node": [receipt("wrong-node", node_id="node-2")],
        "bad": [EdgeRejected("not a receipt", status=200)],
    }
    asked: list[str] = []

    async def ask(job_id: str) -> Receipt | None:
        asked.append(job_id)
        answer = answers[job_id].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    pending = PendingReceipts(first_delay_s=0.01, max_delay_s=0.02)
    fetcher = ReceiptFetcher(ask, tmp_path / "receipts", lambda: "node-1", pending=pending, idle_s=0.01)
    for job_id in answers:
        fetcher.remember(job_id, 1)
    await fetch_all(fetcher)
    stored = {path.name: found for path, found in stored_receipts(tmp_path / "receipts")}
    assert stored == {"late.1.json": receipt("late"), "session.1.json": receipt("session")}
    assert fetcher.stored == 2
    assert sorted(asked) == sorted(["late"] * 3 + ["theirs", "session", "session", "wrong-node", "bad"])
    assert all(not remaining for remaining in answers.values())


async def test_a_receipt_never_issued_is_given_up_on(tmp_path: Path) -> None:
    clock = [0.0]
    asked = 0

    async def never(job_id: str) -> Receipt | None:
        nonlocal asked
        asked += 1
        clock[0] += 100.0  # each ask finds time has passed
        return None

    pending = PendingReceipts(first_delay_s=0.0)
    fetcher = ReceiptFetcher(
        never, tmp_path, lambda: "node-1", pending=pending, clock=lambda: clock[0], jitter=lambda: 0.0, idle_s=0.01
    )
    fetcher.remember("j1", 1)
    # each ask finds 100 s gone, more than any wait: asked at 0, 100, ... 500, then given up at 600
    await fetch_all(fetcher)
    assert asked == 6 and "j1" not in pending and fetcher.stored == 0


@pytest.mark.parametrize("count", [1, 40])
async def test_at_most_a_tick_of_asks_goes_out_at_once(tmp_path: Path, count: int) -> None:
    in_flight, most = 0, 0

    async def ask(job_id: str) -> Receipt | None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)
        in_flight -= 1
        return receipt(job_id)

    fetcher = ReceiptFetcher(ask, tmp_path, lambda: "node-1", pending=PendingReceipts(first_delay_s=0.0), idle_s=0.01)
    for n in range(count):
        fetcher.remember(f"j{n}", 1)
    await fetch_all(fetcher)
    assert fetcher.stored == count and most == 1  # one at a time: the edge is never flooded


async def test_the_node_client_remembers_the_results_acknowledged_as_validating(tmp_path: Path) -> None:
    config = NodeConfig(edge_url="http://127.0.0.1:9", home=tmp_path)
    async with aiohttp.ClientSession() as http:
        client = build_client(config, http)
        fetcher = ReceiptFetcher(ask_nothing, tmp_path / "receipts", lambda: "node-1", pending=PendingReceipts())
        client._late_receipts = fetcher
        client._attempts["j1"] = 3
        acks = [Ack(job_id="j1", status="validating"), Ack(job_id="j2", status="completed")]
        client._on_frame(msgspec.json.encode(Acks(acks=acks)))
    # a completed result's receipt came with its answer, or none will: only j1 is waited for
    assert fetcher.pending.due(float("inf")) == [("j1", 3)]


async def ask_nothing(job_id: str) -> Receipt | None:
    return None
