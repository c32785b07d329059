"""The scheduler cache: every node's state, with the pods bound to it and the pods assumed onto it.

A pod is *assumed* the moment the scheduling cycle picks its node, before its binding is written,
so the next cycle already counts its requests. When the informer then reports the pod bound, the
assumption is *confirmed* (the bound copy replaces the assumed one, counted once); when binding
fails the scheduler *forgets* it. A bound pod can arrive before its Node does (the node's NodeInfo
then exists with no Node object and is not offered for scheduling until the Node arrives).

``update_snapshot()`` returns the ``Snapshot`` a cycle works on. It is kept between cycles and only
the NodeInfos changed since the last call are cloned again, so a cycle costs time in proportion to
what changed, not to the size of the cluster. Plugins read snapshot NodeInfos freely: the cache
never mutates a NodeInfo it has handed out.

Everything runs on the event loop: no locks.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from scheduler.nodeinfo import NodeInfo, Snapshot, pod_key

log = structlog.get_logger("scheduler.cache")


def node_name_of(pod: dict) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


# What a binding changes besides spec.nodeName, and no plugin reads.
_META_NOISE = frozenset({"resourceVersion", "managedFields"})
_MISSING = object()


def _same_for_scheduling(assumed: dict, bound: dict) -> bool:
    """Whether ``bound`` (the informer's copy) differs from ``assumed`` (the scheduler's) only in
    what the binding writes besides the node: resourceVersion, managedFields, status conditions."""
    if assumed.get("spec") != bound.get("spec"):
        return False
    am, bm = assumed.get("metadata") or {}, bound.get("metadata") or {}
    if len(am.keys() - _META_NOISE) != len(bm.keys() - _META_NOISE) or any(
            k not in _META_NOISE and bm.get(k, _MISSING) != v for k, v in am.items()):
        return False
    ast, bst = assumed.get("status") or {}, bound.get("status") or {}
    return all(ast.get(k) == v for k, v in bst.items() if k != "conditions") and all(
        k in bst or k == "conditions" for k in ast)


@dataclass
class _PodState:
    pod: dict
    node: str
    assumed: bool
    binding_finished: bool = False


class SchedulerCache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}          # live NodeInfos, mutated here only
        self._pods: dict[str, _PodState] = {}          # pod key -> where it is counted
        self._dirty: dict[str, None] = {}             # node names changed since the last snapshot, in order
        self._snapshot = Snapshot()

    # -- nodes ---------------------------------------------------------------------------------

    def add_node(self, node: dict) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        ni = self._nodes.get(name)
        if ni is None:
            self._nodes[name] = NodeInfo(node)
        else:
            ni.set_node(node)
        self._dirty[name] = None

    update_node = add_node

    def remove_node(self, node: dict) -> None:
        """Forget the Node; pods still bound to it keep a placeholder until they are removed."""
        name = (node.get("metadata") or {}).get("name", "")
        ni = self._nodes.get(name)
        if ni is None:
            return
        if ni.pods:
            placeholder = NodeInfo()
            placeholder.name = name
            for p in ni.pods:
                placeholder.add_pod(p)
            self._nodes[name] = placeholder
        else:
            del self._nodes[name]
        self._dirty[name] = None

    def node_count(self) -> int:
        return sum(1 for ni in self._nodes.values() if ni.node)

    def node_info(self, name: str) -> NodeInfo | None:
        """The live NodeInfo (read only; tests and the explainer use it)."""
        return self._nodes.get(name)

    # -- pods ----------------------------------------------------------------------------------

    def _node_for(self, name: str) -> NodeInfo:
        ni = self._nodes.get(name)
        if ni is None:
            ni = NodeInfo()
            ni.name = name
            self._nodes[name] = ni
        self._dirty[name] = None
        return ni

    def _count(self, pod: dict, node: str) -> None:
        self._node_for(node).add_pod(pod)

    def _uncount(self, pod: dict, node: str) -> None:
        ni = self._nodes.get(node)
        if ni is None:
            return
        ni.remove_pod(pod)
        self._dirty[node] = None
        if not ni.node and not ni.pods:
            del self._nodes[node]

    def assume_pod(self, pod: dict, node: str) -> None:
        """Count ``pod`` on ``node`` before its binding is visible. ``pod`` must be the scheduler's
        own copy with ``spec.nodeName`` set to ``node``."""
        key = pod_key(pod)
        if key in self._pods:
            raise ValueError(f"pod {key} is already in the cache")
        self._count(pod, node)
        self._pods[key] = _PodState(pod, node, assumed=True)

    def finish_binding(self, pod: dict) -> None:
        st = self._pods.get(pod_key(pod))
        if st is not None and st.assumed:
            st.binding_finished = True

    def forget_pod(self, pod: dict) -> None:
        """Undo ``assume_pod`` (binding failed). A pod already confirmed bound stays."""
        key = pod_key(pod)
        st = self._pods.get(key)
        if st is None or not st.assumed:
            return
        self._uncount(st.pod, st.node)
        del self._pods[key]

    def is_assumed(self, pod: dict) -> bool:
        st = self._pods.get(pod_key(pod))
        return st is not None and st.assumed

    def has_pod(self, pod: dict) -> bool:
        return pod_key(pod) in self._pods

    def add_pod(self, pod: dict) -> None:
        """A bound pod seen by the informer: confirms an assumption, or counts a new pod."""
        node = node_name_of(pod)
        if not node:
            return
        key = pod_key(pod)
        st = self._pods.get(key)
        if st is not None and st.assumed and st.node == node and _same_for_scheduling(st.pod, pod):
            # The binding confirmed as assumed: the node's counts, its generation (and with it
            # every verdict and score remembered for it) and the snapshot stay as they are.
            ni = self._nodes.get(node)
            if ni is not None and ni.swap_pod(pod):
                self._pods[key] = _PodState(pod, node, assumed=False)
                return
        if st is not None:
            if st.node != node:
                log.warning("pod bound to another node than assumed", pod=key, assumed=st.node, bound=node)
            self._uncount(st.pod, st.node)
        self._count(pod, node)
        self._pods[key] = _PodState(pod, node, assumed=False)

    def update_pod(self, old: dict, new: dict) -> None:
        self.add_pod(new)

    def remove_pod(self, pod: dict) -> None:
        key = pod_key(pod)
        st = self._pods.pop(key, None)
        if st is not None:
            self._uncount(st.pod, st.node)

    def pod_count(self) -> int:
        return len(self._pods)

    def assumed_count(self) -> int:
        return sum(1 for st in self._pods.values() if st.assumed)

    # -- snapshots -----------------------------------------------------------------------------

    def update_snapshot(self) -> Snapshot:
        """The nodes (those with a Node object) as they are now, in the order they arrived."""
        snap = self._snapshot
        for name in self._dirty:
            ni = self._nodes.get(name)
            if ni is not None and ni.node:
                snap.set(ni.clone())
            else:
                snap.remove(name)
        self._dirty.clear()
        return snap

    def dump(self) -> dict:
        """A summary for debugging: nodes, pods, assumed pods."""
        return {"nodes": self.node_count(), "pods": self.pod_count(), "assumed": self.assumed_count()}
