"""Small object builders for the navctl tests."""

from __future__ import annotations

from typing import Any


def deployment(name: str, ns: str, *, image: str = "nginx:1.25", replicas: int = 2,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image, "ports": [{"containerPort": 80}]}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


def configmap(name: str, ns: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, **meta},
            "data": dict(data or {"k": "v"})}


def pod(name: str, ns: str, *, image: str = "busybox:1.36", labels: dict[str, str] | None = None,
        node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 8080}]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {"app": name})}, "spec": spec}


def service(name: str, ns: str, *, port: int = 80, selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": dict(selector or {"app": name}),
                     "ports": [{"name": "http", "port": port, "targetPort": port}]}}


def node(name: str, *, cpu: str = "4", memory: str = "8Gi") -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"capacity": dict(alloc), "allocatable": dict(alloc),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.9"}]}}


def event(ns: str, obj: dict[str, Any], reason: str, message: str, *, type_: str = "Normal") -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{reason.lower()}", "namespace": ns},
            "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj["kind"],
                               "name": meta["name"], "namespace": meta.get("namespace", ""),
                               "uid": meta.get("uid", "")},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "firstTimestamp": meta.get("creationTimestamp"), "lastTimestamp": meta.get("creationTimestamp"),
            "source": {"component": "test"}}
