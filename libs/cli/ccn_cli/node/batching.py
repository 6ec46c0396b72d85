"""Which finished results go together in one `results` frame: pure, so the bounds are tested
without a socket. A frame holds at most MAX_FRAME_ITEMS results and stays under the node's
byte limit for what it sends (a result alone over it is never queued: it became a JobFail)."""

from __future__ import annotations

import msgspec

from ccn_proto.node_protocol import MAX_FRAME_ITEMS, JobResult, JobResults, ResultItem

# '{"type":"results","results":[' … '],"ready":256}'
_FRAME_OVERHEAD = 64


def result_item(frame: JobResult) -> ResultItem:
    return ResultItem(
        job_id=frame.job_id, result=frame.result, checksum=frame.checksum, usage=frame.usage, signature=frame.signature
    )


def results_frames(results: list[JobResult], max_bytes: int, max_items: int = MAX_FRAME_ITEMS) -> list[JobResults]:
    """The results in order, in as few frames as the bounds allow."""
    frames: list[JobResults] = []
    chunk: list[ResultItem] = []
    size = _FRAME_OVERHEAD
    for result in results:
        item = result_item(result)
        item_bytes = len(msgspec.json.encode(item)) + 1
        if chunk and (len(chunk) >= max_items or size + item_bytes > max_bytes):
            frames.append(JobResults(results=chunk))
            chunk, size = [], _FRAME_OVERHEAD
        chunk.append(item)
        size += item_bytes
    if chunk:
        frames.append(JobResults(results=chunk))
    return frames
