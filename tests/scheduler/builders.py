"""Nodes and pods as the API takes them, and waits on what the scheduler writes back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from client.rest import Client


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
         taints: list[dict] | None = None, unschedulable: bool = False, extra: dict | None = None) -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"capacity": dict(alloc), "allocatable": dict(alloc),
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }


def pod(name: str, *, cpu: str | None = None, memory: str | None = None, labels: dict | None = None,
        node_selector: dict | None = None, affinity: dict | None = None, tolerations: list[dict] | None = None,
        spread: list[dict] | None = None, priority: int | None = None, priority_class: str | None = None,
        scheduler_name: str | None = None, host_port: int | None = None) -> dict:
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    c: dict[str, Any] = {"name": "c", "image": "busybox", "resources": {"requests": req} if req else {}}
    if host_port:
        c["ports"] = [{"containerPort": host_port, "hostPort": host_port}]
    spec: dict[str, Any] = {"containers": [c], "terminationGracePeriodSeconds": 30}
    for key, val in (("nodeSelector", node_selector), ("affinity", affinity), ("tolerations", tolerations),
                     ("topologySpreadConstraints", spread), ("priority", priority),
                     ("priorityClassName", priority_class), ("schedulerName", scheduler_name)):
        if val is not None:
            spec[key] = val
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": dict(labels or {})},
            "spec": spec}


async def create_nodes(client: Client, *nodes: dict) -> None:
    for n in nodes:
        await client.create("nodes", n)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def bound_node(client: Client, name: str, namespace: str = "default", timeout: float = 20.0) -> str:
    async def check() -> str | None:
        p = await client.get("pods", name, namespace)
        return (p.get("spec") or {}).get("nodeName")
    return await eventually(check, timeout, f"pod {namespace}/{name} to be bound")


async def scheduled_condition(client: Client, name: str, namespace: str = "default",
                              timeout: float = 20.0) -> dict:
    """The pod's PodScheduled condition once it is False."""
    async def check() -> dict | None:
        p = await client.get("pods", name, namespace)
        for c in (p.get("status") or {}).get("conditions") or ():
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                return c
        return None
    return await eventually(check, timeout, f"pod {namespace}/{name} to be marked unschedulable")


async def events_for(client: Client, name: str, reason: str, namespace: str = "default") -> list[dict]:
    evs = (await client.list("events", namespace))["items"]
    return [e for e in evs if e.get("reason") == reason and (e.get("involvedObject") or {}).get("name") == name]
