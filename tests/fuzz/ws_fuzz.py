"""Frames for /ws from the published node-protocol JSON Schema (proto/schema/node_protocol.json,
through hypothesis-jsonschema), valid and made hostile (tests/fuzz/hostile.py), sent to a live
edge from a worker thread over a real WebSocket, each on a connection of its own:

* after hello: the node greets with its real session token, is welcomed, sends the frame, then
  a probe (a `fail` for a job it cannot hold, answered with a `conflict` error naming the probe's
  job id). Everything between is the edge's answer to the frame.
* before hello: the frame is the connection's first. Besides frames drawn from the schema, a
  real hello (a valid token) made hostile is sent first too.

What every answer must be: frames the schema lists for the edge, every error typed (a code of
the project's error codes), a close only with a documented code (never 1011 or Litestar's 4500,
an internal error), and a refusal, not silence or acceptance, of what the issue names bad input.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from ccn_core.errors import ERRORS_BY_CODE
from ccn_proto.node_protocol import MIN_NODE_VERSION, PROTOCOL_VERSION
from tests.fuzz.figures import Tally
from tests.fuzz.hostile import JSON, MUST_REFUSE, fuzz_settings, hostile

NODE_PROTOCOL = json.loads((Path(__file__).parents[2] / "proto" / "schema" / "node_protocol.json").read_text())
_NODE_FRAMES, _EDGE_FRAMES = NODE_PROTOCOL["anyOf"]
NODE_FRAME_TYPES: dict[str, str] = _NODE_FRAMES["discriminator"]["mapping"]  # type -> $ref
# 1000 after a bye, 1008 for a refused hello or too many bad frames (docs/protocol.md), 1013 when
# the edge cannot reach the scheduler, 1009 from the WebSocket layer past 4 x the frame limit
DOCUMENTED_CLOSE_CODES = {1000, 1008, 1009, 1013}
ERROR_CODES = set(ERRORS_BY_CODE) - {"internal"}
REFUSALS = {"bad_input", "payload_too_large"}
ANSWER_TIMEOUT_S = 15.0
# the property names the protocol types: where "1" for 1 is wrong
TYPED_KEYS = frozenset(
    name for definition in NODE_PROTOCOL["$defs"].values() for name in definition.get("properties", {})
)
_edge_frames = jsonschema.Draft202012Validator({"$defs": NODE_PROTOCOL["$defs"], **_EDGE_FRAMES})


def frames_of(frame_type: str) -> st.SearchStrategy[JSON]:
    """Valid node frames of one type, drawn from the published schema."""
    return from_schema({"$defs": NODE_PROTOCOL["$defs"], "$ref": NODE_FRAME_TYPES[frame_type]})


def hello(session_token: str) -> dict[str, Any]:
    return {
        "type": "hello",
        "session_token": session_token,
        "node_version": MIN_NODE_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "capabilities": {"job_types": ["extract_text"], "concurrency": 1},
    }


@dataclass
class Answer:
    frames: list[dict[str, Any]] = field(default_factory=list)
    undecodable: list[str] = field(default_factory=list)
    close_code: int | None = None
    timed_out: bool = False

    @property
    def outcome(self) -> str:
        """E.g. "bad_input+bye, close 1008": the error codes and other frame types, then the end."""
        seen = sorted({str(f.get("code")) if f.get("type") == "error" else str(f.get("type")) for f in self.frames})
        ending = "timeout" if self.timed_out else f"close {self.close_code}" if self.close_code else "open"
        return f"{'+'.join(seen) or 'nothing'}, {ending}"


def _read(ws: ClientConnection, answer: Answer, until_probe: str | None) -> None:
    """Frames until the probe's answer (with no probe: until a welcome or the edge's close)."""
    try:
        while True:
            message = ws.recv(timeout=ANSWER_TIMEOUT_S)
            try:
                frame = json.loads(message)
            except ValueError:
                answer.undecodable.append(repr(message[:120]))
                continue
            if until_probe is not None and frame.get("type") == "error" and frame.get("job_id") == until_probe:
                return
            answer.frames.append(frame)
            if until_probe is None and frame.get("type") == "welcome":
                return
    except ConnectionClosed as closed:
        answer.close_code = closed.rcvd.code if closed.rcvd is not None else 1006
    except TimeoutError:
        answer.timed_out = True


def _send(ws: ClientConnection, payload: bytes, as_binary: bool) -> None:
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        ws.send(payload)  # not text: only a binary frame can carry it
        return
    ws.send(payload if as_binary else text)


def exchange(ws_url: str, session_token: str | None, payload: bytes, as_binary: bool) -> Answer:
    """One connection: (hello with the token, if any), the frame, (the probe), the answer."""
    answer = Answer()
    with connect(ws_url, max_size=None, open_timeout=10, close_timeout=5) as ws:
        probe: str | None = None
        if session_token is not None:
            ws.send(json.dumps(hello(session_token)))
            welcome = json.loads(ws.recv(timeout=ANSWER_TIMEOUT_S))
            if welcome.get("type") != "welcome":
                raise AssertionError(f"the real hello was not welcomed: {welcome}")
            probe = f"probe-{uuid.uuid4().hex}"
        try:
            _send(ws, payload, as_binary)
            if probe is not None:
                ws.send(json.dumps({"type": "fail", "job_id": probe, "reason": "probe"}))
        except ConnectionClosed as closed:
            answer.close_code = closed.rcvd.code if closed.rcvd is not None else 1006
            return answer
        _read(ws, answer, probe)
    return answer


def problems(answer: Answer, mutation: str | None) -> list[str]:
    found = []
    if answer.timed_out:
        found.append("no answer within the timeout (the edge hung on the frame)")
    if answer.close_code is not None and answer.close_code not in DOCUMENTED_CLOSE_CODES:
        found.append(f"closed with code {answer.close_code}")
    if answer.undecodable:
        found.append("a frame from the edge that is not JSON")
    for frame in answer.frames:
        if not _edge_frames.is_valid(frame):
            found.append(f"a frame the schema does not list for the edge: {str(frame)[:80]}")
        elif frame.get("type") == "error" and frame.get("code") not in ERROR_CODES:
            found.append(f"an error frame with code {frame.get('code')!r}")
    refused = any(f.get("type") == "error" and f.get("code") in REFUSALS for f in answer.frames)
    if mutation in MUST_REFUSE and not refused and answer.close_code in (None, 1000):
        found.append("accepted where a bad_input error was due")
    return found


@dataclass(frozen=True)
class Target:
    """What the fuzzed frame is: its phase (before or after hello), its base and its mutation."""

    phase: str
    base: str  # a frame type, or "real hello"
    mutation: str | None  # None: the valid frame as drawn

    @property
    def label(self) -> str:
        return f"{self.phase}: {self.base}" + (f" / {self.mutation}" if self.mutation else "")


def fuzz_frames(ws_url: str, target: Target, examples: int, session_token: str, tally: Tally) -> None:
    if target.base == "real hello":
        base: st.SearchStrategy[JSON] = st.just(hello(session_token))
    else:
        base = frames_of(target.base)
    token = session_token if target.phase == "after hello" else None

    @fuzz_settings(examples)
    @given(data=st.data(), as_binary=st.booleans())
    def one(data: st.DataObject, as_binary: bool) -> None:
        document = data.draw(base)
        if target.mutation is None:
            mutation, payload = None, json.dumps(document).encode()
        else:
            mutation, payload = data.draw(hostile(document, target.mutation, TYPED_KEYS))
        label = Target(target.phase, target.base, mutation).label
        try:
            answer = exchange(ws_url, token, payload, as_binary)
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
            tally.found(f"{label}: the connection failed ({type(exc).__name__}: {exc})", repr(payload[:200]))
            return
        tally.sent(f"{target.phase}: {target.base}", answer.outcome)
        for problem in problems(answer, mutation):
            tally.found(f"{label}: {problem}", f"{payload[:200]!r} -> {answer.outcome}")

    one()
