"""Every overlay renders, every object validates against the Kubernetes schemas, and the rendered
objects hold to the project's policies: probes, limits, a non-root read-only container, secrets
only by reference, a Deployment for every service `ccn up` starts, traffic only where it must go."""

from __future__ import annotations

import json
import re
from collections import Counter

import kubernetes_validate
import msgspec
import pytest
from prometheus_client import REGISTRY

from ccn_cli.main import build_parser
from ccn_cli.stack.settings_env import env_var
from ccn_cli.stack.supervisor import SERVICES
from ccn_core import metrics  # noqa: F401  (registers the metrics the dashboard is checked against)
from ccn_core.commands import CommandClient
from ccn_core.settings import Settings, settings_from_env
from ccn_edge.app import create_app
from ccn_edge.connection_limits import SocketLimits
from ccn_edge.context import EdgeContext
from tests.deploy.rendered import KUBERNETES_VERSION, OVERLAYS, Obj, of_kind, pod_templates, render

# Custom resources, whose schemas kubernetes-validate does not have: checked by the tests below
CUSTOM_KINDS = {("postgresql.cnpg.io/v1", "Cluster"), ("monitoring.coreos.com/v1", "ServiceMonitor")}
SECRETISH = re.compile(r"SECRET|TOKEN|SALT|PASSWORD|DATABASE_URL", re.IGNORECASE)
EXPECTED_KINDS = Counter(
    {
        "Namespace": 1,
        "ConfigMap": 3,
        "Service": 10,
        "Deployment": 10,
        "PodDisruptionBudget": 9,
        "HorizontalPodAutoscaler": 1,
        "Job": 2,
        "Ingress": 1,
        "NetworkPolicy": 9,
        "Cluster": 1,
        "ServiceMonitor": 1,
    }
)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_renders_the_expected_objects(overlay: str) -> None:
    assert Counter(obj["kind"] for obj in render(overlay)) == EXPECTED_KINDS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    validated = 0
    for obj in render(overlay):
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        validated += 1
    assert validated == sum(EXPECTED_KINDS.values()) - len(CUSTOM_KINDS)


def test_a_broken_object_is_refused_by_the_validation() -> None:
    deployment = dict(of_kind(render("prod"), "Deployment")["edge"])
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**deployment, "spec": {"replicas": "two"}}, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_limits_and_a_locked_down_security_context(overlay: str) -> None:
    for where, pod in pod_templates(render(overlay)).items():
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        for container in pod["containers"]:
            name = f"{where}/{container['name']}"
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys(), name
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["privileged"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in context["capabilities"], name
            # dev alone lifts it, on the services, so Tilt's live_update can sync their sources
            lifted = overlay == "dev" and container["image"] == "ccn" and where.startswith("Deployment/")
            assert context["readOnlyRootFilesystem"] is not lifted, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_container_is_probed_for_liveness_and_readiness(overlay: str) -> None:
    for name, deployment in of_kind(render(overlay), "Deployment").items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "livenessProbe" in container and "readinessProbe" in container, name
            if container["image"].rsplit("/", 1)[-1].startswith("ccn"):
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_ccn_up_starts_has_a_deployment_serving_it_on_its_port(overlay: str) -> None:
    deployments = of_kind(render(overlay), "Deployment")
    defaults = Settings()
    for spec in SERVICES:
        assert spec.name in deployments, f"{spec.name} has no Deployment"
        pod = deployments[spec.name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", spec.name]
        assert container["ports"][0]["containerPort"] == spec.port(defaults)
        assert spec.name in of_kind(render(overlay), "PodDisruptionBudget")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ccn_command_in_a_pod_is_one_the_cli_accepts(overlay: str) -> None:
    parser = build_parser()
    seen = []
    for pod in pod_templates(render(overlay)).values():
        for container in pod["containers"]:
            if container["image"].rsplit("/", 1)[-1].split(":")[0] == "ccn":
                parser.parse_args(container["args"])
                seen.append(container["args"][0])
    assert Counter(seen) == Counter({"serve": len(SERVICES), "migrate": 1, "topology": 1})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_written_in_the_manifests_only_referenced(overlay: str) -> None:
    objects = render(overlay)
    assert not of_kind(objects, "Secret")
    for name, config in of_kind(objects, "ConfigMap").items():
        for key, value in config.get("data", {}).items():
            assert not SECRETISH.search(key), f"ConfigMap {name} holds {key}"
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"ConfigMap {name}: credentials in {key}"
    for where, pod in pod_templates(objects).items():
        for container in pod["containers"]:
            for env in container.get("env", []):
                if SECRETISH.search(env["name"]):
                    assert "value" not in env, f"{where}: {env['name']} is a literal"
                    assert env["valueFrom"]["secretKeyRef"]["name"] in ("ccn-secrets", "ccn-postgres-app"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_is_settings_the_services_read(overlay: str) -> None:
    data = of_kind(render(overlay), "ConfigMap")["ccn-config"]["data"]
    known = {env_var(field.name) for field in msgspec.structs.fields(Settings)}
    assert {key for key in data if key.startswith("CCN_")} <= known
    settings = settings_from_env(data)
    assert settings.stream_replicas == (3 if overlay == "prod" else 1)
    assert settings.nats_url == "nats://nats:4222"
    assert settings.otel_exporter == "otlp"
    collector = of_kind(render(overlay), "Service")["otel-collector"]
    http_port = next(port["port"] for port in collector["spec"]["ports"] if port["name"] == "otlp-http")
    assert settings.otel_endpoint == f"http://otel-collector:{http_port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_use_the_cloudnativepg_cluster_and_its_app_secret(overlay: str) -> None:
    objects = render(overlay)
    (cluster,) = of_kind(objects, "Cluster").values()
    assert cluster["spec"]["instances"] == (3 if overlay == "prod" else 1)
    assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "ccn", "owner": "ccn"}
    app_secret = f"{cluster['metadata']['name']}-app"
    users = set()
    for where, pod in pod_templates(objects).items():
        for container in pod["containers"]:
            for env in container.get("env", []):
                if env["name"] == "CCN_DATABASE_URL":
                    assert env["valueFrom"]["secretKeyRef"] == {"name": app_secret, "key": "uri"}, where
                    users.add(where)
    assert users == {
        "Deployment/registry",
        "Deployment/scheduler",
        "Deployment/scheduler-projector",
        "Deployment/analytics",
        "Job/ccn-migrate",
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_edge_scales_by_hpa_and_the_scheduler_keeps_a_standby(overlay: str) -> None:
    objects = render(overlay)
    deployments = of_kind(objects, "Deployment")
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    # one scheduler replica owns the claims (ADR 0016): the others only stand by, so CPU says
    # nothing about how many it needs; at least one standby, so a lost pod costs one TTL
    assert set(hpas) == {"edge"}
    assert deployments["scheduler"]["spec"]["replicas"] >= (3 if overlay == "prod" else 2)
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in deployments[name]["spec"]
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    if overlay == "prod":
        assert all(hpa["spec"]["minReplicas"] >= 3 for hpa in hpas.values())


def _policies(objects: tuple[Obj, ...]) -> dict[str, Obj]:
    return of_kind(objects, "NetworkPolicy")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_let_nodes_reach_only_the_edge(overlay: str) -> None:
    policies = _policies(render(overlay))
    deny = policies["ccn-default-deny"]["spec"]
    assert deny["podSelector"] == {"matchLabels": {"app.kubernetes.io/part-of": "community-compute"}}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny
    # ingress to Community Compute's own pods: the edge from the ingress controller, the collector
    # from Community Compute, the services' metrics from Prometheus; nothing else
    admitted = {
        name: policy["spec"]["ingress"]
        for name, policy in policies.items()
        if "Ingress" in policy["spec"]["policyTypes"] and policy["spec"].get("ingress")
    }
    assert set(admitted) == {
        "edge-from-ingress",
        "otel-collector-from-ccn",
        "ccn-metrics-from-prometheus",
        "nats-clients-and-routes",
        "postgres-clients-and-replication",
    }
    (scrape,) = admitted["ccn-metrics-from-prometheus"]
    assert scrape["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    service_ports = {spec.port(Settings()) for spec in SERVICES}
    assert {port["port"] for port in scrape["ports"]} == service_ports
    (edge_rule,) = admitted["edge-from-ingress"]
    assert edge_rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert edge_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_reach_only_dns_nats_postgres_and_the_collector(overlay: str) -> None:
    reachable = set()
    for name, policy in _policies(render(overlay)).items():
        if name == "fetch-proxy-to-the-internet":
            continue  # the one way out (the test below)
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), "an egress rule without `to` lets a pod reach anywhere"
            for peer in rule["to"]:
                assert "ipBlock" not in peer
                labels = peer["podSelector"]["matchLabels"]
                ports = tuple(sorted(port["port"] for port in rule["ports"]))
                reachable.add((labels.get("app.kubernetes.io/name") or labels.get("k8s-app") or str(labels), ports))
    assert reachable == {
        ("kube-dns", (53, 53)),
        ("nats", (4222,)),
        ("otel-collector", (4317, 4318)),
        ("{'cnpg.io/cluster': 'ccn-postgres'}", (5432,)),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_fetch_proxy_reaches_the_internet_and_never_private_ranges(overlay: str) -> None:
    objects = render(overlay)
    policy = _policies(objects)["fetch-proxy-to-the-internet"]["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "fetch-proxy"
    (rule,) = policy["egress"]
    assert sorted(port["port"] for port in rule["ports"]) == [80, 443]
    blocks = {peer["ipBlock"]["cidr"]: set(peer["ipBlock"]["except"]) for peer in rule["to"]}
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "100.64.0.0/10"} <= (
        blocks["0.0.0.0/0"]
    )
    assert {"fc00::/7", "fe80::/10", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "2002::/16"} <= blocks["::/0"]
    internet_pods = {
        obj["metadata"]["name"]
        for obj in objects
        if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
        and "ccn.community-compute.org/internet-egress" in obj["spec"]["template"]["metadata"].get("labels", {})
    }
    assert internet_pods == {"fetch-proxy"}
    fetch_proxy = of_kind(objects, "Deployment")["fetch-proxy"]
    labels = fetch_proxy["spec"]["template"]["metadata"]["labels"]
    assert labels["ccn.community-compute.org/internet-egress"] == "true"
    assert "ccn.community-compute.org/postgres-client" not in labels


def edge_public_prefixes() -> set[str]:
    """The first segment of every route of the edge's app, probes and metrics aside."""
    app = create_app(
        context=EdgeContext(CommandClient(None, timeout=1), "salt"),  # type: ignore[arg-type]
        ready=lambda: None,  # type: ignore[arg-type,return-value]
        max_body_bytes=1024,
        max_frame_bytes=1024,
        admin_token="t",
        socket_limits=SocketLimits.from_settings(Settings()),
        body_timeout_s=1,
    )
    prefixes = {"/" + route.path.split("/")[1] for route in app.routes}
    return prefixes - {"/healthz", "/readyz", "/metrics"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_sends_the_edges_public_routes_and_nothing_else_to_the_edge(overlay: str) -> None:
    (ingress,) = of_kind(render(overlay), "Ingress").values()
    paths = [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    assert {path["backend"]["service"]["name"] for path in paths} == {"edge"}
    assert (
        {path["path"] for path in paths}
        == edge_public_prefixes()
        == {"/compute", "/ws", "/jobs", "/admin", "/datasets", "/schema", "/receipts"}
    )
    assert all(path["pathType"] == "Prefix" for path in paths)
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_is_scraped_through_a_service_on_its_http_port(overlay: str) -> None:
    objects = render(overlay)
    (monitor,) = of_kind(objects, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    scraped = {
        name: service
        for name, service in of_kind(objects, "Service").items()
        if selector.items() <= service["metadata"]["labels"].items()
    }
    assert set(scraped) == {spec.name for spec in SERVICES}
    for service in scraped.values():
        (port,) = [port for port in service["spec"]["ports"] if port["name"] == endpoint["port"]]
        assert port["targetPort"] == "http"


def test_the_dashboard_queries_only_metrics_the_services_export() -> None:
    (dashboards,) = [
        config
        for config in of_kind(render("prod"), "ConfigMap").values()
        if config["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    dashboard = json.loads(dashboards["data"]["ccn-lifecycle.json"])
    exported = {metric.name for metric in REGISTRY.collect() if metric.name.startswith("ccn_")}
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(ccn_[a-z_]+?)(?:_bucket|_count|_sum|_total)?\b", target["expr"])
    }
    assert used and used <= exported, used - exported
