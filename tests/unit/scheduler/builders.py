"""Small builders for scheduler tests: pods, nodes, NodeInfos and snapshots as plain dicts."""

from __future__ import annotations

import itertools
from typing import Any

from api import errors
from scheduler.framework import CycleState, Framework
from scheduler.nodeinfo import NodeInfo, Snapshot
from scheduler.profile import build_profile

_uid = itertools.count(1)


def make_pod(name: str = "p", *, namespace: str = "default", cpu: str | None = None,
             memory: str | None = None, ephemeral: str | None = None, extra: dict[str, str] | None = None,
             containers: list[dict] | None = None, init_containers: list[dict] | None = None,
             overhead: dict | None = None, labels: dict | None = None, node_selector: dict | None = None,
             affinity: dict | None = None, tolerations: list[dict] | None = None,
             host_ports: list[int | tuple] | None = None, spread: list[dict] | None = None,
             priority: int | None = None, node_name: str | None = None, nominated: str | None = None,
             preemption_policy: str | None = None, owner: bool = False, uid: str | None = None,
             start_time: str | None = None, terminating: bool = False) -> dict:
    if containers is None:
        req: dict[str, Any] = {}
        if cpu is not None:
            req["cpu"] = cpu
        if memory is not None:
            req["memory"] = memory
        if ephemeral is not None:
            req["ephemeral-storage"] = ephemeral
        req.update(extra or {})
        c: dict[str, Any] = {"name": "c", "image": "busybox", "resources": {"requests": req} if req else {}}
        if host_ports:
            ports = []
            for hp in host_ports:
                if isinstance(hp, tuple):
                    port, proto, ip = (list(hp) + ["TCP", ""])[:3]
                else:
                    port, proto, ip = hp, "TCP", ""
                p = {"containerPort": port, "hostPort": port, "protocol": proto}
                if ip:
                    p["hostIP"] = ip
                ports.append(p)
            c["ports"] = ports
        containers = [c]
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or f"uid-{next(_uid)}",
                            "labels": dict(labels or {}), "creationTimestamp": "2026-01-01T00:00:00Z"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                    "uid": "rs-uid", "controller": True}]
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:10Z"
    spec: dict[str, Any] = {"containers": containers, "schedulerName": "default-scheduler"}
    for key, val in (("initContainers", init_containers), ("overhead", overhead),
                     ("nodeSelector", node_selector), ("affinity", affinity), ("tolerations", tolerations),
                     ("topologySpreadConstraints", spread), ("priority", priority), ("nodeName", node_name),
                     ("preemptionPolicy", preemption_policy)):
        if val is not None:
            spec[key] = val
    status: dict[str, Any] = {"phase": "Pending"}
    if nominated:
        status["nominatedNodeName"] = nominated
    if start_time:
        status["startTime"] = start_time
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def container(name: str = "c", cpu: str | None = None, memory: str | None = None,
              restart_policy: str | None = None) -> dict:
    req = {}
    if cpu:
        req["cpu"] = cpu
    if memory:
        req["memory"] = memory
    c: dict[str, Any] = {"name": name, "image": "busybox", "resources": {"requests": req}}
    if restart_policy:
        c["restartPolicy"] = restart_policy
    return c


def make_node(name: str = "n1", *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
              ephemeral: str | None = None, extra: dict[str, str] | None = None, labels: dict | None = None,
              zone: str | None = None, taints: list[dict] | None = None, unschedulable: bool = False) -> dict:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    if ephemeral:
        alloc["ephemeral-storage"] = ephemeral
    alloc.update(extra or {})
    lab = {"kubernetes.io/hostname": name, **(labels or {})}
    if zone:
        lab["topology.kubernetes.io/zone"] = zone
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": lab}, "spec": spec,
            "status": {"capacity": dict(alloc), "allocatable": alloc,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict:
    t = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


def node_info(node: dict | None = None, pods: list[dict] = (), **kw: Any) -> NodeInfo:  # type: ignore[assignment]
    return NodeInfo(node if node is not None else make_node(**kw), pods)


def snapshot(*infos: NodeInfo) -> Snapshot:
    return Snapshot(infos)


def framework(profile: dict | None = None, handle: Any = None) -> Framework:
    return Framework(build_profile(profile), handle)


def run_filter(plugin: Any, pod: dict, infos: list[NodeInfo]) -> dict[str, Any]:
    """PreFilter (when the plugin has one) then Filter on each node: node name -> Status."""
    state = CycleState()
    snap = Snapshot(infos)
    from scheduler.framework import SNAPSHOT_KEY, Code
    state[SNAPSHOT_KEY] = snap
    pre = getattr(plugin, "pre_filter", None)
    if pre is not None:
        _, st = pre(state, pod, snap)
        if st.code == Code.SKIP:
            from scheduler.framework import Status
            return {ni.name: Status() for ni in infos}
        if not st.ok:
            return {ni.name: st for ni in infos}
    return {ni.name: plugin.filter(state, pod, ni) for ni in infos}


def run_score(plugin: Any, pod: dict, infos: list[NodeInfo], all_infos: list[NodeInfo] | None = None
              ) -> dict[str, int]:
    """PreScore, Score on each node, then normalization: node name -> score."""
    from scheduler.framework import SNAPSHOT_KEY, Code
    state = CycleState()
    state[SNAPSHOT_KEY] = Snapshot(all_infos if all_infos is not None else infos)
    pre = getattr(plugin, "pre_score", None)
    if pre is not None:
        st = pre(state, pod, infos)
        if st.code == Code.SKIP:
            return {ni.name: 0 for ni in infos}
        assert st.ok, st
    scores = {}
    for ni in infos:
        s, st = plugin.score(state, pod, ni)
        assert st.ok, st
        scores[ni.name] = s
    norm = getattr(plugin, "normalize_scores", None)
    if norm is not None:
        assert norm(state, pod, scores).ok
    return scores


class FakeClient:
    """Records bind and delete calls; ``fail`` makes them raise a typed API error."""

    def __init__(self, fail: errors.StatusError | None = None):
        self.binds: list[tuple[str, str, str]] = []
        self.deletes: list[tuple[str, str, dict | None]] = []
        self.patches: list[tuple] = []
        self.fail = fail

    async def bind(self, ns, name, node):
        if self.fail:
            raise self.fail
        self.binds.append((ns, name, node))

    async def patch(self, resource, name, patch, namespace=None, *, patch_type="merge", subresource=None, **kw):
        if self.fail:
            raise self.fail
        self.patches.append((namespace, name, subresource, patch_type, patch))
        return {}

    async def delete(self, resource, name, namespace=None, *, preconditions=None, **kw):
        self.deletes.append((namespace, name, preconditions))
        return {}


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str, str, str]] = []

    def normal(self, obj, reason, message):
        self.events.append((obj["metadata"]["name"], "Normal", reason, message))


class Handle:
    def __init__(self, client=None, priority_classes=None):
        self.client = client or FakeClient()
        self.recorder = Recorder()
        self.snapshot = None
        self.clock = None
        self.classes = priority_classes or {}

    def priority_class(self, name):
        return self.classes.get(name)
