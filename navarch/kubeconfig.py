"""The kubeconfig the launcher writes for a local cluster, readable by kubectl and our client."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_local_kubeconfig(path: Path, server: str, cluster: str = "navarch") -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": "admin", "user": {}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": "admin",
                                                  "namespace": "default"}}],
        "current-context": cluster,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)
    return path
