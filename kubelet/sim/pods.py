"""Playing the node agent for the pods bound to simulated nodes.

``PodSimulator.sync(key)`` is a reconcile step on a work queue (a key is never synced twice at
once, and several wake-ups of one key fold into one sync): it reads the pod from the informer's
cache, advances its simulated life to now (``lifecycle``), writes the resulting status through
``pods/status`` when it differs from what was last written, and returns when the pod next needs
a look (its start, exit, restart or kill). So no pod holds a task of its own: waiting pods are
entries in the work queue's timer heap, and status writes are coalesced per pod.

Status writes are merge patches carrying ``metadata.uid`` as a precondition, so a pod deleted
and created again under the same name never receives its predecessor's status. A pod being
deleted is killed after ``min(its grace period, termination_delay)``: its containers are
reported terminated, then the deletion is confirmed with a DELETE of grace period 0, as the node
agent does. Pods whose node is not ours are ignored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from api import errors
from client.clock import REAL, Clock
from client.events import EventRecorder, object_reference
from client.informer import object_key
from client.rest import Client
from client.workqueue import ItemExponentialFailureRateLimiter, WorkQueue
from kubelet.sim import lifecycle
from kubelet.sim.config import SimConfig
from kubelet.sim.ipam import PodIPs, RangeFull
from kubelet.sim.lifecycle import RUNNING, Behaviour, PodState, Timing
from kubelet.sim.podstatus import build_status, owned_part
from kubelet.sim.writes import POD, WriteGate

log = structlog.get_logger("kubelet.sim.pods")

FINISHED_MEMORY = 10_000
MIN_REQUEUE = 0.001


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class PodSimulator:
    def __init__(self, client: Client, cfg: SimConfig, writes: WriteGate, *,
                 pod_cache: Callable[[str], dict[str, Any] | None],
                 node_cache: Callable[[str], dict[str, Any] | None] = lambda name: None,
                 manages: Callable[[str], bool] = lambda name: True, clock: Clock = REAL,
                 recorder: EventRecorder | None = None):
        self.client = client
        self.cfg = cfg
        self.writes = writes
        self.clock = clock
        self.pod_cache = pod_cache
        self.node_cache = node_cache
        # Whether we still act for a node (not for one deleted under us).
        self.manages = manages
        # Events as the node agent records them (Pulled, Created, Started, BackOff, Killing); off
        # by default, since at scale they would outnumber every other write.
        self.recorder = recorder
        self.timing = Timing(cfg.pod_startup_delay, cfg.termination_delay, cfg.restart_backoff,
                             cfg.restart_backoff_max)
        self.states: dict[str, PodState] = {}
        self.ranges: dict[str, PodIPs] = {}
        # Addresses the configuration gives each node (by index): worked out once, not per sync.
        self._node_ips: dict[int, str] = {}
        self._default_cidrs: dict[int, str] = {}
        self.queue = WorkQueue("sim-pods", clock=clock, rate_limiter=ItemExponentialFailureRateLimiter(0.05, 30.0))
        # UIDs whose deletion we confirmed: late watch events about them are not a new pod.
        self._finished: deque[str] = deque(maxlen=FINISHED_MEMORY)
        self._finished_set: set[str] = set()
        self.status_writes = 0
        self.deletions = 0

    # -- informer handlers -----------------------------------------------------------------

    def node_of(self, pod: dict[str, Any]) -> str | None:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        return node if node and self.cfg.node_index(node) is not None and self.manages(node) else None

    def on_add(self, pod: dict[str, Any]) -> None:
        if self.node_of(pod) is not None:
            self.queue.add(object_key(pod))

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        key = object_key(new)
        st = self.states.get(key)
        if st is None:
            if self.node_of(new) is not None:
                self.queue.add(key)
            return
        omd, nmd = old.get("metadata") or {}, new.get("metadata") or {}
        if (nmd.get("uid") != st.uid or self.node_of(new) != st.node
                or nmd.get("deletionTimestamp") != omd.get("deletionTimestamp")
                or nmd.get("deletionGracePeriodSeconds") != omd.get("deletionGracePeriodSeconds")
                or nmd.get("annotations") != omd.get("annotations")):
            self.queue.add(key)
        elif _rv(new) > st.written_rv and owned_part(new.get("status")) != st.echo:
            # Someone else rewrote the status we own: say it again, as the node agent would.
            self.queue.add(key)

    def on_delete(self, pod: dict[str, Any]) -> None:
        key = object_key(pod)
        if key in self.states:
            self.queue.add(key)

    # -- the reconcile step ----------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        pod = self.pod_cache(key)
        st = self.states.get(key)
        node = self.node_of(pod) if pod is not None else None
        uid = ((pod or {}).get("metadata") or {}).get("uid", "")
        if st is not None and (pod is None or st.uid != uid or st.node != node):
            self._forget(key, st)
            st = None
        if pod is None or node is None or uid in self._finished_set:
            return None
        now = self.clock.now()
        behaviour = Behaviour.of(pod)
        if st is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return None                          # finished before we looked: nothing to play
            st = lifecycle.adopt(pod, node, now, behaviour, self.timing)
            if behaviour.problems:
                log.warning("ignoring bad simulation annotations", pod=key, problems=behaviour.problems)
            if st.ip and not self._is_host_network(pod):
                self._range(node).adopt(st.ip)
            self.states[key] = st
        md = pod.get("metadata") or {}
        if md.get("deletionTimestamp"):
            if st.kill_at is None:
                grace = float(md.get("deletionGracePeriodSeconds") or 0)
                st.kill_at = now + min(grace, self.timing.termination_delay)
            if now >= st.kill_at:
                await self._kill(key, pod, st, behaviour, now)
                return None
        if st.terminal:
            return None
        before = (st.run, st.stage)
        lifecycle.advance(st, now, behaviour, self.timing)
        self._record(pod, st, before)
        if st.stage != lifecycle.PENDING and st.ip is None:
            self._assign_ip(key, pod, st)
        if st.terminal:
            self._release_ip(pod, st)
        await self._report(key, pod, st, now)
        due = lifecycle.next_due(st)              # None once deleted
        return None if due is None else max(due - self.clock.now(), MIN_REQUEUE)

    async def _kill(self, key: str, pod: dict[str, Any], st: PodState, behaviour: Behaviour, now: float) -> None:
        if not st.terminal:
            before = (st.run, st.stage)
            lifecycle.advance(st, now, behaviour, self.timing)
            self._record(pod, st, before)
            if self.recorder is not None and st.stage == RUNNING:
                for c in (pod.get("spec") or {}).get("containers") or []:
                    self.recorder.normal(self._ref(pod, c), "Killing", f"Stopping container {c.get('name')}")
            lifecycle.kill(st, now)
        self._release_ip(pod, st)
        ns, name = key.split("/", 1)
        # A failed status write is retried (the state stays KILLED, so the retry only reports
        # and confirms); the confirmation below is final either way.
        await self._report(key, pod, st, now)
        try:
            async with self.writes.slot(POD):
                await self.client.delete("pods", name, ns, grace_period_seconds=0,
                                         preconditions={"uid": st.uid})
        except (errors.NotFound, errors.Conflict):
            pass                                     # already gone, or a new pod of that name
        st.deleted = True
        self.deletions += 1
        self._remember_finished(st.uid)
        self.states.pop(key, None)

    async def _report(self, key: str, pod: dict[str, Any], st: PodState, now: float) -> None:
        index = self.cfg.node_index(st.node)
        assert index is not None
        desired = build_status(pod, st, self._node_ip(index), now)
        stale = _rv(pod) > st.written_rv and owned_part(pod.get("status")) != st.echo
        if desired == st.written and not stale:
            return
        ns, name = key.split("/", 1)
        try:
            async with self.writes.slot(POD):
                stored = await self.client.patch("pods", name, {"metadata": {"uid": st.uid}, "status": desired},
                                                 ns, subresource="status")
        except errors.NotFound:
            st.deleted = True                        # gone: its DELETED event follows
            self._forget(key, st)
            return
        st.written = desired
        st.echo = owned_part(stored.get("status"))
        st.written_rv = _rv(stored)
        self.status_writes += 1

    # -- events --------------------------------------------------------------------------

    @staticmethod
    def _ref(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
        ref = object_reference(pod, f"spec.containers{{{container.get('name', '')}}}")
        ref.setdefault("kind", "Pod")
        ref.setdefault("apiVersion", "v1")
        return ref

    def _record(self, pod: dict[str, Any], st: PodState, before: tuple[int, str]) -> None:
        """Events for what ``advance`` just did: a run started, a back-off begun."""
        if self.recorder is None:
            return
        containers = (pod.get("spec") or {}).get("containers") or []
        md = pod.get("metadata") or {}
        if st.run > before[0]:
            for c in containers:
                ref = self._ref(pod, c)
                self.recorder.normal(ref, "Pulled", f'Container image "{c.get("image")}" already present on machine')
                self.recorder.normal(ref, "Created", f"Created container {c.get('name')}")
                self.recorder.normal(ref, "Started", f"Started container {c.get('name')}")
        if st.stage == lifecycle.BACKOFF and (before[1] != lifecycle.BACKOFF or st.run > before[0]):
            for c in containers:
                self.recorder.warning(self._ref(pod, c), "BackOff",
                                      f"Back-off restarting failed container {c.get('name')} in pod "
                                      f"{md.get('name')}_{md.get('namespace')}({st.uid})")

    # -- pod IPs ---------------------------------------------------------------------------

    def _node_ip(self, index: int) -> str:
        ip = self._node_ips.get(index)
        if ip is None:
            ip = self._node_ips[index] = self.cfg.node_ip(index)
        return ip

    @staticmethod
    def _is_host_network(pod: dict[str, Any]) -> bool:
        return bool((pod.get("spec") or {}).get("hostNetwork"))

    def _range(self, node: str) -> PodIPs:
        cached = self.node_cache(node) or {}
        cidr = (cached.get("spec") or {}).get("podCIDR")
        if not cidr:
            index = self.cfg.node_index(node)
            assert index is not None
            cidr = self._default_cidrs.get(index)
            if cidr is None:
                cidr = self._default_cidrs[index] = self.cfg.node_pod_cidr(index)
        current = self.ranges.get(node)
        if current is None or current.cidr != cidr:
            current = self.ranges[node] = PodIPs(cidr)
        return current

    def _assign_ip(self, key: str, pod: dict[str, Any], st: PodState) -> None:
        if self._is_host_network(pod):
            index = self.cfg.node_index(st.node)
            assert index is not None
            st.ip = self._node_ip(index)
            return
        try:
            st.ip = self._range(st.node).allocate()
        except RangeFull as e:
            log.error("no pod IP left on node", pod=key, node=st.node, error=str(e))

    def _release_ip(self, pod: dict[str, Any] | None, st: PodState) -> None:
        if st.ip and not (pod is not None and self._is_host_network(pod)):
            r = self.ranges.get(st.node)
            if r is not None:
                r.release(st.ip)

    def _forget(self, key: str, st: PodState) -> None:
        if self.states.get(key) is st:
            del self.states[key]
        self._release_ip(None, st)

    def _remember_finished(self, uid: str) -> None:
        if len(self._finished) == self._finished.maxlen:
            self._finished_set.discard(self._finished[0])
        self._finished.append(uid)
        self._finished_set.add(uid)

    # -- figures ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        running = sum(1 for s in self.states.values() if s.stage == RUNNING)
        return {"pods": len(self.states), "running": running, "status_writes": self.status_writes,
                "deletions": self.deletions}
