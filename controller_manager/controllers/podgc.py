"""The pod garbage collector: force-deletes pods nothing else will ever clean up.

``PodGCController`` (``podgc``) has one key and runs a pass every ``GC_CHECK_PERIOD`` seconds of
the context clock, reading pods and nodes from informers. A pass, in this order:

* terminated pods (phase Succeeded or Failed) beyond ``config.terminated_pod_gc_threshold`` (a
  threshold of 0 or less turns this off) are deleted, evicted pods first, then oldest first by
  ``creationTimestamp`` (ties by name);
* terminating pods on a node that is not Ready and carries the ``node.kubernetes.io/out-of-service``
  taint are force-deleted (no kubelet will finish them);
* pods bound to a node the informer does not know are orphans once that node has been missing for
  ``QUARANTINE`` seconds and a live GET confirms it is gone (a node seen again, or still found by
  the GET, ends its quarantine); orphans get the ``DisruptionTarget`` condition (reason
  ``DeletionByPodGC``) with their phase set to Failed, and are force-deleted;
* terminating pods never bound to a node are force-deleted.

Force deletion first makes a pod that is not yet terminal Failed (server-side apply of its status
by field manager ``PodGC``), so a controller waiting on the phase sees the pod end even when a
finalizer keeps it, then deletes it with ``gracePeriodSeconds=0`` guarded by its uid. No Events
are written; the log lines and the ``pod_gc_collector_*`` metrics tell what was collected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, ClassVar

import aiohttp

from api import errors
from client.events import rfc3339
from client.informer import object_key
from controller_manager.base import Controller, ControllerContext
from controller_manager.common import condition

PODS = "pods"
NODES = "nodes"

GC_KEY = "podgc"
GC_CHECK_PERIOD = 20.0            # seconds between passes
QUARANTINE = 40.0                 # seconds a node must be missing before its pods are orphans
FIELD_MANAGER = "PodGC"
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
MAX_IN_FLIGHT = 20                # concurrent force deletions within one step of a pass

# Reasons, as the metrics label them.
TERMINATED = "terminated"
ORPHANED = "orphaned"
OUT_OF_SERVICE_REASON = "terminating_out_of_service"
UNSCHEDULED = "unscheduled_terminating"

_TERMINAL = ("Succeeded", "Failed")
_API_TROUBLE: tuple[type[BaseException], ...] = (errors.StatusError, aiohttp.ClientError, OSError, TimeoutError)


class _Metrics:
    """``pod_gc_collector_force_delete_pods_total`` and ``..._pod_errors_total`` by namespace and
    reason, one set per process (a registry refuses a metric name twice)."""

    _shared: _Metrics | None = None

    def __init__(self) -> None:
        import prometheus_client as prom

        labels = ["namespace", "reason"]
        self.deleted = prom.Counter("pod_gc_collector_force_delete_pods",
                                    "Pods deleted by the pod garbage collector", labels)
        self.errors = prom.Counter("pod_gc_collector_force_delete_pod_errors",
                                   "Errors deleting pods in the pod garbage collector", labels)

    @classmethod
    def shared(cls) -> _Metrics:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared


def is_terminated(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in _TERMINAL


def is_evicted(pod: dict) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def collection_order(pod: dict) -> tuple[bool, str, str]:
    """Sort key: evicted pods first, then by creationTimestamp, then by name. RFC 3339 stamps in
    UTC with whole seconds, as the API server writes them, sort as text."""
    md = pod.get("metadata") or {}
    return (not is_evicted(pod), md.get("creationTimestamp") or "", md.get("name") or "")


def is_node_ready(node: dict) -> bool:
    c = condition(node, "Ready")
    return c is not None and c.get("status") == "True"


def has_taint(node: dict, key: str) -> bool:
    return any(t.get("key") == key for t in (node.get("spec") or {}).get("taints") or [])


def _node_of(pod: dict) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def _terminating(pod: dict) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


class PodGCController(Controller):
    name: ClassVar[str] = "podgc"
    workers: ClassVar[int] = 1

    def __init__(self, ctx: ControllerContext):
        super().__init__(ctx)
        self.threshold = ctx.config.terminated_pod_gc_threshold
        self.pods = ctx.informers.informer_for(PODS)
        self.nodes = ctx.informers.informer_for(NODES)
        self.metrics = _Metrics.shared()
        # Node name -> clock.monotonic() at which its quarantine ends.
        self.quarantine: dict[str, float] = {}
        self.passes = 0
        self.enqueue(GC_KEY)

    async def reconcile(self, key: str) -> float | None:
        await self.gc()
        return GC_CHECK_PERIOD

    async def gc(self) -> None:
        """One pass over every pod; each step sees the same snapshot, and a pod collected by an
        earlier step is not tried again by a later one."""
        pods = self.pods.list()
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        done: set[str] = set()
        if self.threshold > 0:
            await self._gc_terminated(pods, done)
        await self._gc_out_of_service(pods, nodes, done)
        await self._gc_orphaned(pods, nodes, done)
        await self._gc_unscheduled_terminating(pods, done)
        self.passes += 1

    # --- the four kinds of garbage ---------------------------------------------------------

    async def _gc_terminated(self, pods: list[dict], done: set[str]) -> None:
        terminated = [p for p in pods if is_terminated(p)]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        self.log.info("Garbage collecting pods", numPods=excess, threshold=self.threshold)
        terminated.sort(key=collection_order)
        await self._force_delete_all(terminated[:excess], TERMINATED, done)

    async def _gc_out_of_service(self, pods: list[dict], nodes: dict[str, dict], done: set[str]) -> None:
        doomed = []
        for pod in pods:
            if not _terminating(pod) or not _node_of(pod):
                continue
            node = nodes.get(_node_of(pod))
            if node is not None and not is_node_ready(node) and has_taint(node, OUT_OF_SERVICE):
                doomed.append(pod)
        if not doomed:
            return
        self.log.info("Garbage collecting pods that are terminating on node tainted with "
                      f"{OUT_OF_SERVICE}", numPods=len(doomed))
        doomed.sort(key=collection_order)
        await self._force_delete_all(doomed, OUT_OF_SERVICE_REASON, done)

    async def _gc_orphaned(self, pods: list[dict], nodes: dict[str, dict], done: set[str]) -> None:
        now = self.clock.monotonic()
        for pod in pods:
            name = _node_of(pod)
            if name and name not in nodes and name not in self.quarantine:
                self.quarantine[name] = now + QUARANTINE
        deleted = await self._deleted_nodes(now, nodes)
        if not deleted:
            return
        stamp = rfc3339(self.clock.now())
        target = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                  "message": "PodGC: node no longer exists", "lastTransitionTime": stamp}
        orphans = [p for p in pods if _node_of(p) in deleted]
        for pod in orphans:
            self.log.info("Found orphaned Pod assigned to the Node, deleting", pod=object_key(pod),
                          node=_node_of(pod))

        async def one(pod: dict) -> None:
            if await self._force_delete(pod, ORPHANED, done, target):
                self.log.info("Forced deletion of orphaned Pod succeeded", pod=object_key(pod))
        await self._bounded(one, orphans)

    async def _deleted_nodes(self, now: float, nodes: dict[str, dict]) -> set[str]:
        """Names whose quarantine is over and whose node a live GET does not find. Every node
        whose quarantine is over leaves it; one still missing next pass starts a new one."""
        due = [name for name, until in self.quarantine.items() if until <= now]
        deleted: set[str] = set()
        for name in due:
            del self.quarantine[name]
            if name in nodes:
                continue
            try:
                await self.client.get(NODES, name)
            except errors.NotFound:
                deleted.add(name)
            except _API_TROUBLE as e:
                self.log.error("Error while getting node", node=name, error=str(e))
        return deleted

    async def _gc_unscheduled_terminating(self, pods: list[dict], done: set[str]) -> None:
        doomed = [p for p in pods if _terminating(p) and not _node_of(p)]
        for pod in doomed:
            self.log.info("Found unscheduled terminating Pod not assigned to any Node, deleting",
                          pod=object_key(pod))

        async def one(pod: dict) -> None:
            if await self._force_delete(pod, UNSCHEDULED, done):
                self.log.info("Forced deletion of unscheduled terminating Pod succeeded", pod=object_key(pod))
        await self._bounded(one, doomed)

    # --- force deletion --------------------------------------------------------------------

    async def _force_delete_all(self, pods: list[dict], reason: str, done: set[str]) -> None:
        async def one(pod: dict) -> None:
            await self._force_delete(pod, reason, done)
        await self._bounded(one, pods)

    @staticmethod
    async def _bounded(fn: Any, pods: Iterable[dict]) -> None:
        gate = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def run(pod: dict) -> None:
            async with gate:
                await fn(pod)
        await asyncio.gather(*(run(p) for p in pods))

    async def _force_delete(self, pod: dict, reason: str, done: set[str],
                            target: dict | None = None) -> bool:
        """Make ``pod`` Failed (with ``target`` as a condition) unless it is terminal already, then
        delete it at once. True when the pod is deleted or was gone already; API trouble is logged
        and counted, and the pod is tried again on a later pass if it is still garbage then."""
        md = pod["metadata"]
        uid, key = md.get("uid"), object_key(pod)
        if uid in done:
            return True
        done.add(uid)
        self.log.info("PodGC is force deleting Pod", pod=key)
        self.metrics.deleted.labels(md.get("namespace") or "", reason).inc()
        try:
            if not is_terminated(pod):
                status: dict[str, Any] = {"phase": "Failed"}
                if target is not None:
                    status["conditions"] = [dict(target)]
                body = {"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": md["name"], "namespace": md["namespace"]}, "status": status}
                await self.client.patch(PODS, md["name"], body, md["namespace"], patch_type="apply",
                                        subresource="status", field_manager=FIELD_MANAGER, force=True)
            await self.client.delete(PODS, md["name"], md["namespace"], grace_period_seconds=0,
                                     preconditions={"uid": uid} if uid else None)
        except errors.NotFound:
            return True
        except errors.Conflict:
            # The uid precondition failed: a new pod of the same name, which is not this garbage.
            return True
        except _API_TROUBLE as e:
            self.metrics.errors.labels(md.get("namespace") or "", reason).inc()
            self.log.error("failed to force delete pod", pod=key, reason=reason, error=str(e))
            return False
        return True
