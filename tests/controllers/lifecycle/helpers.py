"""Builders and a controller runner for the lifecycle controller tests.

``Running`` starts chosen controllers in this process against a real API server, with informers
on the real clock and the controllers on an injectable one (a ``FakeClock`` drives node
monitoring and eviction timers in virtual time). ``eventually`` polls in real time for what the
API server shows; ``settled`` waits until a controller's queue has nothing queued or in hand.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from api import errors
from client.clock import REAL, Clock
from client.events import rfc3339
from client.informer import SharedInformerFactory
from client.leaderelection import micro_time
from client.rest import Client
from controller_manager.base import Controller, ControllerConfig, ControllerContext
from controller_manager.manager import Recorders


async def eventually(check: Callable[[], Awaitable[Any] | Any], timeout: float = 30.0,
                     what: str = "condition") -> Any:
    """Poll ``check`` (a plain or async callable) until it returns something truthy; fail naming
    ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


async def gone(client: Client, resource: str, name: str, namespace: str | None = None) -> bool:
    try:
        await client.get(resource, name, namespace)
    except errors.NotFound:
        return True
    return False


async def settled(*controllers: Controller, rounds: int = 3) -> None:
    """Wait (real time) until each controller's queue is empty with no key in hand, ``rounds``
    times in a row, so that effects of the last clock step have been written."""
    quiet = 0
    for _ in range(600):
        busy = any(len(c.queue) or c.queue._processing for c in controllers)
        quiet = 0 if busy else quiet + 1
        if quiet >= rounds:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("controllers never went quiet")


class Running:
    """Controllers of the given classes sharing one informer factory, run until ``stop``."""

    def __init__(self, client: Client, classes: list[type[Controller]], *, clock: Clock = REAL,
                 config: ControllerConfig | None = None):
        self.client = client
        self.clock = clock
        self.informers = SharedInformerFactory(client)
        self.recorders = Recorders(client)
        self.ctx = ControllerContext(client=client, informers=self.informers, recorder=self.recorders,
                                     config=config or ControllerConfig(), clock=clock)
        self.controllers = [cls(self.ctx) for cls in classes]
        self._tasks: list[asyncio.Task] = []

    def __getitem__(self, name: str) -> Any:
        return next(c for c in self.controllers if c.name == name)

    async def start(self) -> Running:
        self.informers.start()
        self._tasks = [asyncio.create_task(c.run(), name=f"test-controller:{c.name}") for c in self.controllers]
        await self.informers.wait_for_cache_sync()
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in self.controllers:
            c.queue.shut_down()
        await self.informers.stop()
        await self.recorders.stop()

    async def __aenter__(self) -> Running:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# --- builders ------------------------------------------------------------------------------

def owner_ref(owner: dict, *, controller: bool = True, block: bool = True) -> dict:
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"], "uid": md["uid"],
            "controller": controller, "blockOwnerDeletion": block}


def replicaset(name: str, labels: dict[str, str] | None = None) -> dict:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 0, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"containers": [{"name": "app", "image": "busybox:1"}]}}}}


def pod(name: str, *, owners: list[dict] | None = None, node: str | None = None,
        tolerations: list[dict] | None = None, finalizers: list[str] | None = None,
        labels: dict[str, str] | None = None) -> dict:
    md: dict[str, Any] = {"name": name, "labels": labels or {"app": "x"}}
    if owners:
        md["ownerReferences"] = owners
    if finalizers:
        md["finalizers"] = finalizers
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox:1"}]}
    if node:
        spec["nodeName"] = node
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def configmap(name: str, *, owners: list[dict] | None = None, finalizers: list[str] | None = None) -> dict:
    md: dict[str, Any] = {"name": name}
    if owners:
        md["ownerReferences"] = owners
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"k": "v"}}


def ready_conditions(now: float, status: str = "True") -> list[dict]:
    stamp = rfc3339(now)
    out = [{"type": t, "status": "False", "reason": r, "message": "fine", "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp}
           for t, r in (("MemoryPressure", "KubeletHasSufficientMemory"), ("DiskPressure", "KubeletHasNoDiskPressure"),
                        ("PIDPressure", "KubeletHasSufficientPID"))]
    out.append({"type": "Ready", "status": status, "reason": "KubeletReady" if status == "True" else "KubeletNotReady",
                "message": "kubelet is posting ready status" if status == "True" else "not ready",
                "lastHeartbeatTime": stamp, "lastTransitionTime": stamp})
    return out


def node(name: str, now: float, *, ready: str = "True", taints: list[dict] | None = None,
         labels: dict[str, str] | None = None) -> dict:
    alloc = {"cpu": "8", "memory": "16Gi", "pods": "110"}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec,
            "status": {"capacity": dict(alloc), "allocatable": dict(alloc), "conditions": ready_conditions(now, ready)}}


def lease(name: str, now: float) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_time(now)}}


async def renew(client: Client, name: str, now: float) -> dict:
    return await client.patch("leases.coordination.k8s.io", name, {"spec": {"renewTime": micro_time(now)}},
                              "kube-node-lease")


async def post_status(client: Client, name: str, now: float, ready: str = "True") -> dict:
    return await client.patch("nodes", name, {"status": {"conditions": ready_conditions(now, ready)}},
                              subresource="status")


def condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def taint_keys(node_obj: dict) -> set[str]:
    return {f"{t['key']}:{t['effect']}" for t in (node_obj.get("spec") or {}).get("taints") or []}


async def events_for(client: Client, namespace: str, name: str, reason: str | None = None) -> list[dict]:
    items = (await client.list("events", namespace))["items"]
    return [e for e in items if e["involvedObject"].get("name") == name and (reason is None or e["reason"] == reason)]
