"""NodeInfo: one node as the scheduler sees it, with the pods bound or assumed onto it.

A NodeInfo keeps running totals so that a filter is O(1) per node: summed requests (exact, and
the "non-zero" variant used by scoring), the host ports in use, and the pods that carry
inter-pod (anti-)affinity. ``add_pod``/``remove_pod`` keep those totals; each pod's contribution
is remembered by its key so a later, different copy of the same pod removes exactly what was
added. Plugins only read NodeInfos; the cache mutates them, and ``clone()`` gives preemption a
private copy to simulate removing victims.

``Snapshot`` is a fixed list of NodeInfos for one scheduling cycle, with lookups by name.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator

from scheduler import resources

_generation = itertools.count(1)


def pod_key(pod: dict) -> str:
    """A pod's identity in the cache: its uid, or namespace/name before it has one."""
    meta = pod.get("metadata") or {}
    return meta.get("uid") or f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


def pod_priority(pod: dict) -> int:
    """``spec.priority`` (set at admission from the PriorityClass); 0 when unset."""
    p = (pod.get("spec") or {}).get("priority")
    return int(p) if p is not None else 0


def has_affinity(pod: dict) -> bool:
    aff = (pod.get("spec") or {}).get("affinity") or {}
    return bool(aff.get("podAffinity") or aff.get("podAntiAffinity"))


def has_required_anti_affinity(pod: dict) -> bool:
    anti = ((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {}
    return bool(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))


class _PodEntry:
    __slots__ = ("pod", "requests", "nonzero", "ports")

    def __init__(self, pod: dict):
        self.pod = pod
        self.requests, self.nonzero = resources.requests_of(pod)
        self.ports = resources.host_ports(pod)


class NodeInfo:
    """Implements ``scheduler.framework.NodeInfo``.

    ``used_ports`` is a Counter of ``(hostIP, protocol, hostPort)`` (membership works as for a
    set). ``generation`` is unique across all NodeInfos and changes on every mutation, so a
    cache can tell which NodeInfos changed since its last snapshot, and plugins may remember
    per-node results by it. Mutate only through ``set_node``, ``add_pod`` and ``remove_pod``.
    """

    __slots__ = ("node", "name", "labels", "taints", "unschedulable", "allocatable", "pods",
                 "requested", "non_zero_requested", "used_ports", "pods_with_affinity",
                 "pods_with_required_anti_affinity", "generation", "_entries")

    def __init__(self, node: dict | None = None, pods: Iterable[dict] = ()):
        self.node: dict = {}
        self.name = ""
        self.labels: dict[str, str] = {}
        self.taints: list[dict] = []
        self.unschedulable = False
        self.allocatable: dict[str, int] = {}
        self.pods: list[dict] = []
        self.requested: dict[str, int] = {}
        self.non_zero_requested: dict[str, int] = {}
        self.used_ports: Counter[tuple[str, str, int]] = Counter()
        self.pods_with_affinity: list[dict] = []
        self.pods_with_required_anti_affinity: list[dict] = []
        self._entries: dict[str, _PodEntry] = {}
        self.generation = next(_generation)
        if node is not None:
            self.set_node(node)
        for p in pods:
            self.add_pod(p)

    def set_node(self, node: dict) -> None:
        """Replace the Node object (its labels, taints, allocatable); pods are kept."""
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        self.node = node
        self.name = meta.get("name", "")
        self.labels = meta.get("labels") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = resources.node_allocatable(node)
        self.generation = next(_generation)

    def add_pod(self, pod: dict) -> None:
        """Count ``pod`` on this node. Adding a pod already present replaces it."""
        key = pod_key(pod)
        if key in self._entries:
            self.remove_pod(pod)
        e = _PodEntry(pod)
        self._entries[key] = e
        self.pods.append(pod)
        req = self.requested
        for k, v in e.requests.items():
            req[k] = req.get(k, 0) + v
        nz = self.non_zero_requested
        for k in (resources.CPU, resources.MEMORY):
            nz[k] = nz.get(k, 0) + e.nonzero.get(k, 0)
        for p in e.ports:
            self.used_ports[p] += 1
        if has_affinity(pod):
            self.pods_with_affinity.append(pod)
        if has_required_anti_affinity(pod):
            self.pods_with_required_anti_affinity.append(pod)
        self.generation = next(_generation)

    def remove_pod(self, pod: dict) -> bool:
        """Stop counting the pod with ``pod``'s key; False when it was not on this node."""
        key = pod_key(pod)
        e = self._entries.pop(key, None)
        if e is None:
            return False
        old = e.pod
        self.pods = [p for p in self.pods if p is not old]
        req = self.requested
        for k, v in e.requests.items():
            left = req.get(k, 0) - v
            if left:
                req[k] = left
            else:
                req.pop(k, None)
        nz = self.non_zero_requested
        for k in (resources.CPU, resources.MEMORY):
            nz[k] = nz.get(k, 0) - e.nonzero.get(k, 0)
        for p in e.ports:
            self.used_ports[p] -= 1
            if self.used_ports[p] <= 0:
                del self.used_ports[p]
        self.pods_with_affinity = [p for p in self.pods_with_affinity if p is not old]
        self.pods_with_required_anti_affinity = [
            p for p in self.pods_with_required_anti_affinity if p is not old]
        self.generation = next(_generation)
        return True

    def swap_pod(self, pod: dict) -> bool:
        """Put ``pod`` in place of the counted pod with its key, keeping the counts and the
        generation: only for a newer copy of the same pod that differs in nothing a plugin
        reads (see ``SchedulerCache.add_pod``). False when no pod with its key is here."""
        e = self._entries.get(pod_key(pod))
        if e is None:
            return False
        old = e.pod
        e.pod = pod
        for pods in (self.pods, self.pods_with_affinity, self.pods_with_required_anti_affinity):
            for i, p in enumerate(pods):
                if p is old:
                    pods[i] = pod
                    break
        return True

    def has_pod(self, pod: dict) -> bool:
        return pod_key(pod) in self._entries

    def pod_requests(self, pod: dict) -> dict[str, int]:
        """The requests counted for a pod on this node (empty when it is not here)."""
        e = self._entries.get(pod_key(pod))
        return dict(e.requests) if e else {}

    def clone(self) -> NodeInfo:
        c = NodeInfo.__new__(NodeInfo)
        c.node = self.node
        c.name = self.name
        c.labels = self.labels
        c.taints = self.taints
        c.unschedulable = self.unschedulable
        c.allocatable = self.allocatable
        c.pods = list(self.pods)
        c.requested = dict(self.requested)
        c.non_zero_requested = dict(self.non_zero_requested)
        c.used_ports = Counter(self.used_ports)
        c.pods_with_affinity = list(self.pods_with_affinity)
        c.pods_with_required_anti_affinity = list(self.pods_with_required_anti_affinity)
        c._entries = dict(self._entries)
        c.generation = self.generation
        return c

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self.pods)}, requested={self.requested})"


class Snapshot:
    """Implements ``scheduler.framework.Snapshot``: the nodes of one cycle, in a stable order.

    A cache may keep one Snapshot and refresh it between cycles with ``set`` (add or replace a
    node's NodeInfo, typically a ``clone()`` of a changed one) and ``remove``; the lists of
    nodes with affinity pods are then kept up to date per changed node instead of rescanned
    (a rescan of every node happens on the next read after ``invalidate()``).
    """

    def __init__(self, nodes: Iterable[NodeInfo] = ()):
        self.nodes: list[NodeInfo] = list(nodes)
        self._by_name = {n.name: n for n in self.nodes}
        self._index = {n.name: i for i, n in enumerate(self.nodes)}
        self._aff: dict[str, NodeInfo] = {}
        self._anti: dict[str, NodeInfo] = {}
        self._with_affinity: list[NodeInfo] | None = None
        self._with_anti: list[NodeInfo] | None = None

    def get(self, name: str) -> NodeInfo | None:
        return self._by_name.get(name)

    def set(self, ni: NodeInfo) -> None:
        """Add a node (at the end) or replace the NodeInfo of a node already present."""
        i = self._index.get(ni.name)
        if i is None:
            self._index[ni.name] = len(self.nodes)
            self.nodes.append(ni)
        else:
            self.nodes[i] = ni
        self._by_name[ni.name] = ni
        self._track(ni.name, ni)

    def remove(self, name: str) -> None:
        i = self._index.pop(name, None)
        if i is None:
            return
        del self.nodes[i]
        del self._by_name[name]
        for j in range(i, len(self.nodes)):
            self._index[self.nodes[j].name] = j
        self._track(name, None)

    def _track(self, name: str, ni: NodeInfo | None) -> None:
        if self._with_affinity is None or self._with_anti is None:
            return                      # the next read rescans every node anyway
        for members, has in ((self._aff, ni is not None and ni.pods_with_affinity),
                             (self._anti, ni is not None and ni.pods_with_required_anti_affinity)):
            if has:
                members[name] = ni  # type: ignore[assignment]
            else:
                members.pop(name, None)
        self._with_affinity = list(self._aff.values())
        self._with_anti = list(self._anti.values())

    def invalidate(self) -> None:
        """Rescan which nodes have affinity pods at the next read (after NodeInfos were
        replaced or mutated other than through ``set``). Setting ``_with_affinity`` or
        ``_with_anti`` to None does the same."""
        self._with_affinity = None
        self._with_anti = None

    def _rescan(self) -> None:
        self._aff = {n.name: n for n in self.nodes if n.pods_with_affinity}
        self._anti = {n.name: n for n in self.nodes if n.pods_with_required_anti_affinity}
        self._with_affinity = list(self._aff.values())
        self._with_anti = list(self._anti.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.nodes)

    def pods(self) -> Iterator[tuple[dict, NodeInfo]]:
        for n in self.nodes:
            for p in n.pods:
                yield p, n

    @property
    def have_pods_with_affinity(self) -> list[NodeInfo]:
        if self._with_affinity is None or self._with_anti is None:
            self._rescan()
        return self._with_affinity  # type: ignore[return-value]

    @property
    def have_pods_with_required_anti_affinity(self) -> list[NodeInfo]:
        if self._with_affinity is None or self._with_anti is None:
            self._rescan()
        return self._with_anti  # type: ignore[return-value]
