"""Builders and stand-ins for the batch and endpoints controller tests.

``Controllers`` runs chosen controllers in this process against a real API server, with an
injectable clock. ``Binder`` plays the scheduler: it binds each unassigned pod of the test's
namespace to one of the simulator's nodes (POST pods/<name>/binding); the simulator
(``kubelet.sim``) then runs it, ending it when its ``sim.navarch.io/exit-after`` annotation says.
``quiesce`` and ``advance_to`` drive a controller under a ``FakeClock``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from api import errors, meta
from client.clock import REAL, Clock, FakeClock
from client.informer import Informer, SharedInformerFactory
from client.rest import Client
from controller_manager import cron
from controller_manager.base import Controller, ControllerConfig, ControllerContext
from controller_manager.manager import Recorders

JOBS = "jobs.batch"
CRONJOBS = "cronjobs.batch"


def job(name: str, *, exit_after: str | None = "300ms", exit_code: int | None = None,
        restart_policy: str = "Never", **spec: Any) -> dict:
    annotations: dict[str, str] = {}
    if exit_after is not None:
        annotations["sim.navarch.io/exit-after"] = exit_after
    if exit_code is not None:
        annotations["sim.navarch.io/exit-code"] = str(exit_code)
    template = {"metadata": {"annotations": annotations},
                "spec": {"restartPolicy": restart_policy,
                         "containers": [{"name": "main", "image": "busybox:1"}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": template, **spec}}


def cronjob(name: str, schedule: str, **spec: Any) -> dict:
    template = {"spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [{"name": "main", "image": "busybox:1"}]}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, "jobTemplate": template, **spec}}


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


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


async def events_for(client: Client, name: str) -> list[tuple[str, str, str]]:
    items = (await client.list("events", client.namespace))["items"]
    return [(e.get("type", ""), e.get("reason", ""), e.get("message", "")) for e in items
            if (e.get("involvedObject") or {}).get("name") == name]


class Controllers:
    """Controllers of the given classes run in this process, sharing informers and a clock."""

    def __init__(self, client: Client, classes: list[type[Controller]], clock: Clock = REAL):
        self.client = client
        self.clock = clock
        self.informers = SharedInformerFactory(client, namespace=client.namespace)
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


class Binder:
    """Binds every unassigned pod of one namespace to the given nodes, round robin."""

    def __init__(self, client: Client, nodes: list[str]):
        self.client = client
        self.nodes = nodes
        self.informer = Informer(client, "pods", client.namespace)
        self._next = 0
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> Binder:
        self.informer.add_event_handler(on_add=self._see, on_update=lambda old, new: self._see(new))
        self.informer.start()
        await self.informer.wait_for_cache_sync()
        return self

    async def stop(self) -> None:
        await self.informer.stop()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _see(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return
        target = self.nodes[self._next % len(self.nodes)]
        self._next += 1
        task = asyncio.create_task(self._bind(pod, target))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, pod: dict, node: str) -> None:
        with contextlib.suppress(errors.NotFound, errors.Conflict, errors.Invalid):
            await self.client.bind(pod["metadata"]["namespace"], pod["metadata"]["name"], node)


async def quiesce(*controllers: Controller, rounds: int = 4) -> None:
    """Wait (in real time) until the controllers' queues have nothing ready or in flight for a few
    polls in a row, so that informer events of their own writes have come back and been handled."""
    calm = 0
    while calm < rounds:
        await asyncio.sleep(0.05)
        busy = any(len(c.queue) or c.queue._processing for c in controllers)
        calm = 0 if busy else calm + 1


async def advance_to(clock: FakeClock, when: float, *controllers: Controller) -> None:
    """Move the fake clock to wall time ``when``, one timer at a time, letting the controllers
    finish what each wake-up started before the next timer is due."""
    offset = clock.now() - clock.monotonic()
    target = when - offset
    await quiesce(*controllers)
    while True:
        deadline = clock.next_deadline()
        if deadline is None or deadline > target:
            break
        await clock.advance(deadline - clock.monotonic())
        await quiesce(*controllers)
    await clock.advance(max(0.0, target - clock.monotonic()))
    await quiesce(*controllers)


def first_run(clock: FakeClock, cj: dict) -> float:
    """The first schedule time the controller may act on: after both creation and now."""
    created = meta.parse_rfc3339(cj["metadata"]["creationTimestamp"])
    start = max(created, datetime.fromtimestamp(clock.now(), UTC))
    spec = cj["spec"]
    return cron.parse(spec["schedule"], spec.get("timeZone")).next(start).timestamp()


def next_run(cj: dict, after: float) -> float:
    spec = cj["spec"]
    return cron.parse(spec["schedule"], spec.get("timeZone")).next(datetime.fromtimestamp(after, UTC)).timestamp()
