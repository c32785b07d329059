"""Small object builders for API tests."""

from __future__ import annotations


def make_pod(name: str = "web", *, labels: dict | None = None, image: str = "busybox:1.36",
             node: str | None = None, namespace: str | None = None, **spec) -> dict:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": image, "ports": [{"containerPort": 80}]}], **spec},
    }
    if namespace:
        pod["metadata"]["namespace"] = namespace
    if node:
        pod["spec"]["nodeName"] = node
    return pod


def make_deployment(name: str = "web", replicas: int = 2, image: str = "nginx:1.25") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def make_namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
