"""Which results the reference node sends together in one `results` frame."""

from __future__ import annotations

import msgspec

from ccn_cli.node.batching import results_frames
from ccn_proto.node_protocol import JobResult, NodeFrame


def result(job_id: str, chars: int = 10) -> JobResult:
    return JobResult(job_id=job_id, result={"text": "x" * chars}, checksum="0" * 64)


def test_results_go_in_order_in_as_few_frames_as_the_item_bound_allows() -> None:
    frames = results_frames([result(f"j{index}") for index in range(7)], max_bytes=1_000_000, max_items=3)
    assert [[item.job_id for item in frame.results] for frame in frames] == [
        ["j0", "j1", "j2"],
        ["j3", "j4", "j5"],
        ["j6"],
    ]


def test_every_frame_stays_under_the_byte_bound_and_decodes_as_a_node_frame() -> None:
    results = [result(f"j{index}", chars=400) for index in range(10)]
    frames = results_frames(results, max_bytes=1_500)
    assert len(frames) > 1
    for frame in frames:
        data = msgspec.json.encode(msgspec.structs.replace(frame, ready=256))
        assert len(data) <= 1_500
        assert msgspec.json.decode(data, type=NodeFrame) == msgspec.structs.replace(frame, ready=256)
    assert [item.job_id for frame in frames for item in frame.results] == [f"j{index}" for index in range(10)]


def test_a_result_near_the_bound_goes_alone() -> None:
    frames = results_frames([result("small"), result("big", chars=1_400), result("small2")], max_bytes=1_500)
    assert [[item.job_id for item in frame.results] for frame in frames] == [["small"], ["big"], ["small2"]]
