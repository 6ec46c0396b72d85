"""/ws fuzzed with frames from the node-protocol JSON Schema, valid and hostile, before and
after hello (tests/fuzz/ws_fuzz.py says how). Each run asserts that every answer was typed and
every close documented, that every frame type and mutation was sent, and that every service is
still ready once the projections have taken in what the run wrote.

The small form runs in `make test`; the long one with CCN_SLOW=1 (marked slow).
"""

from __future__ import annotations

import asyncio

import pytest
import requests

from tests.fuzz.figures import Tally
from tests.fuzz.hostile import MUTATIONS
from tests.fuzz.openapi_fuzz import register_node
from tests.fuzz.stack import Stack, settled_readiness
from tests.fuzz.ws_fuzz import NODE_FRAME_TYPES, Target, fuzz_frames
from tests.support.sizes import small_and_full

TARGETS = [
    Target(phase, base, mutation)
    for phase in ("before hello", "after hello")
    for base in [*NODE_FRAME_TYPES, *(["real hello"] if phase == "before hello" else [])]
    for mutation in (None, *MUTATIONS)
]


def fuzz_all(stack: Stack, examples: int, tally: Tally) -> None:
    with requests.Session() as http:
        session_token = register_node(http, stack.edge_url)["session_token"]
    for target in TARGETS:
        fuzz_frames(stack.ws_url, target, examples, session_token, tally)


@pytest.mark.parametrize(
    "examples",
    small_and_full(2, 12, "the long fuzzing run"),
)
async def test_every_frame_the_edge_refuses_is_refused_in_a_typed_way(
    stack: Stack, tally: Tally, examples: int
) -> None:
    await asyncio.to_thread(fuzz_all, stack, examples, tally)
    for service, why in (await settled_readiness(stack)).items():
        tally.found(f"{service} not ready after the frames", f"after {tally.examples} frames: {why}")
    expected = {f"{target.phase}: {target.base}" for target in TARGETS}
    assert expected <= set(tally.covered), f"never sent: {sorted(expected - set(tally.covered))}"
    assert not tally.findings, tally.failure_report()
