"""Who may read which document body through the edge, decided from the job alone: the walk
that finds a payload's references, bounded, and the refusal for every request that is not the
holder's for a body its job names; and the deadline on a response a client stops reading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ccn_core.errors import CcnError, Conflict, Forbidden, PayloadTooLarge
from ccn_edge.documents_api import document_for, named_references, within_deadline
from ccn_proto.documents import DocumentRef
from ccn_proto.scheduler import JobView

A = "a" * 64
B = "b" * 64


def ref(sha256: str = A, size: int = 10, media_type: str = "text/html") -> dict[str, Any]:
    return {"kind": "ref", "sha256": sha256, "size": size, "media_type": media_type}


def test_references_are_found_wherever_the_payload_puts_them() -> None:
    payload = {"document": ref(A), "pages": [{"scan": ref(B, 5, "application/pdf")}], "html": None}
    found = named_references(payload)
    assert found == {
        A: DocumentRef(sha256=A, size=10, media_type="text/html"),
        B: DocumentRef(sha256=B, size=5, media_type="application/pdf"),
    }


def test_a_malformed_reference_is_not_one_and_the_first_of_a_digest_wins() -> None:
    payload = {
        "first": ref(A, 10),
        "again": ref(A, 99),
        "bad_digest": ref("not-hex"),
        "extra_field": {**ref(B), "url": "http://x"},
        "kind": "ref",
    }
    assert named_references(payload) == {A: DocumentRef(sha256=A, size=10, media_type="text/html")}


def test_the_walk_is_bounded_in_depth_and_in_values() -> None:
    deep: Any = ref(A)
    for _ in range(20):
        deep = {"next": deep}
    assert named_references(deep, max_depth=16) == {}
    assert A in named_references(deep, max_depth=32)
    wide = {"items": [0] * 50_000 + [ref(B)]}
    assert named_references(wide, max_values=1_000) == {}
    # a payload nested past Python's recursion limit costs the walk nothing
    nested: Any = []
    for _ in range(100_000):
        nested = [nested]
    assert named_references(nested) == {}


def view(status: str = "claimed", holder: str | None = "node-1", payload: dict[str, Any] | None = None) -> JobView:
    return JobView(
        job_id="job-1",
        job_type="extract_text",
        status=status,  # type: ignore[arg-type]
        payload=payload if payload is not None else {"document": ref(A, 1000)},
        priority=0,
        max_retries=3,
        lease_s=60.0,
        attempt=1,
        holder=holder,
        lease_until=None,
        retry_at=None,
        batch_id=None,
        dataset_source=None,
        dataset_version=None,
        result=None,
        result_checksum=None,
        history=[],
        server_time=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_the_holder_of_a_claimed_job_gets_the_reference_it_names() -> None:
    assert document_for(view(), "node-1", A, max_bytes=1000) == DocumentRef(sha256=A, size=1000, media_type="text/html")


@pytest.mark.parametrize(
    ("job", "node", "sha256", "max_bytes", "error", "status"),
    [
        (view(holder="node-2"), "node-1", A, 10_000, Forbidden, 403),
        (view(status="queued", holder=None), "node-1", A, 10_000, Conflict, 409),
        (view(status="completed"), "node-1", A, 10_000, Conflict, 409),
        (view(status="retry_wait", holder=None), "node-1", A, 10_000, Conflict, 409),
        (view(), "node-1", A, 999, PayloadTooLarge, 413),
    ],
)
def test_every_other_request_is_refused_with_its_status(
    job: JobView, node: str, sha256: str, max_bytes: int, error: type[CcnError], status: int
) -> None:
    with pytest.raises(error) as raised:
        document_for(job, node, sha256, max_bytes)
    assert raised.value.http_status == status


@pytest.mark.parametrize("job", [view(), view(payload={"html": "<p>inline</p>"})])
def test_a_digest_the_payload_does_not_name_is_left_to_the_fetch_grants(job: JobView) -> None:
    assert document_for(job, "node-1", B, max_bytes=10_000) is None
    # the holder's checks come first: no grant can let another node read it
    with pytest.raises(Forbidden):
        document_for(msgspec.structs.replace(job, holder="node-2"), "node-1", B, max_bytes=10_000)


async def test_a_response_the_client_stops_reading_is_abandoned_at_the_deadline() -> None:
    sent: list[dict[str, Any]] = []
    stalled = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await stalled.wait()  # as a send to a client that no longer reads
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    started = asyncio.get_running_loop().time()
    await within_deadline(0.2)(app)({"type": "http", "path": "/x"}, receive, send)  # type: ignore[arg-type]
    assert 0.15 < asyncio.get_running_loop().time() - started < 2
    assert [message.get("more_body") for message in sent] == [None, True]  # never completed
