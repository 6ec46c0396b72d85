"""Tilt's local mode, by hand: `ccn up --no-services` starts NATS and PostgreSQL with migrations
and the topology applied, `ccn serve NAME` runs one service in the foreground against them with
the stack's secrets, and SIGTERM stops it promptly and cleanly (its stop is the drain: readiness
fails, parts finish, NATS drains)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.integration.test_stack import CCN, ccn, stack_env


def readyz(port: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_servers_alone_then_a_service_served_in_the_foreground_stops_on_sigterm(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "home")
    up = ccn(env, "up", "--no-services")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert (
            "streams created: CCN_NODES, CCN_JOBS, CCN_POLICY, CCN_FETCH, CCN_CRAWL, CCN_RESULTS, CCN_CONSENSUS, "
            "CCN_DATASETS, CCN_TELEMETRY, CCN_DEADLETTER" in up.stdout
        )
        assert "registry" not in up.stdout
        port = env["CCN_REGISTRY_HEALTH_PORT"]
        service = subprocess.Popen(
            [CCN, "serve", "registry"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while readyz(port) != 200:
                assert service.poll() is None, service.communicate()[0]
                assert time.monotonic() < deadline, "registry not ready in 60 s"
                time.sleep(0.1)
            service.send_signal(signal.SIGTERM)
            output, _ = service.communicate(timeout=30)
        finally:
            if service.poll() is None:
                service.kill()
        assert service.returncode == 0, output
        events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
        started, stopping = (
            events.index("service started"),
            events.index("stopping: no new work; finishing what is in hand"),
        )
        assert started < stopping
        assert events[-1] == "service stopped"
        assert "part did not stop in time; cancelling it" not in events
    finally:
        ccn(env, "down")
