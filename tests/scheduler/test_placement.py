"""Placement through the real API server: resources, selectors, affinity, taints, spread, ports."""

from __future__ import annotations

from collections import Counter

from tests.scheduler.builders import (
    bound_node,
    create_nodes,
    events_for,
    eventually,
    node,
    pod,
    scheduled_condition,
)

ZONE = "topology.kubernetes.io/zone"


async def test_pod_goes_to_the_node_with_room(cluster):
    c = cluster.client
    await create_nodes(c, node("small", cpu="1"), node("big", cpu="8"))
    await cluster.start()
    await c.create("pods", pod("web", cpu="2"))
    assert await bound_node(c, "web") == "big"
    evs = await eventually(lambda: events_for(c, "web", "Scheduled"), what="Scheduled event")
    assert evs[0]["message"] == "Successfully assigned default/web to big"
    assert evs[0]["source"]["component"] == "default-scheduler"


async def test_node_selector_and_required_affinity(cluster):
    c = cluster.client
    await create_nodes(c, node("n-a", labels={"disk": "ssd", ZONE: "a"}), node("n-b", labels={ZONE: "b"}),
                       node("n-c", labels={ZONE: "c", "gpu": "2"}))
    await cluster.start()
    await c.create("pods", pod("sel", node_selector={"disk": "ssd"}))
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": ZONE, "operator": "NotIn", "values": ["a"]},
                              {"key": "gpu", "operator": "Gt", "values": ["1"]}]}]}}}
    await c.create("pods", pod("aff", affinity=aff))
    pref = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["b"]}]}}]}}
    await c.create("pods", pod("pref", affinity=pref))
    assert await bound_node(c, "sel") == "n-a"
    assert await bound_node(c, "aff") == "n-c"
    assert await bound_node(c, "pref") == "n-b"


async def test_taints_keep_pods_off_unless_tolerated(cluster):
    c = cluster.client
    taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    await create_nodes(c, node("tainted", cpu="8", taints=taint), node("plain", cpu="1"))
    await cluster.start()
    await c.create("pods", pod("plain-pod", cpu="500m"))
    tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
    await c.create("pods", pod("tolerant", cpu="4", tolerations=tol))
    await c.create("pods", pod("intolerant", cpu="4"))
    assert await bound_node(c, "plain-pod") == "plain"
    assert await bound_node(c, "tolerant") == "tainted"
    cond = await scheduled_condition(c, "intolerant")
    assert cond["reason"] == "Unschedulable"
    assert "1 Insufficient cpu" in cond["message"]
    assert "1 node(s) had untolerated taint {dedicated: gpu}" in cond["message"]


async def test_spread_across_zones(cluster):
    c = cluster.client
    nodes = [node(f"z{z}-{i}", labels={ZONE: f"z{z}"}) for z in range(3) for i in range(2)]
    await create_nodes(c, *nodes)
    await cluster.start()
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "spread"}}}]
    for i in range(6):
        await c.create("pods", pod(f"s{i}", labels={"app": "spread"}, spread=spread))
    zones = Counter()
    for i in range(6):
        zones[(await bound_node(c, f"s{i}")).split("-")[0]] += 1
    assert zones == {"z0": 2, "z1": 2, "z2": 2}


async def test_required_anti_affinity_one_per_node(cluster):
    c = cluster.client
    await create_nodes(c, *(node(f"n{i}") for i in range(3)))
    await cluster.start()
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    for i in range(4):
        await c.create("pods", pod(f"db{i}", labels={"app": "db"}, affinity=anti))
    placed = []
    pending = []
    for i in range(4):
        try:
            placed.append(await bound_node(c, f"db{i}", timeout=8))
        except AssertionError:
            pending.append(f"db{i}")
    assert sorted(placed) == ["n0", "n1", "n2"]
    assert len(pending) == 1
    cond = await scheduled_condition(c, pending[0])
    assert cond["message"].startswith("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.")


async def test_host_ports_do_not_collide(cluster):
    c = cluster.client
    await create_nodes(c, node("n0"), node("n1"))
    await cluster.start()
    for i in range(3):
        await c.create("pods", pod(f"hp{i}", host_port=8080))
    nodes = []
    for i in range(3):
        try:
            nodes.append(await bound_node(c, f"hp{i}", timeout=6))
        except AssertionError:
            pass
    assert sorted(nodes) == ["n0", "n1"]


async def test_other_schedulers_pods_are_left_alone_and_profiles_by_name(cluster):
    c = cluster.client
    await create_nodes(c, node("n0"))
    config = {"profiles": [{"schedulerName": "default-scheduler"},
                           {"schedulerName": "packer", "pluginConfig": [
                               {"name": "NodeResourcesFit",
                                "args": {"scoringStrategy": {"type": "MostAllocated"}}}]}]}
    await cluster.start(config)
    await c.create("pods", pod("mine", scheduler_name="packer"))
    await c.create("pods", pod("theirs", scheduler_name="someone-else"))
    assert await bound_node(c, "mine") == "n0"
    await bound_node(c, "mine")
    p = await c.get("pods", "theirs", "default")
    assert not p["spec"].get("nodeName")
    assert not (p.get("status") or {}).get("conditions")
