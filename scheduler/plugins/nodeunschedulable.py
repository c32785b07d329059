"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take only pods that tolerate the
``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

import operator

from scheduler.framework import CycleState, NodeInfo, Status
from scheduler.plugins.tainttoleration import tolerated

_UNSCHEDULABLE = operator.attrgetter("unschedulable")
ERR_REASON = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        if not node.unschedulable:  # type: ignore[attr-defined]
            return Status()
        if tolerated(UNSCHEDULABLE_TAINT, (pod.get("spec") or {}).get("tolerations") or ()):
            return Status()
        return Status.unschedulable(ERR_REASON, plugin=self.name, unresolvable=True)

    def filter_signature(self, state: CycleState, pod: dict) -> object:
        return tolerated(UNSCHEDULABLE_TAINT, (pod.get("spec") or {}).get("tolerations") or ())

    def filter_batch(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status | None]:
        if not any(map(_UNSCHEDULABLE, nodes)):
            return [None] * len(nodes)
        out: list[Status | None] = []
        for ni in nodes:
            if not ni.unschedulable:  # type: ignore[attr-defined]
                out.append(None)
            else:
                st = self.filter(state, pod, ni)
                out.append(None if st.ok else st)
        return out
