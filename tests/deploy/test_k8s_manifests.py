"""Every overlay renders, every object validates against the Kubernetes schemas, and the rendered
objects hold to the project's policies: probes, limits, a non-root read-only container, secrets
only by reference, a Deployment for every service `ccn up` starts, traffic only where it must go."""

from __future__ import annotations

import re
from collections import Counter

import kubernetes_validate
import msgspec
import pytest

from ccn_cli.main import build_parser
from ccn_cli.stack.settings_env import env_var
from ccn_cli.stack.supervisor import SERVICES
from ccn_core.settings import Settings, settings_from_env
from tests.deploy.rendered import KUBERNETES_VERSION, OVERLAYS, Obj, of_kind, pod_templates, render

# Custom resources, whose schemas kubernetes-validate does not have: checked by the tests below
CUSTOM_KINDS = {("postgresql.cnpg.io/v1", "Cluster")}
SECRETISH = re.compile(r"SECRET|TOKEN|SALT|PASSWORD|DATABASE_URL", re.IGNORECASE)
EXPECTED_KINDS = Counter(
    {
        "Namespace": 1,
        "ConfigMap": 2,
        "Service": 3,
        "Deployment": 6,
        "PodDisruptionBudget": 5,
        "HorizontalPodAutoscaler": 2,
        "Job": 2,
        "Ingress": 1,
        "NetworkPolicy": 7,
        "Cluster": 1,
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
def test_the_edge_and_the_scheduler_scale_by_hpa_and_nothing_else_fights_it(overlay: str) -> None:
    objects = render(overlay)
    deployments = of_kind(objects, "Deployment")
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    assert set(hpas) == {"edge", "scheduler"}
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
    # from Community Compute; nothing else
    admitted = {}
    for policy in policies.values():
        selector = policy["spec"]["podSelector"]["matchLabels"]
        if "Ingress" in policy["spec"]["policyTypes"] and policy["spec"].get("ingress"):
            admitted[selector.get("app.kubernetes.io/name")] = policy["spec"]["ingress"]
    assert set(admitted) == {"edge", "otel-collector", "nats", None}  # None: the PostgreSQL pods
    (edge_rule,) = admitted["edge"]
    assert edge_rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert edge_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_reach_only_dns_nats_postgres_and_the_collector(overlay: str) -> None:
    reachable = set()
    for policy in _policies(render(overlay)).values():
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
def test_the_ingress_sends_http_and_websockets_to_the_edge_only(overlay: str) -> None:
    (ingress,) = of_kind(render(overlay), "Ingress").values()
    backends = {
        path["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]
    }
    assert backends == {"edge"}
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
