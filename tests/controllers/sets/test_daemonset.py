"""The DaemonSet controller with the real API server, the real scheduler and simulated nodes:
one pod per eligible node, placed by the scheduler through its node-affinity term; tainted and
unselected nodes skipped; nodes added and tainted later; rolling updates within maxUnavailable
and maxSurge, checked on every watch event."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from controller_manager import history
from controller_manager.controllers.daemonset import DaemonSetController, target_node
from kubelet.sim.config import SimConfig
from kubelet.sim.simulator import Simulator
from tests.controllers.sets.helpers import (
    DS,
    REVISIONS,
    Cluster,
    Controllers,
    daemonset,
    events_for,
    eventually,
    pods_of,
)
from tests.fixtures.apiserver import ApiServer

DEFAULT_TOLERATIONS = {
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"),
}


@pytest.fixture
def apiserver(tmp_path):
    """A server per test: these tests count every node of the cluster."""
    server = ApiServer(tmp_path / "apiserver").start()
    yield server
    server.stop()


@pytest.fixture
async def cluster(client):
    prefix = "n" + uuid.uuid4().hex[:4] + "-"
    c = await Cluster(client, 3, prefix).start()
    ctrls = await Controllers(client, [DaemonSetController]).start()
    yield c
    await ctrls.stop()
    await c.stop()


def live(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def running_on(client, app: str, n: int) -> list[dict]:
    async def check():
        pods = live(await pods_of(client, app))
        if len(pods) == n and all((p.get("spec") or {}).get("nodeName") and ready(p) for p in pods):
            return pods
        return None
    return await eventually(check, timeout=60, what=f"{n} running pods of {app}")


async def settled_status(client, name: str, **want: int) -> dict:
    async def check():
        ds = await client.get(DS, name)
        st = ds.get("status") or {}
        got = {k: int(st.get(k) or 0) for k in want}
        if got == want and st.get("observedGeneration") == ds["metadata"]["generation"]:
            return st
        return None
    return await eventually(check, timeout=60, what=f"status of {name} {want}")


async def test_one_pod_per_node_placed_by_the_scheduler_skipping_a_tainted_node(client, cluster):
    tainted = cluster.names[2]
    await client.patch("nodes", tainted, {"spec": {"taints": [{"key": "dedicated", "value": "db",
                                                                "effect": "NoSchedule"}]}})
    await client.create(DS, daemonset("agent"))
    pods = await running_on(client, "agent", 2)
    assert sorted(p["spec"]["nodeName"] for p in pods) == cluster.names[:2]
    revisions = (await client.list(REVISIONS, client.namespace))["items"]
    assert len(revisions) == 1
    rev = revisions[0]
    hash_ = rev["metadata"]["labels"][history.HASH_LABEL]
    assert rev["metadata"]["name"] == f"agent-{hash_}" and rev["revision"] == 1
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    for p in pods:
        node = p["spec"]["nodeName"]
        terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"]
        assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
        assert {(t["key"], t["effect"]) for t in p["spec"]["tolerations"]} == DEFAULT_TOLERATIONS
        assert all("tolerationSeconds" not in t for t in p["spec"]["tolerations"])
        assert p["metadata"]["labels"]["controller-revision-hash"] == hash_
        assert p["metadata"]["labels"]["pod-template-generation"] == "1"
        assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    await settled_status(client, "agent", desiredNumberScheduled=2, currentNumberScheduled=2, numberReady=2,
                         updatedNumberScheduled=2, numberAvailable=2, numberMisscheduled=0, numberUnavailable=0)
    events = await events_for(client, "agent")
    created = sorted(m for t, r, m in events if r == "SuccessfulCreate")
    assert created == sorted(f"Created pod: {p['metadata']['name']}" for p in pods)


async def test_a_node_added_later_gets_a_pod_and_a_node_tainted_NoExecute_loses_it(client, cluster):
    await client.create(DS, daemonset("agent"))
    await running_on(client, "agent", 3)
    prefix = cluster.names[0][:-1]
    extra = Simulator(client, SimConfig(count=1, start_index=3, name_prefix=prefix, lease_renew_interval=1.0,
                                        cleanup=True))
    await extra.start()
    try:
        pods = await running_on(client, "agent", 4)
        assert sorted(p["spec"]["nodeName"] for p in pods) == cluster.names + [f"{prefix}3"]
        await settled_status(client, "agent", desiredNumberScheduled=4, currentNumberScheduled=4, numberReady=4)
        # A NoSchedule taint leaves the running pod alone; a NoExecute one removes it.
        victim = cluster.names[0]
        await client.patch("nodes", victim, {"spec": {"taints": [{"key": "maint", "effect": "NoSchedule"}]}})
        await settled_status(client, "agent", desiredNumberScheduled=3, currentNumberScheduled=3,
                             numberMisscheduled=1)
        assert victim in {p["spec"]["nodeName"] for p in live(await pods_of(client, "agent"))}
        await client.patch("nodes", victim, {"spec": {"taints": [{"key": "maint", "effect": "NoExecute"}]}})
        pods = await running_on(client, "agent", 3)
        assert victim not in {p["spec"]["nodeName"] for p in pods}
        await settled_status(client, "agent", desiredNumberScheduled=3, currentNumberScheduled=3,
                             numberMisscheduled=0, numberReady=3)
    finally:
        await extra.stop()


async def test_node_selector_limits_the_nodes(client, cluster):
    await client.patch("nodes", cluster.names[1], {"metadata": {"labels": {"role": "edge"}}})
    await client.create(DS, daemonset("edge", pod_spec={"nodeSelector": {"role": "edge"}}))
    pods = await running_on(client, "edge", 1)
    assert pods[0]["spec"]["nodeName"] == cluster.names[1]
    # Labelling another node brings a pod to it.
    await client.patch("nodes", cluster.names[2], {"metadata": {"labels": {"role": "edge"}}})
    pods = await running_on(client, "edge", 2)
    assert sorted(p["spec"]["nodeName"] for p in pods) == cluster.names[1:]


class Availability:
    """Follows the DaemonSet's pods by watch and records, on every event, how many nodes have a
    ready pod not being deleted and the most pods any node has."""

    def __init__(self, client, app: str):
        self.client = client
        self.app = app
        self.pods: dict[str, dict] = {}
        self.min_available: int | None = None
        self.max_per_node = 0
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        listed = await self.client.list("pods", self.client.namespace, label_selector=f"app={self.app}")
        self.pods = {p["metadata"]["name"]: p for p in listed["items"]}
        rv = listed["metadata"]["resourceVersion"]
        self.task = asyncio.create_task(self._follow(rv))

    async def _follow(self, rv: str) -> None:
        async with self.client.watch("pods", self.client.namespace, resource_version=rv,
                                     label_selector=f"app={self.app}") as w:
            async for etype, obj in w:
                if etype == "BOOKMARK":
                    continue
                if etype == "DELETED":
                    self.pods.pop(obj["metadata"]["name"], None)
                else:
                    self.pods[obj["metadata"]["name"]] = obj
                self._record()

    def _record(self) -> None:
        nodes_ready: set[str] = set()
        per_node: dict[str, int] = {}
        for p in self.pods.values():
            node = target_node(p)
            if node is None:
                continue
            per_node[node] = per_node.get(node, 0) + 1
            if ready(p) and not p["metadata"].get("deletionTimestamp"):
                nodes_ready.add(node)
        n = len(nodes_ready)
        self.min_available = n if self.min_available is None else min(self.min_available, n)
        self.max_per_node = max(self.max_per_node, *per_node.values(), 0)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def _roll(client, cluster, strategy: dict) -> Availability:
    await client.create(DS, daemonset("agent", strategy=strategy))
    old = await running_on(client, "agent", 3)
    old_hash = old[0]["metadata"]["labels"]["controller-revision-hash"]
    watcher = Availability(client, "agent")
    await watcher.start()
    try:
        await client.patch(DS, "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "busybox:2"}]}}}}, patch_type="strategic")

        async def rolled():
            pods = live(await pods_of(client, "agent"))
            ok = (len(pods) == 3 and all(ready(p) and p["spec"]["containers"][0]["image"] == "busybox:2"
                                         for p in pods))
            return pods if ok else None
        pods = await eventually(rolled, timeout=90, what="every daemon pod replaced")
    finally:
        await watcher.stop()
    assert sorted(p["spec"]["nodeName"] for p in pods) == cluster.names
    assert all(p["metadata"]["labels"]["controller-revision-hash"] != old_hash for p in pods)
    assert all(p["metadata"]["labels"]["pod-template-generation"] == "2" for p in pods)
    st = await settled_status(client, "agent", desiredNumberScheduled=3, updatedNumberScheduled=3,
                              numberAvailable=3)
    assert st["observedGeneration"] == 2
    revisions = (await client.list(REVISIONS, client.namespace))["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]
    return watcher


async def test_rolling_update_keeps_within_max_unavailable(client, cluster):
    watcher = await _roll(client, cluster, {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}})
    assert watcher.min_available == 2
    assert watcher.max_per_node == 1
    deleted = [m for t, r, m in await events_for(client, "agent") if r == "SuccessfulDelete"]
    assert len(deleted) == 3


async def test_rolling_update_with_surge_never_loses_a_node(client, cluster):
    watcher = await _roll(client, cluster, {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    assert watcher.min_available == 3
    assert watcher.max_per_node == 2


async def test_on_delete_replaces_only_deleted_pods(client, cluster):
    await client.create(DS, daemonset("agent", strategy={"type": "OnDelete"}))
    old = await running_on(client, "agent", 3)
    await client.patch(DS, "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "busybox:2"}]}}}}, patch_type="strategic")
    await settled_status(client, "agent", desiredNumberScheduled=3, updatedNumberScheduled=0)
    victim = old[0]
    await client.delete("pods", victim["metadata"]["name"])

    async def replaced():
        pods = live(await pods_of(client, "agent"))
        images = {p["spec"]["nodeName"]: p["spec"]["containers"][0]["image"] for p in pods if ready(p)}
        return images if len(images) == 3 and images[victim["spec"]["nodeName"]] == "busybox:2" else None
    images = await eventually(replaced, timeout=60, what="the deleted pod replaced")
    assert sorted(images.values()) == ["busybox:1", "busybox:1", "busybox:2"]
    await settled_status(client, "agent", desiredNumberScheduled=3, updatedNumberScheduled=1)


async def test_failed_daemon_pod_is_replaced(client, cluster):
    await client.create(DS, daemonset("agent"))
    pods = await running_on(client, "agent", 3)
    victim = pods[0]
    await client.patch("pods", victim["metadata"]["name"], {"status": {"phase": "Failed"}}, subresource="status")

    async def replaced():
        now = live(await pods_of(client, "agent"))
        names = {p["metadata"]["name"] for p in now}
        ok = len(now) == 3 and victim["metadata"]["name"] not in names and all(ready(p) for p in now)
        return now if ok else None
    await eventually(replaced, timeout=60, what="the failed pod replaced")
    reasons = [r for t, r, m in await events_for(client, "agent")]
    assert "FailedDaemonPod" in reasons
