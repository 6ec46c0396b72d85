"""The topology is applied once, under a lock, by `ccn topology apply`; a service only checks it
and, when something is missing, says exactly what."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from ccn_cli.main import main as ccn_main
from ccn_cli.stack.ports import free_port
from ccn_core.document_bodies import BODY_BUCKET
from ccn_core.kv_lock import LockTimeout, held_lock
from ccn_core.service import open_runtime
from ccn_core.settings import Settings
from ccn_core.topology import KEY_VALUES, STREAMS, TopologyMissing, apply_topology, missing_topology
from tests.support.servers import start_nats

pytestmark = pytest.mark.skipif(bool(os.environ.get("CCN_NATS_URL")), reason="needs a bare NATS server of its own")

EVERYTHING = [
    *(f"stream {s.name} ({', '.join(s.subjects)})" for s in STREAMS),
    *(f"key-value bucket {kv.bucket}" for kv in KEY_VALUES),
    f"object store {BODY_BUCKET}",
]


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[tuple[str, NATS]]:
    server = start_nats(tmp_path / "nats", free_port())
    client = await nats.connect(server.url)
    try:
        yield server.url, client
    finally:
        await client.drain()
        server.stop()


async def test_a_service_on_a_bare_server_names_every_missing_stream_and_bucket(bare: tuple[str, NATS]) -> None:
    url, client = bare
    settings = Settings(nats_url=url)
    with pytest.raises(TopologyMissing) as refused:
        async with open_runtime("edge", settings, needs_postgres=False):
            pytest.fail("started without its streams")
    assert refused.value.missing == EVERYTHING
    assert "stream CCN_JOBS (ccn.job.>)" in str(refused.value)
    assert "ccn topology apply" in str(refused.value)
    # the check creates nothing
    assert await missing_topology(client.jetstream()) == EVERYTHING


async def test_apply_creates_what_is_missing_once_and_the_check_then_passes(bare: tuple[str, NATS]) -> None:
    url, client = bare
    js = client.jetstream()
    await js.add_stream(name="CCN_NODES", subjects=["ccn.node.>"])  # one there already
    settings = Settings(nats_url=url)
    first, second = await asyncio.gather(apply_topology(js, settings), apply_topology(js, settings))
    created = sorted(first + second)
    expected = [s.name for s in STREAMS if s.name != "CCN_NODES"] + [kv.stream for kv in KEY_VALUES]
    assert created == sorted([*expected, f"OBJ_{BODY_BUCKET}"])
    assert await missing_topology(js) == []
    assert (await js.stream_info("CCN_NODES")).config.deny_delete  # the existing one was updated
    async with open_runtime("edge", settings, needs_postgres=False) as runtime:
        assert runtime.nc.is_connected


async def test_a_held_topology_lock_makes_another_apply_wait_then_give_up_naming_the_holder(
    bare: tuple[str, NATS],
) -> None:
    url, client = bare
    js = client.jetstream()
    async with held_lock(js, "topology", wait_s=1):
        with pytest.raises(LockTimeout, match=r"lock 'topology' still held by .+:\d+ after 0s"):
            await apply_topology(js, Settings(nats_url=url), wait_s=0.3)
        assert await missing_topology(js) == EVERYTHING  # nothing applied while refused
    # released: the next one goes through
    assert await apply_topology(js, Settings(nats_url=url), wait_s=0.3)


def test_ccn_topology_check_then_apply(
    bare: tuple[str, NATS], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = bare
    monkeypatch.setenv("CCN_NATS_URL", url)
    assert ccn_main(["topology", "check"]) == 1
    assert "stream CCN_DEADLETTER (ccn.deadletter.>)" in capsys.readouterr().err
    assert ccn_main(["topology", "apply"]) == 0
    created = (
        "created: CCN_NODES, CCN_JOBS, CCN_POLICY, CCN_FETCH, CCN_CRAWL, CCN_RESULTS, CCN_CONSENSUS, "
        "CCN_DATASETS, CCN_TELEMETRY, CCN_DEADLETTER"
    )
    assert created in capsys.readouterr().out
    assert ccn_main(["topology", "check"]) == 0
    assert "topology complete" in capsys.readouterr().out


def test_ccn_serve_runs_the_service_which_refuses_a_bare_server_in_one_log_line(bare: tuple[str, NATS]) -> None:
    url, _ = bare
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CCN_")},
        "CCN_NATS_URL": url,
        "CCN_HEALTH_HOST": "0.0.0.0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "ccn_cli.main", "serve", "edge"], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 3, done.stderr.decode()
    lines = [json.loads(line) for line in done.stdout.decode().splitlines() if line.startswith("{")]
    refusal = next(line for line in lines if line["event"] == "topology missing; not starting")
    assert refusal["missing"] == EVERYTHING
    assert refusal["service"] == "edge"
    assert refusal["fix"] == "ccn topology apply"
