"""Builders and a stand-in node agent for the workload controller tests.

``PodRunner`` plays scheduler and kubelets at once: it binds every unassigned pod to one of a few
nodes (round robin, POST pods/<name>/binding), then reports it Running and Ready (PATCH
pods/status) once ``ready_after`` seconds of its clock have passed and ``may_run(pod)`` allows;
and it finishes graceful deletions (DELETE with gracePeriodSeconds=0), as a kubelet does once its
containers stopped.

``Controllers`` runs the ReplicaSet and Deployment controllers in this process against a real
API server, with an injectable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from api import errors
from client.clock import REAL, Clock
from client.events import rfc3339
from client.informer import Informer, SharedInformerFactory
from client.rest import Client
from controller_manager.base import ControllerConfig, ControllerContext
from controller_manager.controllers.deployment import DeploymentController
from controller_manager.controllers.replicaset import ReplicaSetController
from controller_manager.manager import Recorders


def node(name: str) -> dict:
    alloc = {"cpu": "32", "memory": "64Gi", "pods": "1000"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": dict(alloc), "allocatable": dict(alloc),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def template(labels: dict[str, str], image: str = "busybox:1", annotations: dict | None = None) -> dict:
    md: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        md["annotations"] = dict(annotations)
    return {"metadata": md, "spec": {"containers": [{"name": "app", "image": image}],
                                     "terminationGracePeriodSeconds": 30}}


def deployment(name: str, replicas: int = 3, *, image: str = "busybox:1", strategy: dict | None = None,
               labels: dict | None = None, **spec: Any) -> dict:
    labels = labels or {"app": name}
    body: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                            "template": template(labels, image)}
    if strategy is not None:
        body["strategy"] = strategy
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": body}


def replicaset(name: str, replicas: int = 3, *, labels: dict | None = None, **spec: Any) -> dict:
    labels = labels or {"app": name}
    body: dict[str, Any] = {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                            "template": template(labels)}
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name}, "spec": body}


def bare_pod(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"containers": [{"name": "app", "image": "busybox:1"}]}}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


class PodRunner:
    def __init__(self, client: Client, *, nodes: int = 3, clock: Clock = REAL, ready_after: float = 0.0,
                 may_run: Callable[[dict], bool] | None = None):
        self.client = client
        self.nodes = [f"node-{i}" for i in range(nodes)]
        self.clock = clock
        self.ready_after = ready_after
        self.may_run = may_run or (lambda pod: True)
        self.informer = Informer(client, "pods", clock=REAL)
        self._next = 0
        self._tasks: set[asyncio.Task] = set()
        self._busy: set[str] = set()
        self._again: set[str] = set()

    async def start(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(errors.AlreadyExists):
                await self.client.create("nodes", node(n))
        self.informer.add_event_handler(on_add=self._see, on_update=lambda old, new: self._see(new))
        self.informer.start()
        await self.informer.wait_for_cache_sync()

    async def stop(self) -> None:
        await self.informer.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def poke(self) -> None:
        """Look at every pod again (after ``may_run`` changed its mind)."""
        for pod in self.informer.list():
            self._see(pod)

    def _see(self, pod: dict) -> None:
        key = f'{pod["metadata"]["namespace"]}/{pod["metadata"]["name"]}'
        if key in self._busy:
            self._again.add(key)   # looked at again once the current action ends
            return
        self._busy.add(key)
        task = asyncio.create_task(self._act(pod, key), name=f"pod-runner:{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, pod: dict, key: str) -> None:
        md, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        ns, name = md["namespace"], md["name"]
        try:
            if md.get("deletionTimestamp"):
                await self.client.delete("pods", name, ns, grace_period_seconds=0,
                                         preconditions={"uid": md["uid"]})
            elif not spec.get("nodeName"):
                target = self.nodes[self._next % len(self.nodes)]
                self._next += 1
                await self.client.bind(ns, name, target)
            elif status.get("phase") == "Pending" and self.may_run(pod):
                if self.ready_after > 0:
                    await self.clock.sleep(self.ready_after)
                await self.set_ready(pod, True)
        except (errors.NotFound, errors.Conflict):
            pass
        finally:
            self._busy.discard(key)
            if key in self._again:
                self._again.discard(key)
                latest = self.informer.get(key)
                if latest is not None:
                    self._see(latest)

    async def set_ready(self, pod: dict, ready: bool) -> None:
        md = pod["metadata"]
        now = rfc3339(self.clock.now())
        flag = "True" if ready else "False"
        status = {"phase": "Running", "startTime": now,
                  "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                                 {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                                 {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                                 {"type": "Ready", "status": flag, "lastTransitionTime": now}],
                  "containerStatuses": [{"name": "app", "image": "busybox:1", "imageID": "", "ready": ready,
                                         "restartCount": 0, "started": True,
                                         "state": {"running": {"startedAt": now}}}]}
        await self.client.patch("pods", md["name"], {"status": status}, md["namespace"], subresource="status")


class Controllers:
    """The ReplicaSet and Deployment controllers, run in this process."""

    def __init__(self, client: Client, clock: Clock = REAL, which: tuple[str, ...] = ("replicaset", "deployment")):
        self.client = client
        self.clock = clock
        self.informers = SharedInformerFactory(client)
        self.recorders = Recorders(client)
        ctx = ControllerContext(client=client, informers=self.informers, recorder=self.recorders,
                                config=ControllerConfig(), clock=clock)
        classes = {"replicaset": ReplicaSetController, "deployment": DeploymentController}
        self.controllers = [classes[n](ctx) for n in which]
        self._tasks: list[asyncio.Task] = []

    def __getitem__(self, name: str) -> Any:
        return next(c for c in self.controllers if c.name == name)

    async def start(self) -> None:
        self.informers.start()
        self._tasks = [asyncio.create_task(c.run(), name=f"test-controller:{c.name}") for c in self.controllers]
        await self.informers.wait_for_cache_sync()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for c in self.controllers:
            c.queue.shut_down()
        await self.informers.stop()
        await self.recorders.stop()
