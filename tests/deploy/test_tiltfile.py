"""The Tiltfile, evaluated with Tilt's builtins stubbed: in cluster mode an image with live_update
over every package, the dev overlay, the NATS chart, port-forwards and dependencies that bring
NATS and PostgreSQL first; in local mode the embedded stack and one process per service with a
readiness probe. Resources are checked against the services `ccn up` starts and the dev overlay."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from ccn_cli.main import build_parser
from ccn_cli.stack.supervisor import SERVICES
from ccn_core.settings import Settings
from tests.deploy.rendered import ROOT, of_kind, render
from tests.deploy.tiltfile import TiltRun, evaluate

SITE_PACKAGES = "/opt/ccn/venv/lib/python3.11/site-packages/"


@pytest.fixture(scope="module")
def cluster() -> TiltRun:
    return evaluate({})


@pytest.fixture(scope="module")
def local() -> TiltRun:
    return evaluate({"local": True})


def project_packages() -> set[Path]:
    found = {path.parent for path in ROOT.glob("*/*/ccn_*/__init__.py")} | {ROOT / "proto" / "ccn_proto"}
    return {path for path in found if ".venv" not in path.parts}


def test_each_mode_loads_its_own_file_and_only_cluster_mode_needs_extensions(cluster: TiltRun, local: TiltRun) -> None:
    assert cluster.loaded[:2] == ["Tiltfile", "tilt/cluster.Tiltfile"]
    assert {"ext://restart_process", "ext://helm_resource"} <= set(cluster.loaded)
    assert local.loaded == ["Tiltfile", "tilt/local.Tiltfile", "tilt/common.Tiltfile"]
    assert not local.of("docker_build_with_restart") and not local.of("k8s_yaml")


def test_the_image_is_the_dev_target_with_every_package_synced_into_site_packages(cluster: TiltRun) -> None:
    (build,) = cluster.of("docker_build_with_restart")
    assert build.args[0] == "ccn"
    assert Path(build.args[1]) == ROOT
    assert build.kwargs["target"] == "dev"
    assert build.kwargs["entrypoint"] == ["ccn"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"touch {build.kwargs['restart_file']}" in dockerfile
    steps = build.kwargs["live_update"]
    assert steps[0]["builtin"] == "fall_back_on"  # Tilt requires it first
    synced = {Path(step["args"][0]): step["args"][1] for step in steps if step["builtin"] == "sync"}
    assert set(synced) == project_packages()
    for source, target in synced.items():
        assert target == SITE_PACKAGES + source.name


def test_the_dev_overlay_and_the_nats_chart_are_deployed(cluster: TiltRun) -> None:
    (kustomize,) = cluster.of("kustomize")
    assert kustomize.args == (str(ROOT / "deploy/k8s/overlays/dev"),)
    assert cluster.of("k8s_yaml")[0].args[0]["builtin"] == "kustomize"
    nats = cluster.resource("nats", "helm_resource")
    assert nats.args[1] == "nats-charts/nats"
    assert f"--values={ROOT / 'deploy/nats/values-dev.yaml'}" in nats.kwargs["flags"]
    assert nats.kwargs["namespace"] == of_kind(render("dev"), "Namespace").popitem()[0]


def test_every_workload_of_the_overlay_is_a_resource_with_nats_and_postgres_first(cluster: TiltRun) -> None:
    objects = render("dev")
    workloads = set(of_kind(objects, "Deployment")) | set(of_kind(objects, "Job"))
    resources = {call.args[0] for call in cluster.of("k8s_resource") if call.args}
    assert resources == workloads
    declared = resources | {"postgres"} | {c.args[0] for c in cluster.of("helm_resource") + cluster.of("helm_repo")}
    declared |= {call.args[0] for call in cluster.of("local_resource")}
    for call in cluster.of("k8s_resource") + cluster.of("helm_resource"):
        assert set(call.kwargs.get("resource_deps", [])) <= declared
    postgres = cluster.resource("postgres", "k8s_resource")
    assert postgres.kwargs["objects"] == ["ccn-postgres:cluster"]
    assert cluster.resource("ccn-migrate", "k8s_resource").kwargs["resource_deps"] == ["postgres"]
    assert cluster.resource("ccn-topology", "k8s_resource").kwargs["resource_deps"] == ["nats"]
    defaults = Settings()
    for spec in SERVICES:
        resource = cluster.resource(spec.name, "k8s_resource")
        assert {"ccn-migrate", "ccn-topology"} <= set(resource.kwargs["resource_deps"])
        port = spec.port(defaults)
        assert resource.kwargs["port_forwards"] == [f"{port}:{port}"]


def test_local_mode_runs_the_embedded_servers_then_each_service_with_a_readiness_probe(local: TiltRun) -> None:
    parser = build_parser()
    servers = local.resource("servers", "local_resource")
    argv = shlex.split(servers.kwargs["cmd"])
    assert argv[0] == str(ROOT / ".venv/bin/ccn")
    assert parser.parse_args(argv[1:]).no_services is True
    defaults = Settings()
    services = {call.args[0] for call in local.of("local_resource") if "serve_cmd" in call.kwargs}
    assert services == {spec.name for spec in SERVICES}
    for spec in SERVICES:
        resource = local.resource(spec.name, "local_resource")
        argv = shlex.split(resource.kwargs["serve_cmd"])
        assert argv[1:] == ["serve", spec.name]
        parser.parse_args(argv[1:])
        assert resource.kwargs["resource_deps"] == ["servers"]
        probe = resource.kwargs["readiness_probe"]["kwargs"]
        assert probe["http_get"]["kwargs"] == {"port": spec.port(defaults), "path": "/readyz"}
        # a change to the service's own package restarts it
        module = spec.module.split(".")[0]
        assert any(dep.endswith(f"/{module}") for dep in resource.kwargs["deps"])
