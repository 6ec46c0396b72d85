"""The nats.conf the official NATS Helm chart (chart `nats` 1.3.x) renders from our values, for the
keys deploy/nats/values*.yaml set: its templates `config/config.yaml`, `config/cluster.yaml` and
`config/jetstream.yaml`, followed line by line, including the `<< 50Gi >>` raw values (written unquoted) and the
`$SERVER_NAME` variable the pod's environment supplies. `helm template` needs the chart, which
is not in the repository; an operator checks the chart's own output the same way (deploy/README.md)."""

from __future__ import annotations

import json
from typing import Any

Values = dict[str, Any]


def _merge(base: Values, extra: Values) -> Values:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _raw(value: str) -> str:
    """The chart's `<< value >>`: a size or duration NATS parses itself, kept unquoted."""
    return f"<< {value} >>"


def chart_config(values: Values) -> Values:
    config = values.get("config", {})
    name = values.get("fullnameOverride", "nats")
    rendered: Values = {
        "server_name": "$SERVER_NAME",
        "lame_duck_duration": "30s",
        "lame_duck_grace_period": "10s",
        "pid_file": "/var/run/nats/nats.pid",
        "port": config.get("nats", {}).get("port", 4222),
    }
    if config.get("monitor", {}).get("enabled", True):
        rendered["http_port"] = config.get("monitor", {}).get("port", 8222)
    cluster = config.get("cluster", {})
    if cluster.get("enabled"):
        port = cluster.get("port", 6222)
        replicas = cluster.get("replicas", 3)
        rendered["cluster"] = _merge(
            {
                "name": cluster.get("name", name),
                "no_advertise": True,
                "port": port,
                "routes": [f"nats://{name}-{i}.{name}-headless:{port}" for i in range(replicas)],
            },
            cluster.get("merge", {}),
        )
    jetstream = config.get("jetstream", {})
    if jetstream.get("enabled"):
        store = jetstream.get("fileStore", {})
        memory = jetstream.get("memoryStore", {})
        block: Values = {"max_memory_store": _raw(memory["maxSize"]) if memory.get("enabled") else 0}
        if store.get("enabled", True):
            block["store_dir"] = store.get("dir", "/data")
            if store.get("maxSize"):
                block["max_file_store"] = _raw(store["maxSize"])
            elif store.get("pvc", {}).get("enabled", True):
                block["max_file_store"] = _raw(store.get("pvc", {}).get("size", "10Gi"))
        rendered["jetstream"] = _merge(block, jetstream.get("merge", {}))
    return _merge(rendered, config.get("merge", {}))


def render_conf(config: Values) -> str:
    """JSON, as the chart writes it (its toPrettyRawJson): a `"<< raw >>"` string loses its quotes
    and markers, so NATS reads `50Gi` as a size; `$SERVER_NAME` is unquoted, a variable."""
    text = json.dumps(config, indent=2, sort_keys=True)
    text = text.replace('"$SERVER_NAME"', "$SERVER_NAME")
    return text.replace('"<< ', "").replace(' >>"', "") + "\n"
