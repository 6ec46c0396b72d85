"""The fetch frames of the node protocol, decoded as the edge decodes every node frame (bounded,
closed: a frame cannot name a node), the answer a node reads, and the edge's cap on one node's
fetches in flight."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ccn_core.errors import BadInput, RateLimited
from ccn_core.rate_limit_config import DEFAULT_RATE_LIMITS, checked
from ccn_core.untrusted import decode_untrusted, untrusted_decoder
from ccn_edge.fetch_relay import FetchSlots
from ccn_proto import node_protocol as frames
from ccn_proto.compute_api import FetchRequest
from ccn_proto.documents import HTML, DocumentRef
from ccn_proto.fetch import MAX_URL_CHARS, FetchedPage

_node_frames = untrusted_decoder(frames.NodeFrame)
_fetch_requests = untrusted_decoder(FetchRequest)
_server_frames = msgspec.json.Decoder(frames.ServerFrame)

GOOD = {"type": "fetch", "request_id": "job-1:3", "job_id": "job-1", "url": "https://funder.example/grants?p=2"}


def decoded(frame: dict[str, Any]) -> frames.NodeFrame:
    result: frames.NodeFrame = decode_untrusted(msgspec.json.encode(frame), _node_frames)
    return result


def test_a_fetch_frame_decodes_with_its_validators() -> None:
    frame = decoded({**GOOD, "if_none_match": '"abc"', "if_modified_since": "Tue, 01 Dec 2026 10:00:00 GMT"})
    assert frame == frames.Fetch(
        request_id="job-1:3",
        job_id="job-1",
        url="https://funder.example/grants?p=2",
        if_none_match='"abc"',
        if_modified_since="Tue, 01 Dec 2026 10:00:00 GMT",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"node_id": "someone-else"}, "node_id"),  # no frame names its node: the session does
        ({"request_id": ""}, "request_id"),
        ({"request_id": "r" * 65}, "request_id"),
        ({"request_id": "a b"}, "request_id"),
        ({"request_id": "a\n"}, "request_id"),
        ({"url": "https://a.example/" + "x" * MAX_URL_CHARS}, "url"),
        ({"url": "https://a.example/a b"}, "url"),
        ({"url": "https://a.example/\u00e9"}, "url"),
        ({"url": ""}, "url"),
        ({"job_id": "j" * 129}, "job_id"),
        ({"if_none_match": "x" * 257}, "if_none_match"),
        ({"if_modified_since": "Tue\r\nX-Evil: 1"}, "if_modified_since"),
        ({"request_id": 7}, "request_id"),
    ],
)
def test_a_fetch_frame_off_its_bounds_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInput) as raised:
        decoded({**GOOD, **change})
    assert raised.value.field == field


def test_the_http_body_is_closed_and_bounded_the_same_way() -> None:
    body = {"url": GOOD["url"], "if_none_match": '"v1"'}
    assert decode_untrusted(msgspec.json.encode(body), _fetch_requests) == FetchRequest(
        url=GOOD["url"], if_none_match='"v1"'
    )
    for change, field in (({"node_id": "n"}, "node_id"), ({"url": "x" * (MAX_URL_CHARS + 1)}, "url")):
        with pytest.raises(BadInput) as raised:
            decode_untrusted(msgspec.json.encode({**body, **change}), _fetch_requests)
        assert raised.value.field == field


def test_a_node_reads_the_answer_and_the_refusal_naming_its_request() -> None:
    page = FetchedPage(
        fetch_id="f-1",
        url=GOOD["url"],
        final_url=GOOD["url"],
        status=200,
        content_type="text/html",
        body=DocumentRef(sha256="a" * 64, size=10, media_type=HTML),
        fetched_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    answer = msgspec.json.encode(frames.FetchResult(request_id="job-1:3", outcome=page))
    assert msgspec.json.decode(answer)["outcome"]["type"] == "fetched"
    assert _server_frames.decode(answer) == frames.FetchResult(request_id="job-1:3", outcome=page)
    refusal = frames.Error(code="unavailable", message="m", job_id="job-1", retry_after=5.0, request_id="job-1:3")
    assert _server_frames.decode(msgspec.json.encode(refusal)) == refusal
    # an error frame from an edge that knows nothing of fetches still decodes
    assert _server_frames.decode(b'{"type":"error","code":"c","message":"m"}') == frames.Error(code="c", message="m")


def test_a_node_holds_at_most_its_cap_of_fetches_each_node_its_own() -> None:
    slots = FetchSlots(2)
    first, second = slots.take("node-a"), slots.take("node-a")
    with pytest.raises(RateLimited) as raised:
        slots.take("node-a")
    assert raised.value.retry_after == 1.0
    other = slots.take("node-b")  # another node is not held back by node-a
    first.release()
    first.release()  # once only
    third = slots.take("node-a")
    assert slots.held("node-a") == 2
    for slot in (second, third, other):
        slot.release()
    assert slots.held("node-a") == slots.held("node-b") == 0


def test_fetches_have_a_rate_limit_of_their_own_per_node_by_default() -> None:
    assert checked(DEFAULT_RATE_LIMITS) is DEFAULT_RATE_LIMITS
    assert {"ws.fetch", "http.fetch"} <= set(DEFAULT_RATE_LIMITS.per_node)
