"""Prometheus figures of a simulator, read from its counters when scraped (nothing on the hot
path): nodes acted for, pods by stage, lease renewals, node and pod status writes, deletions
confirmed, and the depth of each work queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class SimulatorCollector(Collector):
    def __init__(self, sim: Any):
        self.sim = sim

    def collect(self) -> Iterator[Any]:
        nodes, pods = self.sim.nodes, self.sim.pods
        yield GaugeMetricFamily("navarch_sim_nodes", "Simulated nodes this process acts for.",
                                value=len(nodes.uids))
        stages = GaugeMetricFamily("navarch_sim_pods", "Pods on simulated nodes by simulated stage.",
                                   labels=["stage"])
        for stage, n in sorted(Counter(s.stage for s in pods.states.values()).items()):
            stages.add_metric([stage], n)
        yield stages
        yield CounterMetricFamily("navarch_sim_lease_renewals", "Node Lease renewals written.",
                                  value=nodes.lease_renewals)
        yield CounterMetricFamily("navarch_sim_node_status_updates", "Node status heartbeats written.",
                                  value=nodes.status_updates)
        yield CounterMetricFamily("navarch_sim_pod_status_writes", "Pod status writes.",
                                  value=pods.status_writes)
        yield CounterMetricFamily("navarch_sim_pod_deletions", "Pod deletions confirmed.",
                                  value=pods.deletions)
        depth = GaugeMetricFamily("navarch_sim_queue_depth", "Keys waiting in each work queue.",
                                  labels=["queue"])
        for q in (nodes.lease_queue, nodes.status_queue, pods.queue):
            depth.add_metric([q.name], len(q))
        yield depth
