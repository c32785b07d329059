"""DefaultPreemption: when no node fits, make room by evicting lower-priority pods.

For each node where preemption might help (its filter failure was not unresolvable), a dry run
on a copy of the node removes every pod of lower priority than the preemptor; if the preemptor
then fits, pods are given back most important first while it still fits, and those that could
not be given back are the victims. Among candidate nodes the least disruptive wins: the lowest
highest victim priority, then the lowest sum of victim priorities, then the fewest victims, then
the latest-started highest-priority victims. Victims get the DisruptionTarget condition and are
deleted gracefully; lower-priority pods nominated to the node lose their nomination; the winning
node is returned as the preemptor's nomination (the scheduler writes ``status.nominatedNodeName``).
PodDisruptionBudgets are not considered.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import aiohttp
import structlog

from api import errors
from api.meta import now_rfc3339
from scheduler.framework import SNAPSHOT_KEY, Code, CycleState, NodeInfo, Status
from scheduler.nodeinfo import pod_key

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
log = structlog.get_logger("scheduler.preemption")

POLICY_NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING_ON_NOMINATED = "not eligible due to a terminating pod on the nominated node."


def resolved_priority(pod: dict, handle: Any = None) -> int:
    """``spec.priority``; else the value of its PriorityClass when the handle can look it up."""
    spec = pod.get("spec") or {}
    p = spec.get("priority")
    if p is not None:
        return int(p)
    name = spec.get("priorityClassName")
    if name and handle is not None:
        pc = handle.priority_class(name)
        if pc is not None:
            return int(pc.get("value", 0))
    return 0


def _start_time(pod: dict) -> str:
    st = pod.get("status") or {}
    return st.get("startTime") or (pod.get("metadata") or {}).get("creationTimestamp") or ""


class Candidate:
    __slots__ = ("node", "victims", "priorities")

    def __init__(self, node: str, victims: list[dict], priorities: list[int]):
        self.node = node
        self.victims = victims
        self.priorities = priorities

    def rank(self) -> tuple[int, int, int]:
        """Smaller is less disruptive: highest victim priority, their sum, their number."""
        top = max(self.priorities)
        total = sum(p + 2**31 for p in self.priorities)   # shifted so negative priorities count
        return (top, total, len(self.victims))

    def top_started(self) -> str:
        """When the earliest of the highest-priority victims started (later is better)."""
        top = max(self.priorities)
        return min(_start_time(v) for v, p in zip(self.victims, self.priorities, strict=True) if p == top)


def pick_one(candidates: list[Candidate]) -> Candidate:
    best = min(c.rank() for c in candidates)
    tied = [c for c in candidates if c.rank() == best]
    return max(tied, key=Candidate.top_started)


class DefaultPreemption:
    name = "DefaultPreemption"

    def __init__(self, args: dict | None = None, handle: Any = None, rng: random.Random | None = None):
        args = args or {}
        self.validate_args(args)
        self.min_percentage = int(args.get("minCandidateNodesPercentage", 10))
        self.min_absolute = int(args.get("minCandidateNodesAbsolute", 100))
        self.rng = rng or random.Random()

    @staticmethod
    def validate_args(args: Mapping) -> None:
        from scheduler.profile import ConfigError
        pct = args.get("minCandidateNodesPercentage", 10)
        ab = args.get("minCandidateNodesAbsolute", 100)
        if not isinstance(pct, int) or not 0 <= pct <= 100:
            raise ConfigError("minCandidateNodesPercentage: must be an integer between 0 and 100")
        if not isinstance(ab, int) or ab < 0:
            raise ConfigError("minCandidateNodesAbsolute: must be a non-negative integer")
        if pct == 0 and ab == 0:
            raise ConfigError("minCandidateNodesPercentage and minCandidateNodesAbsolute: both cannot be 0")

    def _num_candidates(self, n: int) -> int:
        k = n * self.min_percentage // 100
        return min(n, max(k, self.min_absolute))

    def eligible(self, pod: dict, snapshot: Any, handle: Any) -> str | None:
        """Why the pod may not preempt now (None: it may)."""
        spec = pod.get("spec") or {}
        if spec.get("preemptionPolicy") == "Never":
            return POLICY_NEVER
        nominated = (pod.get("status") or {}).get("nominatedNodeName")
        if nominated and snapshot is not None:
            ni = snapshot.get(nominated)
            if ni is not None:
                prio = resolved_priority(pod, handle)
                for p in ni.pods:
                    if (p.get("metadata") or {}).get("deletionTimestamp") and resolved_priority(p, handle) < prio:
                        return TERMINATING_ON_NOMINATED
        return None

    def select_victims(self, state: CycleState, pod: dict, node: NodeInfo, handle: Any,
                       nominated: dict[str, list[dict]] | None = None) -> tuple[list[dict] | None, Status]:
        """Dry run on a copy of ``node``: the victims that make ``pod`` fit, or None with why
        not (no lower-priority pods, or the filter status when evicting all of them would not
        be enough)."""
        fw = handle.framework
        prio = resolved_priority(pod, handle)
        ni = node.clone()  # type: ignore[attr-defined]
        st = state.clone()
        potential = [p for p in ni.pods if resolved_priority(p, handle) < prio]
        if not potential:
            return None, Status.unschedulable(NO_VICTIMS, plugin=self.name, unresolvable=True)
        # Room already promised to pods nominated here (of equal or higher priority) stays theirs.
        for p in (nominated or {}).get(ni.name, ()):
            ni.add_pod(p)
            fw.run_pre_filter_add_pod(st, pod, p, ni)
        for p in potential:
            ni.remove_pod(p)
            fw.run_pre_filter_remove_pod(st, pod, p, ni)
        status = fw.run_filter(st, pod, ni)
        if not status.ok:
            return None, status
        # Most important first: higher priority, then earlier start.
        potential.sort(key=lambda p: (-resolved_priority(p, handle), _start_time(p)))
        victims = []
        for p in potential:
            ni.add_pod(p)
            fw.run_pre_filter_add_pod(st, pod, p, ni)
            if not fw.run_filter(st, pod, ni).ok:
                ni.remove_pod(p)
                fw.run_pre_filter_remove_pod(st, pod, p, ni)
                victims.append(p)
        return victims, Status()

    def find_candidates(self, state: CycleState, pod: dict, statuses: Mapping[str, Status], handle: Any,
                        snapshot: Any) -> tuple[list[Candidate], dict[str, Status]]:
        """Candidates (nodes with victims), and why each other node cannot help."""
        reasons: dict[str, Status] = {}
        potential = []
        for ni in snapshot.nodes:
            st = statuses.get(ni.name)
            if st is not None and st.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                reasons[ni.name] = Status.unschedulable(NOT_HELPFUL, unresolvable=True)
            else:
                potential.append(ni)
        candidates: list[Candidate] = []
        if not potential:
            return candidates, reasons
        want = self._num_candidates(len(potential))
        nominated = handle.framework.nominated_pods_for(pod)
        offset = self.rng.randrange(len(potential))
        for i in range(len(potential)):
            ni = potential[(offset + i) % len(potential)]
            victims, st = self.select_victims(state, pod, ni, handle, nominated)
            if victims is None:
                reasons[ni.name] = st
                continue
            if not victims:          # fits as it is (room freed since the filter ran)
                reasons[ni.name] = Status.unschedulable(NO_VICTIMS)
                continue
            candidates.append(Candidate(ni.name, victims, [resolved_priority(v, handle) for v in victims]))
            if len(candidates) >= want:
                break
        return candidates, reasons

    async def post_filter(self, state: CycleState, pod: dict, statuses: dict[str, Status],
                          handle: Any) -> tuple[str | None, Status]:
        snapshot = state.get(SNAPSHOT_KEY) or getattr(handle, "snapshot", None)
        if snapshot is None:
            return None, Status.error("no snapshot for preemption", plugin=self.name)
        why = self.eligible(pod, snapshot, handle)
        if why is not None:
            return None, Status.unschedulable(f"preemption: {why}", plugin=self.name)
        candidates, reasons = self.find_candidates(state, pod, statuses, handle, snapshot)
        if not candidates:
            from scheduler.framework import failure_message
            msg = failure_message(pod, reasons, len(snapshot.nodes))
            return None, Status.unschedulable(f"preemption: {msg}", plugin=self.name)
        best = pick_one(candidates)
        err = await self.evict(pod, best.victims, best.node, handle)
        if err is not None:
            return None, Status.error(err, plugin=self.name)
        await self.clear_lower_nominations(pod, best.node, handle)
        return best.node, Status()

    async def clear_lower_nominations(self, preemptor: dict, node: str, handle: Any) -> None:
        """Pods of lower priority nominated to ``node`` lose their nomination (the room made
        for them goes to the preemptor); they are tried again from scratch."""
        get = getattr(handle, "nominated_pods", None)
        client = getattr(handle, "client", None)
        if not callable(get) or client is None:
            return
        prio = resolved_priority(preemptor, handle)
        me = pod_key(preemptor)
        for p in (get() or {}).get(node, ()):
            if pod_key(p) == me or resolved_priority(p, handle) >= prio:
                continue
            meta = p.get("metadata") or {}
            try:
                await client.patch("pods", meta.get("name", ""), {"status": {"nominatedNodeName": None}},
                                   meta.get("namespace") or "default", subresource="status")
            except (TimeoutError, errors.StatusError, aiohttp.ClientError) as e:
                log.debug("could not clear nomination", pod=pod_key(p), error=str(e))

    async def evict(self, preemptor: dict, victims: list[dict], node: str, handle: Any) -> str | None:
        """Mark each victim with the DisruptionTarget condition, delete it gracefully and record
        a Preempted event on it. A victim already gone is fine. Returns an error text or None."""
        client = getattr(handle, "client", None)
        if client is None:
            return "no API client to delete preemption victims"
        pmeta = preemptor.get("metadata") or {}
        scheduler_name = (preemptor.get("spec") or {}).get("schedulerName") or "default-scheduler"
        condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                     "message": f"{scheduler_name}: preempting to accommodate a higher priority pod",
                     "lastTransitionTime": now_rfc3339()}
        recorder = getattr(handle, "recorder", None)
        for v in victims:
            meta = v.get("metadata") or {}
            name, ns = meta.get("name", ""), meta.get("namespace") or "default"
            pre = {"uid": meta["uid"]} if meta.get("uid") else None
            try:
                await client.patch("pods", name, {"status": {"conditions": [condition]}}, ns,
                                   patch_type="strategic", subresource="status")
            except errors.NotFound:
                continue
            except (TimeoutError, errors.StatusError, aiohttp.ClientError) as e:
                log.debug("could not mark preemption victim", pod=pod_key(v), error=str(e))
            try:
                await client.delete("pods", name, ns, preconditions=pre)
            except (errors.NotFound, errors.Conflict):
                continue
            except (TimeoutError, errors.StatusError, aiohttp.ClientError) as e:
                return f"deleting victim {ns}/{name}: {e}"
            if recorder is not None:
                recorder.normal(v, "Preempted", f"Preempted by pod {pmeta.get('uid', '')} on node {node}")
        return None
