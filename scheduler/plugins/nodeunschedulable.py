"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take only pods that tolerate the
``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

from scheduler.framework import CycleState, NodeInfo, Status
from scheduler.plugins.tainttoleration import tolerated

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
