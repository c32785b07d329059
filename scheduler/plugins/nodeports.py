"""NodePorts: a pod's host ports must be free on the node. A wildcard host IP (0.0.0.0)
conflicts with every IP for the same protocol and port."""

from __future__ import annotations

from scheduler.framework import CycleState, NodeInfo, Snapshot, Status
from scheduler.resources import host_ports

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
_STATE = "NodePorts/ports"
WILDCARD = "0.0.0.0"


def conflicts(wanted: list[tuple[str, str, int]], used: object) -> bool:
    for ip, proto, port in wanted:
        if (ip, proto, port) in used or (WILDCARD, proto, port) in used:  # type: ignore[operator]
            return True
        if ip == WILDCARD:
            for _uip, uproto, uport in used:  # type: ignore[attr-defined]
                if uproto == proto and uport == port:
                    return True
    return False


class NodePorts:
    name = "NodePorts"

    def __init__(self, args: dict | None = None, handle: object = None):
        pass

    def pre_filter(self, state: CycleState, pod: dict, snapshot: Snapshot) -> tuple[set[str] | None, Status]:
        ports = host_ports(pod)
        if not ports:
            return None, Status.skip()
        state[_STATE] = ports
        return None, Status()

    def filter_signature(self, state: CycleState, pod: dict) -> object:
        wanted = state.get(_STATE)
        return tuple(wanted if wanted is not None else host_ports(pod))

    def filter(self, state: CycleState, pod: dict, node: NodeInfo) -> Status:
        wanted = state.get(_STATE)
        if wanted is None:
            wanted = host_ports(pod)
        if wanted and node.used_ports and conflicts(wanted, node.used_ports):
            return Status.unschedulable(ERR_REASON, plugin=self.name)
        return Status()
