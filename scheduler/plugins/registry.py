"""Plugin names to plugin classes (the names a profile's configuration uses)."""

from __future__ import annotations

from scheduler.plugins.defaultbinder import DefaultBinder
from scheduler.plugins.defaultpreemption import DefaultPreemption
from scheduler.plugins.interpodaffinity import InterPodAffinity
from scheduler.plugins.nodeaffinity import NodeAffinity
from scheduler.plugins.nodename import NodeName
from scheduler.plugins.nodeports import NodePorts
from scheduler.plugins.noderesources import NodeResourcesBalancedAllocation, NodeResourcesFit
from scheduler.plugins.nodeunschedulable import NodeUnschedulable
from scheduler.plugins.podtopologyspread import PodTopologySpread
from scheduler.plugins.prioritysort import PrioritySort
from scheduler.plugins.tainttoleration import TaintToleration

REGISTRY: dict[str, type] = {cls.name: cls for cls in (
    PrioritySort,
    NodeUnschedulable,
    NodeName,
    TaintToleration,
    NodeAffinity,
    NodePorts,
    NodeResourcesFit,
    NodeResourcesBalancedAllocation,
    PodTopologySpread,
    InterPodAffinity,
    DefaultPreemption,
    DefaultBinder,
)}
