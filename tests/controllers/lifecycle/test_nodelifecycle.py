"""Node lifecycle and taint eviction against a real API server, time driven by a FakeClock.

Nodes and their Leases are written by the test (standing in for kubelets): renewing the Lease,
posting conditions, or falling silent. The controllers run on virtual time; the test advances it
and then waits (real time) for what the API server shows.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from api import errors
from client.clock import FakeClock
from controller_manager.base import ControllerConfig
from controller_manager.controllers.nodelifecycle import NodeLifecycleController, TaintEvictionController
from tests.controllers.lifecycle.helpers import (
    Running,
    condition,
    events_for,
    eventually,
    lease,
    node,
    pod,
    post_status,
    renew,
    settled,
    taint_keys,
)

LEASES = "leases.coordination.k8s.io"
UNREACHABLE_NS = "node.kubernetes.io/unreachable:NoSchedule"
UNREACHABLE_NE = "node.kubernetes.io/unreachable:NoExecute"
NOT_READY_NS = "node.kubernetes.io/not-ready:NoSchedule"
NOT_READY_NE = "node.kubernetes.io/not-ready:NoExecute"


@pytest.fixture
def clock():
    return FakeClock(start=time.time())


@pytest.fixture
async def nodes(client):
    """Names of nodes the test creates (with their Leases); deleted afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(errors.NotFound):
            await client.delete("nodes", name)
        with contextlib.suppress(errors.NotFound):
            await client.delete(LEASES, name, "kube-node-lease")


async def add_node(client, nodes, clock, suffix: str, **kw) -> str:
    name = f"{client.namespace}-{suffix}"
    await client.create("nodes", node(name, clock.now(), **kw))
    await client.create(LEASES, lease(name, clock.now()), "kube-node-lease")
    nodes.append(name)
    return name


async def ready_pod(client, name: str, node_name: str, **kw) -> dict:
    p = await client.create("pods", pod(name, node=node_name, **kw))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return await client.patch("pods", name, {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp}]}}, subresource="status") or p


async def renew_seen(client, ctl: NodeLifecycleController, name: str, now: float) -> None:
    """Renew the node's Lease and wait until the controller's informer shows it."""
    want = (await renew(client, name, now))["spec"]["renewTime"]

    async def seen():
        cached = ctl.leases.get(f"kube-node-lease/{name}")
        return cached is not None and cached["spec"]["renewTime"] == want
    await eventually(seen, what="lease renewal in the informer")


async def step(clock: FakeClock, ctl, seconds: float, *, alive: list[str] = (), client=None,
               lifecycle: NodeLifecycleController | None = None) -> None:
    """Advance virtual time; nodes in ``alive`` renew their Leases afterwards (seen by the
    controller before the next step), as healthy kubelets do."""
    await clock.advance(seconds)
    await settled(ctl)
    for name in alive:
        await renew_seen(client, lifecycle or ctl, name, clock.now())


async def healthy(client, nodes, clock, n: int = 1) -> list[str]:
    """Nodes that stay ready throughout, so that the cluster is not wholly disrupted."""
    return [await add_node(client, nodes, clock, f"ok{i}") for i in range(n)]


def config(**kw) -> ControllerConfig:
    base = {"node_monitor_grace_period": 40.0, "node_monitor_period": 5.0, "node_eviction_rate": 100.0}
    base.update(kw)
    return ControllerConfig(**base)


async def test_silent_node_goes_unknown_and_comes_back(client, nodes, clock):
    name = await add_node(client, nodes, clock, "quiet")
    ok = await healthy(client, nodes, clock)
    await ready_pod(client, "on-quiet", name)
    async with Running(client, [NodeLifecycleController], clock=clock, config=config()) as running:
        ctl = running["nodelifecycle"]
        kw = {"alive": ok, "client": client}
        await eventually(lambda: _has(ctl.health, name), what="node seen")
        for _ in range(12):                      # a minute of renewals every 5 s: healthy
            await step(clock, ctl, 5, **kw)
            await renew_seen(client, ctl, name, clock.now())
        await step(clock, ctl, 5, **kw)          # the last renewal is observed
        for _ in range(7):                       # silent, but within the grace period
            await step(clock, ctl, 5, **kw)
        live = await client.get("nodes", name)
        assert condition(live, "Ready")["status"] == "True"
        assert taint_keys(live) == set()

        for _ in range(3):
            await step(clock, ctl, 5, **kw)
        live = await client.get("nodes", name)
        for ctype in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
            c = condition(live, ctype)
            assert (c["status"], c["reason"], c["message"]) == (
                "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."), ctype
        assert taint_keys(live) == {UNREACHABLE_NS, UNREACHABLE_NE}
        no_execute = next(t for t in live["spec"]["taints"] if t["effect"] == "NoExecute")
        assert no_execute["timeAdded"]
        assert "timeAdded" not in next(t for t in live["spec"]["taints"] if t["effect"] == "NoSchedule")

        # Its pods are no longer ready, and events say why.
        p = await client.get("pods", "on-quiet")
        assert condition(p, "Ready")["status"] == "False"
        await eventually(lambda: events_for(client, client.namespace, "on-quiet", "NodeNotReady"),
                         what="NodeNotReady event for the pod")
        ev = (await eventually(lambda: events_for(client, "default", name, "NodeNotReady"),
                               what="NodeNotReady event for the node"))[0]
        assert ev["message"] == f"Node {name} status is now: NodeNotReady"
        assert ev["source"]["component"] == "node-controller"
        assert await events_for(client, "default", name, "RegisteredNode")

        # The kubelet is back: the taints go.
        await post_status(client, name, clock.now())
        await renew_seen(client, ctl, name, clock.now())

        async def untainted():
            n = await client.get("nodes", name)
            return not taint_keys(n) and condition(n, "Ready")["status"] == "True"
        await eventually(untainted, what="taints removed once the node is ready again")
        await step(clock, ctl, 5, **kw)
        assert not taint_keys(await client.get("nodes", name))
        assert condition(await client.get("nodes", ok[0]), "Ready")["status"] == "True"


async def test_taints_follow_conditions(client, nodes, clock):
    name = await add_node(client, nodes, clock, "cond")
    await healthy(client, nodes, clock)
    async with Running(client, [NodeLifecycleController], clock=clock, config=config()) as running:
        ctl = running["nodelifecycle"]
        await eventually(lambda: _has(ctl.health, name), what="node seen")
        await post_status(client, name, clock.now(), ready="False")

        async def keys(want):
            got = taint_keys(await client.get("nodes", name))
            return got if got == want else None
        await eventually(lambda: keys({NOT_READY_NS, NOT_READY_NE}), what="not-ready taints")
        # Pressure and cordoning add their own NoSchedule taints.
        conditions = (await client.get("nodes", name))["status"]["conditions"]
        for c in conditions:
            if c["type"] == "MemoryPressure":
                c["status"] = "True"
        await client.patch("nodes", name, {"status": {"conditions": conditions}}, subresource="status")
        await client.patch("nodes", name, {"spec": {"unschedulable": True}})
        await eventually(lambda: keys({NOT_READY_NS, NOT_READY_NE, "node.kubernetes.io/memory-pressure:NoSchedule",
                                       "node.kubernetes.io/unschedulable:NoSchedule"}),
                         what="pressure and unschedulable taints", timeout=15)
        # Taints that are not ours are left alone.
        n = await client.get("nodes", name)
        await client.patch("nodes", name, {"spec": {"unschedulable": False, "taints": n["spec"]["taints"] + [
            {"key": "example.com/mine", "effect": "NoSchedule"}]}})
        await post_status(client, name, clock.now(), ready="True")
        await eventually(lambda: keys({"example.com/mine:NoSchedule"}), what="only the foreign taint left")


async def test_noexecute_tainting_is_rate_limited(client, nodes, clock):
    names = [await add_node(client, nodes, clock, f"rl{i}") for i in range(3)]
    # Half the zone stays healthy: below the 55 % that would make it partially disrupted.
    ok = await healthy(client, nodes, clock, 3)
    async with Running(client, [NodeLifecycleController], clock=clock,
                       config=config(node_eviction_rate=0.1)) as running:
        ctl = running["nodelifecycle"]
        kw = {"alive": ok, "client": client}
        await eventually(lambda: all(n in ctl.health for n in names + ok) or None, what="nodes seen")
        for _ in range(10):                      # 50 s of silence
            await step(clock, ctl, 5, **kw)

        async def tainted() -> list[int]:
            out = []
            for n in names:
                keys = taint_keys(await client.get("nodes", n))
                assert UNREACHABLE_NS in keys
                out.append(UNREACHABLE_NE in keys)
            return out
        # Marked Unknown at 45 s: one NoExecute taint then, the next 10 s later (0.1 per second).
        assert sum(await tainted()) == 1
        await step(clock, ctl, 5, **kw)
        assert sum(await tainted()) == 2
        await step(clock, ctl, 5, **kw)
        assert sum(await tainted()) == 2
        await step(clock, ctl, 5, **kw)
        assert sum(await tainted()) == 3


async def test_noexecute_evictions(client, nodes, clock):
    name = await add_node(client, nodes, clock, "drain")
    ns = client.namespace
    drain = {"key": "example.com/drain", "operator": "Exists", "effect": "NoExecute"}
    await client.create("pods", pod("intolerant", node=name))
    await client.create("pods", pod("brief", node=name, tolerations=[{**drain, "tolerationSeconds": 2}]))
    await client.create("pods", pod("patient", node=name, tolerations=[drain]))
    await client.create("pods", pod("reprieved", node=name, tolerations=[{**drain, "tolerationSeconds": 30}]))
    await client.create("pods", pod("elsewhere"))
    async with Running(client, [TaintEvictionController], clock=clock, config=config()) as running:
        ctl = running["taint-eviction-controller"]
        await client.patch("nodes", name, {"spec": {"taints": [
            {"key": "example.com/drain", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]}})

        async def deleting(pod_name: str) -> bool:
            try:
                p = await client.get("pods", pod_name)
            except errors.NotFound:
                return True
            return bool(p["metadata"].get("deletionTimestamp"))

        await eventually(lambda: deleting("intolerant"), what="intolerant pod evicted at once")
        await eventually(lambda: _has(ctl.scheduled, f"{ns}/reprieved"), what="reprieved pod scheduled")
        await settled(ctl)
        p = await client.get("pods", "intolerant")
        target = condition(p, "DisruptionTarget")
        assert (target["status"], target["reason"]) == ("True", "DeletionByTaintManager")
        assert not await deleting("brief")
        await step(clock, ctl, 1)
        assert not await deleting("brief")
        await step(clock, ctl, 1.5)
        await eventually(lambda: deleting("brief"), what="pod evicted after its tolerationSeconds")

        await client.patch("nodes", name, {"spec": {"taints": None}})
        await eventually(lambda: events_for(client, ns, "reprieved", "TaintManagerEviction"),
                         what="cancellation event")
        await step(clock, ctl, 60)
        for survivor in ("patient", "reprieved", "elsewhere"):
            assert not await deleting(survivor), survivor

        marked = await events_for(client, ns, "intolerant", "TaintManagerEviction")
        assert [e["message"] for e in marked] == [f"Marking for deletion Pod {ns}/intolerant"]
        assert marked[0]["source"]["component"] == "taint-eviction-controller"
        cancelled = await events_for(client, ns, "reprieved", "TaintManagerEviction")
        assert [e["message"] for e in cancelled] == [f"Cancelling deletion of Pod {ns}/reprieved"]


async def test_unreachable_node_evicts_after_toleration(client, nodes, clock):
    """The two controllers together: silence -> unreachable taint -> eviction after tolerationSeconds;
    pods with the default 300 s tolerations stay that long."""
    name = await add_node(client, nodes, clock, "gone")
    ok = await healthy(client, nodes, clock)
    short = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
              "tolerationSeconds": 2}]
    await ready_pod(client, "short", name, tolerations=short)
    await ready_pod(client, "default-tolerations", name)
    async with Running(client, [NodeLifecycleController, TaintEvictionController], clock=clock,
                       config=config()) as running:
        ctl, evictor = running["nodelifecycle"], running["taint-eviction-controller"]
        await eventually(lambda: _has(ctl.health, name), what="node seen")
        for _ in range(10):
            await step(clock, ctl, 5, alive=ok, client=client)
        assert UNREACHABLE_NE in taint_keys(await client.get("nodes", name))
        await settled(evictor)
        await step(clock, evictor, 3)

        async def short_deleting():
            p = await client.get("pods", "short")
            return p["metadata"].get("deletionTimestamp")
        await eventually(short_deleting, what="pod with a 2 s toleration evicted")
        assert not (await client.get("pods", "default-tolerations"))["metadata"].get("deletionTimestamp")
        for _ in range(10):                      # 200 s, the healthy node renewing every 20 s
            await step(clock, evictor, 20, alive=ok, client=client, lifecycle=ctl)
        assert not (await client.get("pods", "default-tolerations"))["metadata"].get("deletionTimestamp")
        for _ in range(6):
            await step(clock, evictor, 20, alive=ok, client=client, lifecycle=ctl)
        await eventually(lambda: _deleting(client, "default-tolerations"), what="evicted after 300 s")


async def _deleting(client, name: str) -> bool:
    p = await client.get("pods", name)
    return bool(p["metadata"].get("deletionTimestamp"))


async def _has(container, key) -> bool:
    return key in container


async def test_no_evictions_when_every_node_is_down(client, nodes, clock):
    """All nodes silent at once looks like our own trouble: Unknown and NoSchedule-tainted, but
    no NoExecute taint until some node is ready again."""
    a = await add_node(client, nodes, clock, "all-a")
    b = await add_node(client, nodes, clock, "all-b")
    async with Running(client, [NodeLifecycleController], clock=clock, config=config()) as running:
        ctl = running["nodelifecycle"]
        await eventually(lambda: a in ctl.health and b in ctl.health, what="nodes seen")
        for _ in range(12):
            await step(clock, ctl, 5)
        for name in (a, b):
            n = await client.get("nodes", name)
            assert condition(n, "Ready")["status"] == "Unknown"
            assert taint_keys(n) == {UNREACHABLE_NS}
        assert ctl.all_disrupted

        await post_status(client, a, clock.now())
        await renew_seen(client, ctl, a, clock.now())
        await eventually(lambda: _ready(client, a), what="node a ready")
        for _ in range(3):
            await step(clock, ctl, 5, alive=[a], client=client)
        assert not ctl.all_disrupted
        # b, still Unknown, now gets its NoExecute taint; a has none.
        assert taint_keys(await client.get("nodes", b)) == {UNREACHABLE_NS, UNREACHABLE_NE}
        assert taint_keys(await client.get("nodes", a)) == set()


async def _ready(client, name: str) -> bool:
    return condition(await client.get("nodes", name), "Ready")["status"] == "True"
