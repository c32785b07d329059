"""Simulated Nodes and their Leases: the objects, registration, heartbeats.

``NodeKeeper`` registers every node (creating it, or taking over one a previous run left), then
keeps two per-node loops on work queues whose workers share the process's write gate:

* the Lease ``kube-node-lease/<node>`` renewed every ``lease_renew_interval`` (an update
  compare-and-swapped on the last version we wrote, as the node agent does);
* the Node's status (conditions with a fresh ``lastHeartbeatTime``) every
  ``node_status_update_frequency``, and at once when someone else reports the node not Ready
  (the node lifecycle controller after a restart of this process).

Stopping renews nothing more: the nodes stay and go NotReady when their Leases expire, as real
nodes whose agent died would. ``delete_all`` removes them (``--cleanup``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from api import errors
from client.clock import REAL, Clock
from client.leaderelection import micro_time
from client.rest import Client
from client.workqueue import ItemExponentialFailureRateLimiter, WorkQueue, run_workers
from kubelet.sim.config import SimConfig
from kubelet.sim.writes import LEASE, NODE, WriteGate

log = structlog.get_logger("kubelet.sim.nodes")

LEASES = "leases.coordination.k8s.io"
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_PORT = 10250
SIMULATED_ANNOTATION = "sim.navarch.io/simulated"

# Condition type -> (status, reason, message) of a healthy node.
HEALTHY_CONDITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure (simulated node)"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure (simulated node)"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "enough process IDs (simulated node)"),
    ("Ready", "True", "KubeletReady", "simulated node agent is posting ready status"),
)


class NotSimulated(Exception):
    """A Node with one of our names exists but was not registered by a simulator."""


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def node_labels(cfg: SimConfig, index: int) -> dict[str, str]:
    name = cfg.node_name(index)
    labels = {
        "kubernetes.io/arch": cfg.arch,
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": "simulated",
    }
    zone = cfg.zone(index)
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    labels.update(cfg.labels)
    return labels


def node_conditions(now: float, previous: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Healthy conditions heartbeating at ``now``; a condition keeps its lastTransitionTime while
    its status stays what it was."""
    before = {c.get("type"): c for c in previous or []}
    stamp = rfc3339(now)
    out = []
    for ctype, status, reason, message in HEALTHY_CONDITIONS:
        old = before.get(ctype) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append({"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": stamp, "lastTransitionTime": since or stamp})
    return out


def node_status(cfg: SimConfig, index: int, now: float,
                previous_conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    name = cfg.node_name(index)
    resources = {"cpu": cfg.cpu, "memory": cfg.memory, "pods": str(cfg.pods),
                 "ephemeral-storage": cfg.ephemeral_storage, "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": node_conditions(now, previous_conditions),
        "addresses": [{"type": "InternalIP", "address": cfg.node_ip(index)},
                      {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": _stable_id("machine", name),
            "systemUUID": _stable_id("system", name),
            "bootID": _stable_id("boot", name),
            "kernelVersion": "6.1.0-sim",
            "osImage": "Navarch simulated node",
            "containerRuntimeVersion": "sim://0.1.0",
            "kubeletVersion": cfg.kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": cfg.arch,
        },
    }


def build_node(cfg: SimConfig, index: int, now: float) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cfg.taints:
        spec["taints"] = [dict(t) for t in cfg.taints]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": cfg.node_name(index), "labels": node_labels(cfg, index),
                         "annotations": {SIMULATED_ANNOTATION: "true"}},
            "spec": spec,
            "status": node_status(cfg, index, now)}


def build_lease(cfg: SimConfig, node: str, node_uid: str | None, now: float) -> dict[str, Any]:
    md: dict[str, Any] = {"name": node, "namespace": LEASE_NAMESPACE}
    if node_uid:
        # Owned by its Node, so the garbage collector removes it with the Node.
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
            "spec": {"holderIdentity": node, "leaseDurationSeconds": cfg.lease_duration,
                     "renewTime": micro_time(now)}}


def is_ready(node: dict[str, Any]) -> bool:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


class NodeKeeper:
    """Registers the simulated nodes and keeps their Leases and statuses fresh."""

    def __init__(self, client: Client, cfg: SimConfig, writes: WriteGate, *, clock: Clock = REAL,
                 cached_node: Callable[[str], dict[str, Any] | None] = lambda name: None):
        self.client = client
        self.cfg = cfg
        self.writes = writes
        self.clock = clock
        # The node as the process last saw it (the simulator's node informer).
        self.cached_node = cached_node
        self.uids: dict[str, str] = {}
        self.leases: dict[str, dict[str, Any]] = {}
        self.registered = 0
        self.taken_over = 0
        self.lease_renewals = 0
        self.status_updates = 0
        self._stopping = False
        limiter = ItemExponentialFailureRateLimiter(0.2, 10.0)
        self.lease_queue = WorkQueue("sim-node-lease", clock=clock, rate_limiter=limiter)
        self.status_queue = WorkQueue("sim-node-status", clock=clock,
                                      rate_limiter=ItemExponentialFailureRateLimiter(0.2, 10.0))

    # -- registration --------------------------------------------------------------------

    async def register_all(self) -> None:
        """Create (or take over) every node; returns once each exists. Leases and heartbeats
        begin per node as soon as it is registered."""
        async def one(index: int) -> None:
            for attempt in range(10):
                try:
                    await self.register(index)
                    return
                except (errors.StatusError, OSError, TimeoutError) as e:
                    if isinstance(e, errors.StatusError) and e.code in (400, 401, 403, 422):
                        raise
                    log.warning("node registration failed; retrying", node=self.cfg.node_name(index),
                                error=str(e), attempt=attempt)
                    await self.clock.sleep(min(0.5 * 2 ** attempt, 10.0))
            await self.register(index)

        indices = range(self.cfg.start_index, self.cfg.start_index + self.cfg.count)
        try:
            # A task group, so that one node failing for good stops registering the others.
            async with asyncio.TaskGroup() as group:
                for i in indices:
                    group.create_task(one(i), name=f"sim:register:{i}")
        except* (NotSimulated, errors.StatusError, OSError, TimeoutError) as failed:
            raise failed.exceptions[0] from None

    async def register(self, index: int) -> None:
        name = self.cfg.node_name(index)
        node = build_node(self.cfg, index, self.clock.now())
        try:
            async with self.writes.slot(NODE):
                created = await self.client.create("nodes", node)
            self.uids[name] = created["metadata"]["uid"]
            self.registered += 1
            self.status_queue.add_after(name, self.cfg.node_status_update_frequency)
        except errors.AlreadyExists:
            await self._take_over(index, node)
            self.taken_over += 1
            self.status_queue.add(name)
        self.lease_queue.add(name)

    async def _take_over(self, index: int, node: dict[str, Any]) -> None:
        """A node of ours left by an earlier run: bring its labels up to date (taints are the
        admin's once registered) and let the status loop report it Ready at once. A Node of that
        name that no simulator registered is refused rather than hijacked."""
        name = node["metadata"]["name"]
        existing = await self.client.get("nodes", name)
        annotations = (existing.get("metadata") or {}).get("annotations") or {}
        if annotations.get(SIMULATED_ANNOTATION) != "true":
            raise NotSimulated(f"node {name} exists and is not a simulated node (no {SIMULATED_ANNOTATION} "
                               f"annotation); choose another --name-prefix or --start-index")
        patch = {"metadata": {"uid": existing["metadata"]["uid"], "labels": node["metadata"]["labels"],
                              "annotations": node["metadata"]["annotations"]}}
        async with self.writes.slot(NODE):
            current = await self.client.patch("nodes", name, patch)
        self.uids[name] = current["metadata"]["uid"]

    # -- loops -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve both queues until cancelled."""
        n = max(1, self.cfg.max_inflight)
        await asyncio.gather(run_workers(self.lease_queue, self.renew_lease, n),
                             run_workers(self.status_queue, self.sync_status, n))

    def stop(self) -> None:
        self._stopping = True
        self.lease_queue.shut_down()
        self.status_queue.shut_down()

    async def renew_lease(self, name: str) -> float | None:
        if self._stopping or name not in self.uids:
            return None
        lease = self.leases.get(name)
        try:
            async with self.writes.slot(LEASE):
                now = self.clock.now()           # once the write may go: renewTime is not stale
                if lease is None:
                    try:
                        lease = await self.client.create(LEASES, build_lease(self.cfg, name, self.uids.get(name),
                                                                             now), LEASE_NAMESPACE)
                    except errors.AlreadyExists:
                        lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
                        lease = self._renewed(lease, name, now)
                        lease = await self.client.update(LEASES, lease, LEASE_NAMESPACE)
                else:
                    lease = await self.client.update(LEASES, self._renewed(lease, name, now), LEASE_NAMESPACE)
        except (errors.Conflict, errors.NotFound):
            # Someone else wrote or removed it: start again from what the server has.
            self.leases.pop(name, None)
            raise
        self.leases[name] = lease
        self.lease_renewals += 1
        return self.cfg.lease_renew_interval

    def _renewed(self, lease: dict[str, Any], name: str, now: float) -> dict[str, Any]:
        spec = dict(lease.get("spec") or {})
        spec.update(holderIdentity=name, leaseDurationSeconds=self.cfg.lease_duration,
                    renewTime=micro_time(now))
        out = dict(lease)
        out["spec"] = spec
        uid = self.uids.get(name)
        owners = (lease.get("metadata") or {}).get("ownerReferences") or []
        if uid and [o.get("uid") for o in owners] != [uid]:
            # Left by a Node of this name that was deleted since: belong to the current one.
            md = dict(lease.get("metadata") or {})
            md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid}]
            out["metadata"] = md
        return out

    async def sync_status(self, name: str) -> float | None:
        if self._stopping or name not in self.uids:
            return None
        index = self.cfg.node_index(name)
        if index is None:
            return None
        cached = self.cached_node(name)
        previous = ((cached or {}).get("status") or {}).get("conditions")
        status = node_status(self.cfg, index, self.clock.now(), previous)
        try:
            async with self.writes.slot(NODE):
                await self.client.patch("nodes", name, {"status": status}, subresource="status")
        except errors.NotFound:
            self.node_deleted({"metadata": {"name": name, "uid": self.uids.get(name)}})
            return None
        self.status_updates += 1
        return self.cfg.node_status_update_frequency

    def node_changed(self, node: dict[str, Any]) -> None:
        """Informer hook: a node of ours reported not Ready by someone else is set right at once."""
        name = (node.get("metadata") or {}).get("name", "")
        if name in self.uids and not self._stopping and not is_ready(node):
            self.status_queue.add(name)

    def node_deleted(self, node: dict[str, Any]) -> None:
        """Informer hook: a node of ours deleted by someone is given up, as a node agent whose
        Node is removed stops reporting (it registers again only when restarted)."""
        md = node.get("metadata") or {}
        name = md.get("name", "")
        if name in self.uids and md.get("uid") in (None, self.uids[name]):
            del self.uids[name]
            self.leases.pop(name, None)
            log.warning("simulated node was deleted; no longer acting for it", node=name)

    def manages(self, name: str) -> bool:
        return name in self.uids

    # -- cleanup ---------------------------------------------------------------------------

    async def delete_all(self) -> None:
        async def one(name: str) -> None:
            for resource, ns in ((LEASES, LEASE_NAMESPACE), ("nodes", None)):
                try:
                    async with self.writes.slot(NODE):
                        await self.client.delete(resource, name, ns)
                except errors.NotFound:
                    pass

        # Only the nodes this process registered or took over: never a Node it refused.
        await asyncio.gather(*(one(n) for n in list(self.uids)), return_exceptions=True)
