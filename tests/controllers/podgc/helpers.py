"""Builders and steps for the pod garbage collector tests.

The controller runs on a ``FakeClock``; ``gc_pass`` moves virtual time on by one check period and
waits (real time) until the pass it triggers has written what it writes.
"""

from __future__ import annotations

from typing import Any

from client.clock import FakeClock
from client.rest import Client
from controller_manager.controllers.podgc import PodGCController
from tests.controllers.lifecycle.helpers import eventually, ready_conditions, settled

HOLD = "tests.navarch.io/hold"        # a finalizer that keeps a force-deleted pod readable
PERIOD = 20.0                         # seconds between passes, as in Kubernetes


def make_pod(name: str, *, node: str | None = None, finalizers: list[str] | None = None) -> dict:
    md: dict[str, Any] = {"name": name, "labels": {"app": "gc"}}
    if finalizers:
        md["finalizers"] = finalizers
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox:1"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def make_node(name: str, now: float, *, ready: str = "True", taints: list[dict] | None = None) -> dict:
    alloc = {"cpu": "8", "memory": "16Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"taints": taints} if taints else {},
            "status": {"capacity": dict(alloc), "allocatable": dict(alloc), "conditions": ready_conditions(now, ready)}}


async def add_node(client: Client, nodes: list[str], clock: FakeClock, suffix: str, **kw: Any) -> str:
    name = f"{client.namespace}-{suffix}"
    await client.create("nodes", make_node(name, clock.now(), **kw))
    nodes.append(name)
    return name


async def add_pod(client: Client, name: str, *, phase: str | None = "Running", reason: str | None = None,
                  conditions: list[dict] | None = None, **kw: Any) -> dict:
    """A pod with the given phase (status reason, conditions) written to its status, as a kubelet would."""
    pod = await client.create("pods", make_pod(name, **kw))
    if phase is None:
        return pod
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    if conditions:
        status["conditions"] = conditions
    return await client.patch("pods", name, {"status": status}, subresource="status")


async def terminating(client: Client, name: str) -> dict:
    """Delete the pod the ordinary way; it must be left terminating (bound, or held)."""
    await client.delete("pods", name)
    pod = await client.get("pods", name)
    assert pod["metadata"].get("deletionTimestamp"), pod["metadata"]
    return pod


async def seen(ctl: PodGCController, client: Client, *names: str) -> None:
    """Wait until the controller's informers show each pod as the API server has it now."""
    for name in names:
        want = (await client.get("pods", name))["metadata"]["resourceVersion"]

        def cached(name: str = name, want: str = want) -> bool:
            p = ctl.pods.get(f"{client.namespace}/{name}")
            return p is not None and int(p["metadata"]["resourceVersion"]) >= int(want)
        await eventually(cached, what=f"pod {name} in the informer")


async def node_seen(ctl: PodGCController, name: str, present: bool = True) -> None:
    await eventually(lambda: (ctl.nodes.get(name) is not None) == present,
                     what=f"node {name} {'in' if present else 'gone from'} the informer")


async def gc_pass(clock: FakeClock, ctl: PodGCController) -> None:
    """Move virtual time on by one check period and wait until the pass it starts is over."""
    before = ctl.passes
    await clock.advance(PERIOD)
    await eventually(lambda: ctl.passes > before, what="a garbage collection pass")
    await settled(ctl)


def condition(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


async def pod_names(client: Client) -> set[str]:
    return {p["metadata"]["name"] for p in (await client.list("pods", client.namespace))["items"]}
