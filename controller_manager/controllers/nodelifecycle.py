"""Node lifecycle: notices nodes that stopped reporting, taints nodes by condition, and evicts
pods from nodes with NoExecute taints they do not tolerate.

``NodeLifecycleController`` (``nodelifecycle``) looks at every node each ``node_monitor_period``
(the node's key requeues itself). A node is *heard from* when its Lease in ``kube-node-lease`` is
renewed or its Ready condition changes (heartbeat or status), timed on this controller's own
clock, so clock skew between nodes and controller does not matter. Silent for longer than
``node_monitor_grace_period`` (``NODE_STARTUP_GRACE`` if it never posted Ready), its Ready,
MemoryPressure, DiskPressure and PIDPressure conditions become Unknown (``NodeStatusUnknown``,
"Kubelet stopped posting node status."); when that takes Ready away from True, its pods are
marked not ready and a ``NodeNotReady`` event is written. Taints follow the conditions:

* NoSchedule: ``not-ready`` (Ready False), ``unreachable`` (Ready Unknown), ``memory-pressure``,
  ``disk-pressure``, ``pid-pressure``, ``network-unavailable`` and ``unschedulable``
  (``spec.unschedulable``), each present exactly while its cause holds.
* NoExecute, with ``timeAdded``: ``not-ready`` or ``unreachable`` while Ready is False or Unknown,
  removed when the node is Ready again. Putting a NoExecute taint on a node that had none passes
  its zone's token bucket (burst 1): that is what rate-limits evictions. A zone (the node's
  region and zone labels) evicts at ``node_eviction_rate`` nodes per second, at a trickle when
  most of a large zone is not ready, not at all when most of a small one is; when no node in any
  zone is ready, no node gets a NoExecute taint (and those there are removed) until one is ready
  again. Swapping one taint for the other is immediate.

``TaintEvictionController`` (``taint-eviction-controller``) keys pods: a pod on a node with
NoExecute taints it does not all tolerate is deleted at once; if it tolerates them for a while
(the shortest ``tolerationSeconds`` among the tolerations used) it is deleted when that has
passed, counted from when this controller first saw it exposed; a pod tolerating them forever,
or whose node lost the taints, is left alone (a pending eviction is cancelled). Evictions set the
pod's ``DisruptionTarget`` condition first and are announced by ``TaintManagerEviction`` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from api import errors
from client.events import rfc3339
from client.informer import Informer, copy_object
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import condition
from controller_manager.taints import (
    DISK_PRESSURE,
    MEMORY_PRESSURE,
    NETWORK_UNAVAILABLE,
    NO_EXECUTE,
    NO_SCHEDULE,
    NOT_READY,
    PID_PRESSURE,
    UNREACHABLE,
    UNSCHEDULABLE,
    min_toleration_seconds,
    no_execute_taints,
    tolerations_for,
)

NODES = "nodes"
PODS = "pods"
LEASES = "leases.coordination.k8s.io"
LEASE_NAMESPACE = "kube-node-lease"
NODE_STARTUP_GRACE = 60.0
POD_NODE_INDEX = "spec.nodeName"

MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_REASON = "NodeStatusNeverUpdated"
NEVER_MESSAGE = "Kubelet never posted node status."

# (condition type, status) -> NoSchedule taint key.
NO_SCHEDULE_BY_CONDITION: dict[tuple[str, str], str] = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): MEMORY_PRESSURE,
    ("DiskPressure", "True"): DISK_PRESSURE,
    ("PIDPressure", "True"): PID_PRESSURE,
    ("NetworkUnavailable", "True"): NETWORK_UNAVAILABLE,
}
MANAGED_NO_SCHEDULE = frozenset(NO_SCHEDULE_BY_CONDITION.values()) | {UNSCHEDULABLE}
MANAGED_NO_EXECUTE = frozenset({NOT_READY, UNREACHABLE})

EVICTION_COMPONENT = "taint-eviction-controller"

# Zone disruption, with kube-controller-manager's defaults.
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
UNHEALTHY_ZONE_THRESHOLD = 0.55        # share of not-ready nodes that makes a zone partially disrupted
LARGE_CLUSTER_SIZE = 50                # zones this big keep evicting slowly when partially disrupted
SECONDARY_EVICTION_RATE = 0.01
ZONE_REFRESH = 1.0                     # seconds between recounts of the zones
NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


def zone_of(node: dict) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    region, zone = labels.get(REGION_LABEL, ""), labels.get(ZONE_LABEL, "")
    return f"{region}:{zone}" if region or zone else ""


def zone_state(ready: int, not_ready: int) -> str:
    if ready == 0 and not_ready > 0:
        return FULL
    if not_ready > 2 and not_ready / (ready + not_ready) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL
    return NORMAL


def _pod_node(pod: dict) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


def pods_by_node(informer: Informer) -> Informer:
    """The pod informer with an index by ``spec.nodeName`` (added once, whoever asks first)."""
    try:
        informer.add_indexer(POD_NODE_INDEX, _pod_node)
    except ValueError:
        pass
    return informer


class TokenBucket:
    """``qps`` tokens a second, at most ``burst`` saved; ``qps <= 0`` never gives one."""

    def __init__(self, qps: float, burst: int, clock: Any):
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.last = clock.monotonic()

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if self.qps > 0:
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now

    def try_take(self) -> bool:
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self) -> float | None:
        """Seconds until a token is there (None: never)."""
        self._refill()
        if self.tokens >= 1.0:
            return 0.0
        return None if self.qps <= 0 else (1.0 - self.tokens) / self.qps


@dataclass
class Health:
    probe: float                  # clock.monotonic() when the node was last heard from
    heartbeat: str | None         # Ready condition lastHeartbeatTime last seen
    transition: str | None        # Ready condition lastTransitionTime last seen
    ready_status: str | None      # Ready status last seen (after our own writes)
    renew: str | None             # Lease renewTime last seen
    written: int = 0              # resourceVersion of our last write to the node


def _rv(obj: dict) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _ready_fields(node: dict) -> tuple[str | None, str | None, str | None]:
    c = condition(node, "Ready")
    if c is None:
        return None, None, None
    return c.get("lastHeartbeatTime"), c.get("lastTransitionTime"), c.get("status")


def _status_of(node: dict, ctype: str) -> str | None:
    c = condition(node, ctype)
    return c.get("status") if c is not None else None


def unknown_conditions(node: dict, stamp: str) -> list[dict] | None:
    """The node's conditions with the monitored ones made Unknown; None when nothing changes."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    by_type = {c.get("type"): c for c in conditions}
    changed = False
    created = (node.get("metadata") or {}).get("creationTimestamp") or stamp
    for ctype in MONITORED_CONDITIONS:
        c = by_type.get(ctype)
        if c is None:
            conditions.append({"type": ctype, "status": "Unknown", "reason": NEVER_REASON, "message": NEVER_MESSAGE,
                               "lastHeartbeatTime": created, "lastTransitionTime": stamp})
            changed = True
        elif c.get("status") != "Unknown":
            c.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE, lastTransitionTime=stamp)
            changed = True
    return conditions if changed else None


def wanted_no_schedule(node: dict) -> set[str]:
    want = set()
    for (ctype, status), key in NO_SCHEDULE_BY_CONDITION.items():
        if _status_of(node, ctype) == status:
            want.add(key)
    if (node.get("spec") or {}).get("unschedulable"):
        want.add(UNSCHEDULABLE)
    return want


class NodeLifecycleController(Controller):
    name: ClassVar[str] = "nodelifecycle"
    workers: ClassVar[int] = 5

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.cfg = ctx.config
        self.recorder = ctx.recorder("node-controller")
        self.nodes = ctx.informers.informer_for(NODES)
        self.leases = ctx.informers.informer_for(LEASES, LEASE_NAMESPACE)
        self.pods = pods_by_node(ctx.informers.informer_for(PODS))
        self.health: dict[str, Health] = {}
        self.buckets: dict[str, TokenBucket] = {}     # NoExecute tainting, per zone
        self.zone_states: dict[str, str] = {}
        self.all_disrupted = False
        self._zones_at: float | None = None
        self.nodes.add_event_handler(on_add=self.enqueue, on_update=self._node_updated, on_delete=self._node_deleted)

    def _node_updated(self, old: dict, new: dict) -> None:
        # Periodic passes do the monitoring; a change of Ready is acted on at once.
        if _status_of(old, "Ready") != _status_of(new, "Ready") or \
                bool((old.get("spec") or {}).get("unschedulable")) != bool((new.get("spec") or {}).get("unschedulable")):
            self.enqueue(new)

    def _node_deleted(self, node: dict) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        if self.health.pop(name, None) is not None:
            self.recorder.normal(node, "RemovingNode", f"Removing Node {name} from Controller")

    # --- zones -----------------------------------------------------------------------------

    def _refresh_zones(self) -> None:
        """Recount ready nodes per zone (at most every ``ZONE_REFRESH`` seconds) and set each
        zone's tainting rate: the configured rate when normal or wholly down (a zone outage is
        real), a trickle in a partially disrupted large zone, none in a small one. When no zone
        has a ready node the trouble is most likely ours, not the nodes': no NoExecute taints at
        all until some node is ready again, and then nodes not yet marked Unknown get a fresh
        grace period."""
        now = self.clock.monotonic()
        if self._zones_at is not None and now - self._zones_at < ZONE_REFRESH:
            return
        self._zones_at = now
        counts: dict[str, list[int]] = {}
        for node in self.nodes.list():
            c = counts.setdefault(zone_of(node), [0, 0])
            c[0 if _status_of(node, "Ready") == "True" else 1] += 1
        states = {zone: zone_state(r, nr) for zone, (r, nr) in counts.items()}
        all_disrupted = bool(states) and all(st == FULL for st in states.values())
        if all_disrupted and not self.all_disrupted:
            self.log.warning("Controller detected that all Nodes are not-Ready. Entering master disruption mode.")
        elif self.all_disrupted and not all_disrupted:
            self.log.info("Controller detected that some Nodes are Ready. Exiting master disruption mode.")
            for h in self.health.values():
                h.probe = now
        self.all_disrupted = all_disrupted
        for zone, st in states.items():
            if self.zone_states.get(zone) != st or zone not in self.buckets:
                if zone in self.zone_states:
                    self.log.info("zone state changed", zone=zone, state=st, previous=self.zone_states[zone])
                self.buckets[zone] = TokenBucket(self._rate(st, sum(counts[zone])), 1, self.clock)
        self.zone_states = states

    def _rate(self, state: str, size: int) -> float:
        if state == PARTIAL:
            return SECONDARY_EVICTION_RATE if size > LARGE_CLUSTER_SIZE else 0.0
        return self.cfg.node_eviction_rate

    # --- one node --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            self.health.pop(key, None)
            return None
        period = self.cfg.node_monitor_period
        h = self.health.get(key)
        if h is not None and _rv(node) < h.written:
            # The informer has not caught up with our own last write: acting on this copy would
            # redo it (and spend a NoExecute token on a taint already there).
            return period
        node = await self._monitor(key, node)
        if node is None:
            return None
        self._refresh_zones()
        wait = await self._taint(key, node)
        return min(period, wait) if wait else period

    async def _monitor(self, name: str, node: dict) -> dict | None:
        """Update what we heard from the node; mark it Unknown when silent too long. Returns the
        node as it now is (None if it vanished)."""
        now = self.clock.monotonic()
        heartbeat, transition, status = _ready_fields(node)
        lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        h = self.health.get(name)
        if h is None:
            h = self.health[name] = Health(now, heartbeat, transition, status, renew)
            self.recorder.normal(node, "RegisteredNode", f"Registered Node {name} in Controller")
        else:
            # Our own Unknown write keeps lastHeartbeatTime: only the node's writes change it.
            if heartbeat != h.heartbeat or (renew and renew != h.renew):
                h.probe = now
            h.heartbeat, h.transition, h.renew = heartbeat, transition, renew or h.renew
        grace = self.cfg.node_monitor_grace_period if status is not None else NODE_STARTUP_GRACE
        observed = status
        if now - h.probe > grace:
            conditions = unknown_conditions(node, rfc3339(self.clock.now()))
            if conditions is not None:
                self.log.info("node stopped posting status; marking it Unknown", node=name,
                              silent_for=round(now - h.probe, 1))
                patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                         "status": {"conditions": conditions}}
                try:
                    node = await self.client.patch(NODES, name, patch, subresource="status")
                except errors.NotFound:
                    return None
                h.written = _rv(node)
                h.heartbeat, h.transition, status = _ready_fields(node)
        if observed == "True" and status != "True":
            self.recorder.normal(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            await self._mark_pods_not_ready(name)
        h.ready_status = status
        return node

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        stamp = rfc3339(self.clock.now())
        for pod in self.pods.by_index(POD_NODE_INDEX, node_name):
            c = condition(pod, "Ready")
            if c is None or c.get("status") == "False":
                continue
            md = pod["metadata"]
            new = copy_object(pod)
            for cond in new["status"]["conditions"]:
                if cond.get("type") == "Ready":
                    cond.update(status="False", lastTransitionTime=stamp)
            try:
                await self.client.update_status(PODS, new, md["namespace"])
            except (errors.NotFound, errors.Conflict):
                continue
            self.recorder.warning(pod, "NodeNotReady", "Node is not ready")

    async def _taint(self, name: str, node: dict) -> float | None:
        """Bring the node's managed taints in line with its conditions. Returns seconds until a
        rate-limited NoExecute taint may be tried again, if one is waiting."""
        taints = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
        ready = _status_of(node, "Ready")
        want_ns = wanted_no_schedule(node)
        want_ne = None if self.all_disrupted else {"False": NOT_READY, "Unknown": UNREACHABLE}.get(ready or "")
        bucket = self.buckets.get(zone_of(node))
        if bucket is None:
            bucket = self.buckets[zone_of(node)] = TokenBucket(self.cfg.node_eviction_rate, 1, self.clock)
        have_ne = [t for t in taints if t.get("effect") == NO_EXECUTE and t.get("key") in MANAGED_NO_EXECUTE]
        retry: float | None = None
        new = [t for t in taints
               if not (t.get("effect") == NO_SCHEDULE and t.get("key") in MANAGED_NO_SCHEDULE and t["key"] not in want_ns)
               and not (t.get("effect") == NO_EXECUTE and t.get("key") in MANAGED_NO_EXECUTE and t["key"] != want_ne)]
        present_ns = {t.get("key") for t in new if t.get("effect") == NO_SCHEDULE}
        for key in sorted(want_ns - present_ns):
            new.append({"key": key, "effect": NO_SCHEDULE})
        if want_ne is not None and not any(t.get("key") == want_ne for t in have_ne):
            # A swap (the other one was there) is immediate; a first NoExecute taint is rate-limited.
            if have_ne or bucket.try_take():
                new.append({"key": want_ne, "effect": NO_EXECUTE, "timeAdded": rfc3339(self.clock.now())})
            else:
                retry = bucket.wait()
                # Keep the other taints in line meanwhile; this one waits for its token.
        if new == taints:
            return retry
        added = [t["key"] + ":" + t["effect"] for t in new if t not in taints]
        removed = [t["key"] + ":" + t["effect"] for t in taints if t not in new]
        self.log.info("updating node taints", node=name, added=added, removed=removed)
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": new or None}}
        try:
            written = await self.client.patch(NODES, name, patch)
        except errors.NotFound:
            return None
        h = self.health.get(name)
        if h is not None:
            h.written = _rv(written)
        return retry


@dataclass
class Scheduled:
    created: float      # clock.monotonic() when the pod was first seen exposed
    trigger: float      # when it is to be evicted


class TaintEvictionController(Controller):
    name: ClassVar[str] = "taint-eviction-controller"
    workers: ClassVar[int] = 8

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.recorder = ctx.recorder(EVICTION_COMPONENT)
        self.nodes = ctx.informers.informer_for(NODES)
        self.pods = pods_by_node(ctx.informers.informer_for(PODS))
        self.scheduled: dict[str, Scheduled] = {}
        self.evicted = 0
        self.nodes.add_event_handler(on_add=self._node_changed, on_update=self._node_updated)
        self.pods.add_event_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)

    def _node_changed(self, node: dict) -> None:
        if no_execute_taints(node):
            self._enqueue_pods_of(node)

    def _node_updated(self, old: dict, new: dict) -> None:
        if no_execute_taints(old) != no_execute_taints(new):
            self._enqueue_pods_of(new)

    def _enqueue_pods_of(self, node: dict) -> None:
        for pod in self.pods.by_index(POD_NODE_INDEX, node["metadata"]["name"]):
            self.enqueue(pod)

    def _pod_changed(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.enqueue(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
        if ospec.get("nodeName") != nspec.get("nodeName") or ospec.get("tolerations") != nspec.get("tolerations"):
            self.enqueue(new)

    def _pod_deleted(self, pod: dict) -> None:
        md = pod.get("metadata") or {}
        self.scheduled.pop(f"{md.get('namespace')}/{md.get('name')}", None)

    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self.scheduled.pop(key, None)
            return None
        node_name = (pod.get("spec") or {}).get("nodeName")
        taints = no_execute_taints(self.nodes.get(node_name)) if node_name else []
        if not taints:
            self._cancel(key, pod)
            return None
        tolerated, used = tolerations_for((pod.get("spec") or {}).get("tolerations") or [], taints)
        if not tolerated:
            await self._evict(key, pod)
            return None
        seconds = min_toleration_seconds(used)
        if seconds is None:
            self._cancel(key, pod)
            return None
        now = self.clock.monotonic()
        sched = self.scheduled.get(key)
        created = sched.created if sched is not None else now
        self.scheduled[key] = Scheduled(created, created + seconds)
        if now >= created + seconds:
            await self._evict(key, pod)
            return None
        return created + seconds - now

    def _cancel(self, key: str, pod: dict) -> None:
        if self.scheduled.pop(key, None) is not None:
            self.log.info("Cancelling deletion of Pod", pod=key)
            self.recorder.normal(pod, "TaintManagerEviction", f"Cancelling deletion of Pod {key}")

    async def _evict(self, key: str, pod: dict) -> None:
        md = pod["metadata"]
        self.log.info("Marking for deletion Pod", pod=key, node=pod["spec"].get("nodeName"))
        self.recorder.normal(pod, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        stamp = rfc3339(self.clock.now())
        target = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                  "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": stamp}
        try:
            await self.client.patch(PODS, md["name"], {"metadata": {"uid": md["uid"]}, "status": {"conditions": [target]}},
                                    md["namespace"], subresource="status", patch_type="strategic")
            await self.client.delete(PODS, md["name"], md["namespace"], preconditions={"uid": md["uid"]})
        except (errors.NotFound, errors.Conflict):
            pass
        self.scheduled.pop(key, None)
        self.evicted += 1
