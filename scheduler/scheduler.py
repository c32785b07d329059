"""The scheduling loop: one pod at a time through the framework, bindings in the background.

The *scheduling cycle* of a pod runs on the event loop without yielding from the snapshot to the
assumption (preemption aside), so the cache it reads cannot change under it and two pods are
never placed against the same free capacity: pop the pod, refresh the snapshot, filter (from
where the last cycle stopped, up to the share of nodes kube-scheduler would score), score, pick,
then *assume* the pod onto the node in the cache, reserve and permit. The *binding cycle* (PreBind,
Bind through ``pods/binding``, PostBind) runs as its own task, so the next pod is scheduled while
the API call is in flight. A failed binding forgets the assumption and requeues the pod.

A pod that fits nowhere runs the PostFilter plugins (preemption; a nominated node is written
to ``status.nominatedNodeName``), gets the ``PodScheduled=False`` condition (reason
``Unschedulable``) and a ``FailedScheduling`` event, and waits in the unschedulable queue.
While a nominated pod waits for its victims to go, other pods of no higher priority are placed
as if it already ran on its nominated node, so they do not take the room it preempted for.

Informers feed everything: unscheduled pods whose ``schedulerName`` is one of the profiles go to
the queue; scheduled pods and nodes to the cache; node and pod changes that could make a waiting
pod fit move the unschedulable pods back.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from api import errors
from client.clock import REAL, Clock
from client.events import EventRecorder
from client.informer import SharedInformerFactory
from scheduler import queue as q
from scheduler import server as metrics
from scheduler.cache import SchedulerCache, node_name_of
from scheduler.framework import Code, CycleState, Framework, PluginError, Snapshot, Status
from scheduler.nodeinfo import pod_priority
from scheduler.profile import SchedulerConfig, parse_config
from scheduler.queue import QueuedPod, SchedulingQueue

log = structlog.get_logger("scheduler")

COMPONENT = "default-scheduler"
# Plugins whose verdict depends on other pods: an assigned pod appearing or changing may let a
# pod they rejected fit (for other plugins only node changes and pod deletions can).
POD_AWARE_PLUGINS = frozenset({"InterPodAffinity", "PodTopologySpread"})
NO_NODES = "no nodes available to schedule pods"


def _meta(pod: dict) -> dict:
    return pod.get("metadata") or {}


def pod_ref(pod: dict) -> str:
    m = _meta(pod)
    return f"{m.get('namespace') or 'default'}/{m.get('name', '')}"


def _node_changed(old: dict, new: dict) -> bool:
    """Whether a node update could let a waiting pod fit (not heartbeats or condition times)."""
    om, nm = _meta(old), _meta(new)
    if om.get("labels") != nm.get("labels"):
        return True
    if (old.get("spec") or {}) != (new.get("spec") or {}):
        return True
    os_, ns_ = old.get("status") or {}, new.get("status") or {}
    return os_.get("allocatable") != ns_.get("allocatable") or os_.get("capacity") != ns_.get("capacity")


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _condition(pod: dict, type_: str) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == type_:
            return c
    return None


class Scheduler:
    """Schedules the pods of every profile in ``config``; also the ``Handle`` plugins receive
    (``client``, ``snapshot``, ``clock``, ``priority_class``, ``namespace_labels``)."""

    def __init__(self, client: Any, config: SchedulerConfig | None = None, *, clock: Clock = REAL,
                 recorder: EventRecorder | None = None, rng: random.Random | None = None,
                 informers: SharedInformerFactory | None = None):
        self.client = client
        self.config = config or parse_config(None)
        self.clock = clock
        self.rng = rng or random.Random()
        self.recorder = recorder if recorder is not None else EventRecorder(client, COMPONENT, clock=clock)
        self.cache = SchedulerCache()
        self.snapshot: Snapshot | None = None
        self.frameworks: dict[str, Framework] = {
            p.scheduler_name: Framework(p, self) for p in self.config.profiles}
        first = next(iter(self.frameworks.values()))
        self.queue = SchedulingQueue(first.less, key=first.sort_key, clock=clock,
                                     initial_backoff=self.config.pod_initial_backoff_seconds,
                                     max_backoff=self.config.pod_max_backoff_seconds)
        self.next_start_index = 0
        self.factory = informers or SharedInformerFactory(client, clock=clock)
        self.ready = False
        self._binding_tasks: set[asyncio.Task[Any]] = set()
        self._status_tasks: set[asyncio.Task[Any]] = set()
        self._pod_informer = self._node_informer = self._pc_informer = self._ns_informer = None
        self.nominated: dict[str, tuple[dict, str]] = {}   # pod key -> (pod, nominated node)
        self.scheduled = 0            # pods bound by this scheduler
        self.failed_attempts = 0      # attempts that ended unschedulable or in error

    # -- Handle --------------------------------------------------------------------------------

    def priority_class(self, name: str) -> dict | None:
        if self._pc_informer is None:
            return None
        return self._pc_informer.get(name)

    def namespace_labels(self, name: str) -> dict | None:
        if self._ns_informer is None:
            return None
        ns = self._ns_informer.get(name)
        return None if ns is None else (_meta(ns).get("labels") or {})

    # -- informers -----------------------------------------------------------------------------

    def responsible_for(self, pod: dict) -> bool:
        spec = pod.get("spec") or {}
        return (spec.get("schedulerName") or "default-scheduler") in self.frameworks

    def _on_pod_add(self, pod: dict) -> None:
        if _terminal(pod):
            return
        if node_name_of(pod):
            self.cache.add_pod(pod)
            self._move(q.ASSIGNED_POD_ADD, POD_AWARE_PLUGINS)
        elif self.responsible_for(pod) and not _meta(pod).get("deletionTimestamp"):
            self._track_nomination(pod)
            self.queue.add(pod)
            metrics.child(metrics.QUEUE_INCOMING, q.ACTIVE, "PodAdd").inc()

    def _on_pod_update(self, old: dict, new: dict) -> None:
        if _terminal(new):
            # Finished pods hold no resources: as if deleted.
            if not _terminal(old):
                self._on_pod_delete(old)
            return
        if node_name_of(new):
            if not node_name_of(old):
                self.queue.delete(new)
                self.nominated.pop(q.pod_key(new), None)
            self.cache.update_pod(old, new)
            if _meta(old).get("labels") != _meta(new).get("labels"):
                self._move(q.ASSIGNED_POD_UPDATE, POD_AWARE_PLUGINS)
        elif self.responsible_for(new):
            if _meta(new).get("deletionTimestamp"):
                self.queue.delete(new)
                self.nominated.pop(q.pod_key(new), None)
            else:
                self._track_nomination(new)
                self.queue.update(old, new)

    def _on_pod_delete(self, pod: dict) -> None:
        self.cache.remove_pod(pod)
        self.nominated.pop(q.pod_key(pod), None)
        if node_name_of(pod):
            self._move(q.ASSIGNED_POD_DELETE)
        else:
            self.queue.delete(pod)

    def _track_nomination(self, pod: dict) -> None:
        """Nominations written by an earlier leader (or by this one) as the informer shows them."""
        node = (pod.get("status") or {}).get("nominatedNodeName")
        key = q.pod_key(pod)
        if node:
            self.nominated[key] = (pod, node)

    def _with_nominated(self, pod: dict, key: str, snapshot: Snapshot) -> list[tuple[Any, Any]]:
        """Count the pods nominated elsewhere with at least ``pod``'s priority on their nominated
        nodes, in this cycle's snapshot; returns (original, overlay) NodeInfos to undo it."""
        if not self.nominated:
            return []
        prio = pod_priority(pod)
        overlays: dict[str, tuple[Any, Any]] = {}
        for other_key, (other, node) in self.nominated.items():
            if other_key == key or pod_priority(other) < prio:
                continue
            if node in overlays:
                ni = overlays[node][1]
            else:
                original = snapshot.get(node)
                if original is None:
                    continue
                ni = original.clone()  # type: ignore[attr-defined]
                overlays[node] = (original, ni)
                snapshot.set(ni)  # type: ignore[attr-defined]
            ni.add_pod(dict(other, spec=dict(other.get("spec") or {}, nodeName=node)))
        return list(overlays.values())

    def _on_node_add(self, node: dict) -> None:
        self.cache.add_node(node)
        self._move(q.NODE_ADD)

    def _on_node_update(self, old: dict, new: dict) -> None:
        self.cache.update_node(new)
        if _node_changed(old, new):
            self._move(q.NODE_UPDATE)

    def _on_node_delete(self, node: dict) -> None:
        self.cache.remove_node(node)

    def _move(self, event: str, plugins: frozenset[str] | None = None) -> None:
        n = self.queue.move_all_to_active_or_backoff(event, plugins)
        if n:
            metrics.child(metrics.QUEUE_INCOMING, q.ACTIVE, event).inc(n)
            log.debug("unschedulable pods requeued", cluster_event=event, pods=n)

    def start_informers(self) -> None:
        f = self.factory
        self._node_informer = f.informer_for("nodes")
        self._pod_informer = f.informer_for("pods")
        self._pc_informer = f.informer_for("priorityclasses.scheduling.k8s.io")
        self._ns_informer = f.informer_for("namespaces")
        self._node_informer.add_event_handler(on_add=self._on_node_add, on_update=self._on_node_update,
                                              on_delete=self._on_node_delete)
        self._pod_informer.add_event_handler(on_add=self._on_pod_add, on_update=self._on_pod_update,
                                             on_delete=self._on_pod_delete)
        f.start()

    async def wait_for_sync(self) -> None:
        await self.factory.wait_for_cache_sync()
        # Nodes first so that bound pods land on known nodes before the first cycle.
        for inf in (self._node_informer, self._pod_informer):
            if inf is not None:
                await inf.wait_for_handlers()

    # -- running -------------------------------------------------------------------------------

    async def run(self, on_synced: Callable[[], None] | None = None) -> None:
        """Watch, then schedule until cancelled. ``on_synced`` is called once the caches hold
        what the first lists returned, before the first pod is scheduled."""
        metrics.bind_gauges(self)
        self.start_informers()
        try:
            await self.wait_for_sync()
            if on_synced is not None:
                on_synced()
            self.queue.start()
            self.ready = True
            log.info("scheduler started", profiles=list(self.frameworks), nodes=self.cache.node_count())
            await self.schedule_loop()
        finally:
            self.ready = False
            await self.stop()

    async def stop(self) -> None:
        await self.queue.close()
        tasks = list(self._binding_tasks) + list(self._status_tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.factory.stop()
        with contextlib.suppress(Exception):
            await self.recorder.stop(flush=False)

    async def schedule_loop(self) -> None:
        while True:
            qp = await self.queue.pop()
            if qp is None:
                return
            try:
                await self.schedule_one(qp)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug in a plugin must not stop the scheduler
                log.exception("scheduling attempt failed", pod=qp.key)
                self._fail(qp, self.queue.scheduling_cycle, f"scheduler error: {e}", error=True)
            # Let informers, bindings and the HTTP server run between pods.
            await asyncio.sleep(0)

    # -- one scheduling cycle --------------------------------------------------------------------

    def framework_for(self, pod: dict) -> Framework | None:
        return self.frameworks.get((pod.get("spec") or {}).get("schedulerName") or "default-scheduler")

    def _percentage(self, fw: Framework) -> int | None:
        p = fw.profile.percentage_of_nodes_to_score
        return p if p is not None else self.config.percentage_of_nodes_to_score

    async def schedule_one(self, qp: QueuedPod) -> str | None:
        """Try to place one popped pod. Returns the node it was assumed onto, or None."""
        pod = qp.pod
        key = qp.key
        fw = self.framework_for(pod)
        if (fw is None or self.queue.in_flight_deleted(key) or node_name_of(pod)
                or _meta(pod).get("deletionTimestamp") or self.cache.has_pod(pod)):
            self.queue.done(key)
            return None
        start = self.clock.monotonic()
        cycle = self.queue.scheduling_cycle
        snapshot = self.cache.update_snapshot()
        self.snapshot = snapshot
        overlays = self._with_nominated(pod, key, snapshot)
        try:
            return await self._schedule_cycle(fw, qp, snapshot, start, cycle)
        finally:
            for original, overlay in overlays:
                # Unless a refresh meanwhile already replaced it with the cache's current state.
                if snapshot.get(original.name) is overlay:
                    snapshot.set(original)  # type: ignore[attr-defined]

    async def _schedule_cycle(self, fw: Framework, qp: QueuedPod, snapshot: Snapshot, start: float,
                              cycle: int) -> str | None:
        pod, key = qp.pod, qp.key
        state = CycleState()
        if not snapshot.nodes:
            self._fail(qp, cycle, f"0/0 nodes are available: {NO_NODES}.", fw=fw)
            return None
        try:
            feasible, statuses, self.next_start_index = fw.find_feasible(
                state, pod, snapshot, self.next_start_index, self._percentage(fw))
        except PluginError as e:
            self._fail(qp, cycle, str(e), fw=fw, error=True)
            return None
        if not feasible:
            await self._no_fit(fw, qp, cycle, state, statuses, len(snapshot.nodes))
            return None
        if len(feasible) == 1:
            host = feasible[0].name
        else:
            try:
                names, totals = fw.score_totals(state, pod, feasible)
            except PluginError as e:
                self._fail(qp, cycle, str(e), fw=fw, error=True)
                return None
            host = fw.pick_best(names, totals, self.rng)
        metrics.ALGORITHM_DURATION.observe(self.clock.monotonic() - start)
        assumed = dict(pod)
        assumed["spec"] = dict(pod.get("spec") or {}, nodeName=host)
        self.cache.assume_pod(assumed, host)
        try:
            st = fw.run_reserve(state, assumed, host)
            if st.ok:
                st, _ = fw.run_permit(state, assumed, host)
                if st.code == Code.WAIT:
                    st = Status.error("Permit plugins that wait are not supported", plugin=st.plugin)
        except Exception as e:
            log.exception("reserve or permit failed", pod=key)
            st = Status.error(f"reserve or permit failed: {e}")
        if not st.ok:
            fw.run_unreserve(state, assumed, host)
            self.cache.forget_pod(assumed)
            self._fail(qp, cycle, st.message or f"rejected by {st.plugin}", fw=fw,
                       error=st.code == Code.ERROR, plugins={st.plugin})
            return None
        log.debug("pod assumed", pod=key, node=host, feasible=len(feasible), nodes=len(snapshot.nodes))
        task = asyncio.get_running_loop().create_task(
            self._binding_cycle(fw, state, qp, assumed, host, start), name=f"scheduler:bind:{key}")
        self._binding_tasks.add(task)
        task.add_done_callback(self._binding_tasks.discard)
        return host

    async def _no_fit(self, fw: Framework, qp: QueuedPod, cycle: int, state: CycleState,
                      statuses: dict[str, Status], num_nodes: int) -> None:
        pod = qp.pod
        nominated: str | None = None
        preemption_msg = ""
        if fw.post_filter_plugins:
            metrics.PREEMPTION_ATTEMPTS.inc()
            nominated, pf = await fw.run_post_filter(state, pod, statuses)
            if pf.code == Code.ERROR:
                log.warning("post filter failed", pod=qp.key, plugin=pf.plugin, error=pf.message)
                preemption_msg = f"preemption: {pf.message}"
            elif not pf.ok:
                preemption_msg = pf.message
        msg = fw.failure_message(pod, statuses, num_nodes, preemption_msg)
        plugins = {st.plugin for st in statuses.values() if st.plugin}
        if nominated:
            log.debug("pod nominated", pod=qp.key, node=nominated)
            self.nominated[qp.key] = (pod, nominated)
        self._fail(qp, cycle, msg, fw=fw, plugins=plugins, nominated=nominated)

    def _fail(self, qp: QueuedPod, cycle: int, message: str, *, fw: Framework | None = None,
              error: bool = False, plugins: set[str] | None = None, nominated: str | None = None,
              requeue: str | None = None) -> None:
        """Record a failed attempt: metrics, the event, the pod's condition, and requeue."""
        pod = qp.pod
        profile = fw.scheduler_name if fw is not None else "unknown"
        result = "error" if error else "unschedulable"
        self.failed_attempts += 1
        metrics.child(metrics.SCHEDULE_ATTEMPTS, result, profile).inc()
        log.debug("pod not scheduled", pod=qp.key, result=result, message=message, nominated=nominated)
        if (requeue or ("backoff" if error else "unschedulable")) == "backoff":
            self.queue.add_backoff(qp)
        else:
            self.queue.add_unschedulable(qp, cycle, plugins)
        if self.queue.in_flight_deleted(qp.key):
            return
        self.recorder.warning(pod, "FailedScheduling", message)
        reason = "SchedulerError" if error else "Unschedulable"
        self._spawn_status(self._update_status(pod, reason, message, nominated))

    def _spawn_status(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="scheduler:pod-status")
        self._status_tasks.add(task)
        task.add_done_callback(self._status_tasks.discard)

    async def _update_status(self, pod: dict, reason: str, message: str, nominated: str | None) -> None:
        """Set PodScheduled=False (and the nomination) unless the pod already says so."""
        cur = _condition(pod, "PodScheduled")
        status: dict[str, Any] = {}
        if not (cur and cur.get("status") == "False" and cur.get("reason") == reason
                and cur.get("message") == message):
            from client.events import rfc3339
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": reason,
                                     "message": message, "lastProbeTime": None,
                                     "lastTransitionTime": rfc3339(self.clock.now())}]
        if nominated and (pod.get("status") or {}).get("nominatedNodeName") != nominated:
            status["nominatedNodeName"] = nominated
        if not status:
            return
        m = _meta(pod)
        try:
            await self.client.patch("pods", m.get("name", ""), {"status": status}, m.get("namespace") or "default",
                                    patch_type="strategic", subresource="status")
        except errors.NotFound:
            pass
        except (errors.StatusError, aiohttp.ClientError, TimeoutError) as e:
            log.warning("could not update pod status", pod=pod_ref(pod), error=str(e))

    # -- binding cycle ---------------------------------------------------------------------------

    async def _binding_cycle(self, fw: Framework, state: CycleState, qp: QueuedPod, assumed: dict, host: str,
                             start: float) -> None:
        try:
            st = await fw.run_pre_bind(state, assumed, host)
            if st.ok:
                st = await fw.run_bind(state, assumed, host)
        except asyncio.CancelledError:
            fw.run_unreserve(state, assumed, host)
            self.cache.forget_pod(assumed)
            raise
        except Exception as e:
            log.exception("binding failed", pod=qp.key)
            st = Status.error(str(e))
        profile = fw.scheduler_name
        if not st.ok:
            fw.run_unreserve(state, assumed, host)
            self.cache.forget_pod(assumed)
            metrics.child(metrics.SCHEDULE_ATTEMPTS, "error", profile).inc()
            self.failed_attempts += 1
            self.queue.add_backoff(qp)
            # The capacity it held is free again: pods waiting for room may fit now.
            self._move(q.ASSIGNED_POD_DELETE)
            msg = f"Binding rejected: {st.message}"
            log.debug("binding failed", pod=qp.key, node=host, error=st.message)
            if not self.queue.in_flight_deleted(qp.key):
                self.recorder.warning(qp.pod, "FailedScheduling", msg)
            return
        self.cache.finish_binding(assumed)
        self.queue.done(qp.key)
        self.nominated.pop(qp.key, None)
        fw.run_post_bind(state, assumed, host)
        self.scheduled += 1
        now = self.clock.monotonic()
        metrics.child(metrics.SCHEDULE_ATTEMPTS, "scheduled", profile).inc()
        metrics.child(metrics.E2E_DURATION, "scheduled", profile).observe(now - start)
        metrics.child(metrics.ATTEMPT_DURATION, "scheduled", profile).observe(now - start)
        if qp.initial_attempt is not None:
            metrics.child(metrics.SLI_DURATION, str(min(qp.attempts, 16))).observe(now - qp.initial_attempt)
        metrics.POD_ATTEMPTS.observe(qp.attempts)
        log.debug("pod bound", pod=qp.key, node=host, attempts=qp.attempts)
        self.recorder.normal(qp.pod, "Scheduled", f"Successfully assigned {qp.key} to {host}")

    async def wait_for_bindings(self) -> None:
        while self._binding_tasks:
            await asyncio.gather(*list(self._binding_tasks), return_exceptions=True)

    # -- explanations ----------------------------------------------------------------------------

    def explain(self, namespace: str, name: str) -> dict | None:
        """``Framework.explain`` for a pod in the informer cache, with where the queue holds it."""
        pod = self._pod_informer.get(f"{namespace}/{name}") if self._pod_informer is not None else None
        if pod is None:
            return None
        fw = self.framework_for(pod)
        out: dict[str, Any]
        if fw is None:
            sn = (pod.get("spec") or {}).get("schedulerName")
            return {"pod": f"{namespace}/{name}", "nodes": [], "summary": f"the pod asks for scheduler "
                    f"{sn!r}, which this scheduler does not run", "suggestions": [
                        f"set spec.schedulerName to one of {sorted(self.frameworks)}"]}
        if node_name_of(pod):
            return {"pod": f"{namespace}/{name}", "nodes": [], "node": node_name_of(pod),
                    "summary": f"the pod is bound to node {node_name_of(pod)}", "suggestions": []}
        out = fw.explain(pod, self.cache.update_snapshot())
        out["queue"] = self.queue.where(q.pod_key(pod))
        cond = _condition(pod, "PodScheduled")
        if cond and cond.get("status") == "False":
            out["lastFailure"] = cond.get("message")
        if (pod.get("spec") or {}).get("schedulingGates"):
            gates = [g.get("name") for g in pod["spec"]["schedulingGates"]]
            out["suggestions"] = [f"remove the scheduling gates {gates}: the pod is not tried until then",
                                  *out.get("suggestions", [])]
        return out
