"""Builders for the Endpoints and EndpointSlice tests, and pods brought up by hand: created,
bound to a node (POST pods/<name>/binding) and given an IP and readiness (PATCH pods/status),
so each test decides exactly which pod is ready when."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from api import errors
from client.events import rfc3339
from client.rest import Client


def service(name: str, selector: dict[str, str] | None, ports: list[dict] | None = None, **spec: Any) -> dict:
    body: dict[str, Any] = {"ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                                      "targetPort": 8080}]}
    if selector is not None:
        body["selector"] = selector
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def pod(name: str, labels: dict[str, str], ports: list[dict] | None = None, **spec: Any) -> dict:
    container: dict[str, Any] = {"name": "app", "image": "busybox:1"}
    if ports:
        container["ports"] = ports
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 30, **spec}}


def node(name: str, zone: str | None = None) -> dict:
    labels = {"kubernetes.io/hostname": name}
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


async def ensure_node(client: Client, name: str, zone: str | None = None) -> None:
    with contextlib.suppress(errors.AlreadyExists):
        await client.create("nodes", node(name, zone))


async def set_status(client: Client, name: str, *, ip: str, ready: bool) -> dict:
    now = rfc3339(time.time())
    flag = "True" if ready else "False"
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
              "conditions": [{"type": "Ready", "status": flag, "lastTransitionTime": now},
                             {"type": "ContainersReady", "status": flag, "lastTransitionTime": now}]}
    return await client.patch("pods", name, {"status": status}, subresource="status")


async def run_pod(client: Client, body: dict, *, ip: str, ready: bool = True, node_name: str | None = "node-a"
                  ) -> dict:
    """Create a pod, bind it (when ``node_name``) and report it Running with ``ip``."""
    created = await client.create("pods", body)
    if node_name:
        await client.bind(client.namespace, created["metadata"]["name"], node_name)
    return await set_status(client, created["metadata"]["name"], ip=ip, ready=ready)


async def run_many(client: Client, bodies_ips: list[tuple[dict, str]], *, ready: bool = True,
                   concurrency: int = 20) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(body: dict, ip: str) -> None:
        async with sem:
            await run_pod(client, body, ip=ip, ready=ready, node_name=None)

    await asyncio.gather(*(one(b, ip) for b, ip in bodies_ips))


async def eventually(check, timeout: float = 30.0, what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")
