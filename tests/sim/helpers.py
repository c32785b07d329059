"""Builders and waiting helpers for the simulator's tests."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable
from typing import Any

from api import errors
from client.rest import Client

DEADLINE = 30.0


def make_pod(name: str, namespace: str, *, restart_policy: str | None = None, exit_after: str | None = None,
             exit_code: str | None = None, containers: int = 1, init_containers: int = 0,
             host_network: bool = False, grace: int | None = None) -> dict[str, Any]:
    annotations = {}
    if exit_after is not None:
        annotations["sim.navarch.io/exit-after"] = exit_after
    if exit_code is not None:
        annotations["sim.navarch.io/exit-code"] = exit_code
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": f"registry.local/app:{i}"}
                                           for i in range(containers)]}
    if init_containers:
        spec["initContainers"] = [{"name": f"init{i}", "image": "registry.local/init:1"}
                                  for i in range(init_containers)]
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    if host_network:
        spec["hostNetwork"] = True
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations}, "spec": spec}


async def eventually(fn: Callable[[], Any], deadline: float = DEADLINE, what: str = "condition") -> Any:
    """Poll ``fn`` (sync or async) until it returns something truthy; that value is returned."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    last: Any = None
    while True:
        last = fn()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() > end:
            raise AssertionError(f"{what} not reached within {deadline}s (last: {last!r})")
        await asyncio.sleep(0.05)


async def pod_when(client: Client, namespace: str, name: str, predicate: Callable[[dict], bool],
                   what: str = "pod state") -> dict:
    async def check() -> dict | None:
        pod = await client.get("pods", name, namespace)
        return pod if predicate(pod) else None

    return await eventually(check, what=what)


async def gone(client: Client, resource: str, name: str, namespace: str | None = None) -> bool:
    try:
        await client.get(resource, name, namespace)
    except errors.NotFound:
        return True
    return False


def condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def in_cidr(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


class PodHistory:
    """Every version of the pods of a namespace, recorded from a watch, so a test can ask whether
    a state was ever reached however briefly it lasted."""

    def __init__(self, client: Client, namespace: str):
        self.client = client
        self.namespace = namespace
        self.versions: dict[str, list[dict]] = {}
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> PodHistory:
        listing = await self.client.list("pods", self.namespace)
        rv = listing["metadata"]["resourceVersion"]

        async def run() -> None:
            nonlocal rv
            while True:
                async with self.client.watch("pods", self.namespace, resource_version=rv) as w:
                    async for etype, obj in w:
                        if etype != "BOOKMARK":
                            self.versions.setdefault(obj["metadata"]["name"], []).append(obj)
                    rv = w.resource_version or rv

        self._task = asyncio.create_task(run(), name="test:pod-history")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def of(self, name: str) -> list[dict]:
        return self.versions.get(name, [])

    def ever(self, name: str, predicate: Callable[[dict], bool]) -> bool:
        return any(predicate(p) for p in self.of(name))


def first_container(pod: dict) -> dict:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return statuses[0]


def container_state(pod: dict) -> str:
    state = first_container(pod).get("state") or {}
    return next(iter(state), "")
