"""NodeName: a pod that names its node (``spec.nodeName``) fits only there."""

from __future__ import annotations

from scheduler.framework import CycleState, NodeInfo, Snapshot, Status

ERR_REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass

    def pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        # Only pods that name a node need the filter at all.
        if not (pod.get("spec") or {}).get("nodeName"):
            return None, Status.skip()
        return None, Status()

    def filter_signature(self, state: CycleState, pod: dict) -> object:
        return (pod.get("spec") or {}).get("nodeName") or ""

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        want = (pod.get("spec") or {}).get("nodeName")
        if want and want != node.name:
            return Status.unschedulable(ERR_REASON, plugin=self.name, unresolvable=True)
        return Status()
