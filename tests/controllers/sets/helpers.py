"""Builders and stand-ins for the DaemonSet and StatefulSet tests.

``Controllers`` runs chosen controllers in this process against a real API server. ``Cluster``
adds the real scheduler and simulated nodes (``kubelet.sim``), so daemon pods are placed by
their node-affinity term and run. ``set_ready`` and ``finish_deletion`` play a kubelet by hand
for tests that decide when each pod becomes ready.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from api import errors
from client.clock import REAL, Clock, FakeClock
from client.events import rfc3339
from client.informer import Informer, SharedInformerFactory
from client.rest import Client
from controller_manager.base import Controller, ControllerConfig, ControllerContext
from controller_manager.manager import Recorders
from kubelet.sim.config import SimConfig
from kubelet.sim.simulator import Simulator
from scheduler.scheduler import Scheduler

DS = "daemonsets.apps"
STS = "statefulsets.apps"
REVISIONS = "controllerrevisions.apps"


def template(labels: dict[str, str], image: str = "busybox:1", **spec: Any) -> dict:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "app", "image": image}], "terminationGracePeriodSeconds": 30,
                     **spec}}


def daemonset(name: str, *, image: str = "busybox:1", strategy: dict | None = None, pod_spec: dict | None = None,
              **spec: Any) -> dict:
    labels = {"app": name}
    body: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template(labels, image,
                                                                                        **(pod_spec or {}))}
    if strategy is not None:
        body["updateStrategy"] = strategy
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name}, "spec": body}


def statefulset(name: str, replicas: int = 3, *, image: str = "busybox:1", strategy: dict | None = None,
                **spec: Any) -> dict:
    labels = {"app": name}
    body: dict[str, Any] = {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
                            "template": template(labels, image)}
    if strategy is not None:
        body["updateStrategy"] = strategy
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": body}


def node(name: str, labels: dict[str, str] | None = None, taints: list[dict] | None = None) -> dict:
    alloc = {"cpu": "32", "memory": "64Gi", "pods": "110"}
    spec = {"taints": taints} if taints else {}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec,
            "status": {"capacity": dict(alloc), "allocatable": dict(alloc),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


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


async def pods_of(client: Client, app: str) -> list[dict]:
    items = (await client.list("pods", client.namespace, label_selector=f"app={app}"))["items"]
    return sorted(items, key=lambda p: p["metadata"]["name"])


async def events_for(client: Client, name: str) -> list[tuple[str, str, str]]:
    items = (await client.list("events", client.namespace))["items"]
    return [(e.get("type", ""), e.get("reason", ""), e.get("message", "")) for e in items
            if (e.get("involvedObject") or {}).get("name") == name]


async def set_ready(client: Client, pod: dict, ready: bool = True, clock: Clock = REAL) -> None:
    """Report a pod Running, Ready or not (PATCH pods/status), as its kubelet would."""
    md = pod["metadata"]
    now = rfc3339(clock.now())
    flag = "True" if ready else "False"
    status = {"phase": "Running", "startTime": now,
              "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                             {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                             {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                             {"type": "Ready", "status": flag, "lastTransitionTime": now}],
              "containerStatuses": [{"name": "app", "image": "busybox:1", "imageID": "", "ready": ready,
                                     "restartCount": 0, "started": True,
                                     "state": {"running": {"startedAt": now}}}]}
    await client.patch("pods", md["name"], {"status": status}, md["namespace"], subresource="status")


async def finish_deletion(client: Client, pod: dict) -> None:
    """End a graceful deletion, as a kubelet does once the containers stopped."""
    md = pod["metadata"]
    with contextlib.suppress(errors.NotFound, errors.Conflict):
        await client.delete("pods", md["name"], md["namespace"], grace_period_seconds=0,
                            preconditions={"uid": md["uid"]})


class Controllers:
    """Controllers of the given classes, run in this process and sharing informers."""

    def __init__(self, client: Client, classes: list[type[Controller]], clock: Clock = REAL):
        self.client = client
        self.informers = SharedInformerFactory(client)
        self.recorders = Recorders(client)
        ctx = ControllerContext(client=client, informers=self.informers, recorder=self.recorders,
                                config=ControllerConfig(), clock=clock)
        self.controllers = [cls(ctx) for cls in classes]
        self._tasks: list[asyncio.Task] = []

    def __getitem__(self, name: str) -> Any:
        return next(c for c in self.controllers if c.name == name)

    async def start(self) -> Controllers:
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


class Cluster:
    """The real scheduler and ``nodes`` simulated nodes named ``<prefix>0``, ``<prefix>1``, ..."""

    def __init__(self, client: Client, nodes: int, prefix: str, *, startup_delay: float = 0.0):
        self.client = client
        self.names = [f"{prefix}{i}" for i in range(nodes)]
        self.sim = Simulator(client, SimConfig(count=nodes, name_prefix=prefix, lease_renew_interval=1.0,
                                               pod_startup_delay=startup_delay, cleanup=True))
        self.scheduler = Scheduler(client)
        self._task: asyncio.Task | None = None

    async def start(self) -> Cluster:
        await self.sim.start()
        self._task = asyncio.create_task(self.scheduler.run(), name="test-scheduler")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.sim.stop()


async def quiesce(*controllers: Controller, rounds: int = 6) -> None:
    """Wait until the controllers have had nothing queued or in flight for a few polls in a row,
    so the informer events of their own writes have come back and been handled."""
    calm = 0
    while calm < rounds:
        await asyncio.sleep(0.05)
        busy = any(len(c.queue) or c.queue._processing for c in controllers)
        calm = 0 if busy else calm + 1


class HandKubelet:
    """Plays a kubelet for the pods of one namespace: binds each to ``node``, reports it Running
    and Ready once ``allow(pod)`` says so, and ends graceful deletions unless ``hold(pod)``.
    ``poke()`` looks at every pod again after ``allow`` or ``hold`` changed their minds."""

    def __init__(self, client: Client, node_name: str = "hand-node",
                 allow: Callable[[dict], bool] | None = None, hold: Callable[[dict], bool] | None = None,
                 clock: Clock = REAL):
        self.client = client
        self.clock = clock
        self.node_name = node_name
        self.allow = allow or (lambda pod: True)
        self.hold = hold or (lambda pod: False)
        self.informer = Informer(client, "pods", client.namespace)
        self._tasks: set[asyncio.Task] = set()
        self._busy: set[str] = set()
        self._again: set[str] = set()

    async def start(self) -> HandKubelet:
        with contextlib.suppress(errors.AlreadyExists):
            await self.client.create("nodes", node(self.node_name))
        self.informer.add_event_handler(on_add=self._see, on_update=lambda old, new: self._see(new))
        self.informer.start()
        await self.informer.wait_for_cache_sync()
        return self

    async def stop(self) -> None:
        await self.informer.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def poke(self) -> None:
        for pod in self.informer.list():
            self._see(pod)

    def _see(self, pod: dict) -> None:
        name = pod["metadata"]["name"]
        if name in self._busy:
            self._again.add(name)
            return
        self._busy.add(name)
        task = asyncio.create_task(self._act(pod, name), name=f"hand-kubelet:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, pod: dict, name: str) -> None:
        try:
            if pod["metadata"].get("deletionTimestamp"):
                if not self.hold(pod):
                    await finish_deletion(self.client, pod)
            elif not (pod.get("spec") or {}).get("nodeName"):
                await self.client.bind(pod["metadata"]["namespace"], name, self.node_name)
            elif (pod.get("status") or {}).get("phase") == "Pending" and self.allow(pod):
                await set_ready(self.client, pod, clock=self.clock)
        except (errors.NotFound, errors.Conflict):
            pass
        finally:
            self._busy.discard(name)
            if name in self._again:
                self._again.discard(name)
                latest = self.informer.get(f"{self.client.namespace}/{name}")
                if latest is not None:
                    self._see(latest)


async def advance(clock: FakeClock, seconds: float, *controllers: Controller) -> None:
    """Move the fake clock on by ``seconds``, one timer at a time, letting the controllers finish
    what each wake-up started before the next timer is due."""
    target = clock.monotonic() + seconds
    await quiesce(*controllers)
    while True:
        deadline = clock.next_deadline()
        if deadline is None or deadline > target:
            break
        await clock.advance(deadline - clock.monotonic())
        await quiesce(*controllers)
    await clock.advance(max(0.0, target - clock.monotonic()))
    await quiesce(*controllers)
