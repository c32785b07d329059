"""Simulated nodes (``kubelet.sim``) with the node controllers and the garbage collector, in real
time with short periods: pod ranges for every node, a node whose agent stops goes Unknown and
tainted and its pods are evicted after their toleration, and the node coming back loses the
taints; a deleted node's Lease is collected with it."""

from __future__ import annotations

import ipaddress

import pytest

from client.rest import Client
from controller_manager.base import ControllerConfig
from controller_manager.controllers.garbagecollector import GarbageCollector
from controller_manager.controllers.nodeipam import NodeIpamController
from controller_manager.controllers.nodelifecycle import NodeLifecycleController, TaintEvictionController
from kubelet.sim.config import SimConfig
from kubelet.sim.simulator import Simulator
from tests.controllers.lifecycle.helpers import Running, condition, eventually, gone, pod, taint_keys

LEASES = "leases.coordination.k8s.io"
CLUSTER_CIDR = "10.210.0.0/16"


def sim_config(prefix: str, start: int, count: int = 1) -> SimConfig:
    return SimConfig(count=count, name_prefix=prefix, start_index=start, lease_duration=2,
                     lease_renew_interval=0.4, pod_cidr=CLUSTER_CIDR, node_cidr_mask_size=24)


@pytest.fixture
async def controllers(client):
    cfg = ControllerConfig(cluster_cidr=CLUSTER_CIDR, node_cidr_mask_size=24, node_monitor_grace_period=3.0,
                           node_monitor_period=0.5, node_eviction_rate=10.0)
    async with Running(client, [NodeLifecycleController, TaintEvictionController, NodeIpamController,
                                GarbageCollector], config=cfg) as running:
        yield running


async def test_node_stops_and_comes_back(client: Client, controllers, apiserver):
    ns = client.namespace
    a_cfg, b_cfg = sim_config(f"{ns}-a-", 1), sim_config(f"{ns}-b-", 2, count=2)
    a_name, b_names = a_cfg.node_names()[0], b_cfg.node_names()
    sim_a, sim_b = Simulator(client, a_cfg), Simulator(client, b_cfg)
    await sim_a.start()
    await sim_b.start()
    try:
        async def cidrs():
            got = [(await client.get("nodes", n))["spec"].get("podCIDR") for n in [a_name, *b_names]]
            return got if all(got) else None
        got = await eventually(cidrs, what="pod CIDRs on every node")
        assert len(set(got)) == 3
        assert all(ipaddress.ip_network(c).subnet_of(ipaddress.ip_network(CLUSTER_CIDR)) for c in got)

        unreachable = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
        await client.create("pods", pod("brief", node=a_name, tolerations=[{**unreachable, "tolerationSeconds": 2}]))
        await client.create("pods", pod("stays", node=a_name, tolerations=[unreachable]))
        await client.create("pods", pod("other", node=b_names[0], tolerations=[{**unreachable, "tolerationSeconds": 2}]))

        async def running(name):
            p = await client.get("pods", name)
            return condition(p, "Ready") and condition(p, "Ready")["status"] == "True"
        for name in ("brief", "stays", "other"):
            await eventually(lambda name=name: running(name), what=f"{name} running")

        await sim_a.stop()                            # the node agent dies

        async def a_unknown():
            n = await client.get("nodes", a_name)
            c = condition(n, "Ready")
            return n if c["status"] == "Unknown" and "node.kubernetes.io/unreachable:NoExecute" in taint_keys(n) else None
        n = await eventually(a_unknown, what="silent node Unknown and tainted")
        assert condition(n, "Ready")["reason"] == "NodeStatusUnknown"
        assert "node.kubernetes.io/unreachable:NoSchedule" in taint_keys(n)

        async def evicted():
            p = await client.get("pods", "brief")
            return p["metadata"].get("deletionTimestamp")
        await eventually(evicted, what="pod evicted after its 2 s toleration")
        stays = await client.get("pods", "stays")
        assert not stays["metadata"].get("deletionTimestamp")
        assert condition(stays, "Ready")["status"] == "False"
        # The healthy nodes were never touched.
        for name in b_names:
            b = await client.get("nodes", name)
            assert condition(b, "Ready")["status"] == "True" and not taint_keys(b)
        assert not (await client.get("pods", "other"))["metadata"].get("deletionTimestamp")

        sim_a = Simulator(client, a_cfg)              # the agent comes back
        await sim_a.start()

        async def a_back():
            n = await client.get("nodes", a_name)
            return condition(n, "Ready")["status"] == "True" and not taint_keys(n)
        await eventually(a_back, what="node ready again without taints")
        # The agent confirms the eviction it missed.
        await eventually(lambda: gone(client, "pods", "brief"), what="evicted pod gone")

        # A deleted node takes its Lease with it (owner reference), and frees its range.
        await sim_b.stop()
        freed = (await client.get("nodes", b_names[1]))["spec"]["podCIDR"]
        await client.delete("nodes", b_names[1])
        await eventually(lambda: gone(client, LEASES, b_names[1], "kube-node-lease"), what="lease collected")
        ipam = controllers["nodeipam"]
        assert ipam.cidrs.index_of(freed) not in ipam.cidrs.used
    finally:
        await sim_a.stop()
        await sim_b.stop()
        for name in [a_name, *b_names]:
            try:
                await client.delete("nodes", name)
            except Exception:
                pass
