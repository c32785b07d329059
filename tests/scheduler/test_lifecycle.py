"""Failures, requeues, preemption, concurrency and the debug endpoint, through the real API server."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp

from client.component import start_http
from scheduler import resources
from scheduler.server import routes
from tests.fixtures.apiserver import free_port
from tests.scheduler.builders import (
    bound_node,
    create_nodes,
    events_for,
    eventually,
    node,
    pod,
    scheduled_condition,
)

TAINT = [{"key": "k", "value": "v", "effect": "NoSchedule"}]


async def test_failed_scheduling_event_reads_like_kubernetes(cluster):
    c = cluster.client
    await create_nodes(c, node("n1", cpu="2"), node("n2", taints=TAINT), node("n3", taints=TAINT))
    await cluster.start()
    await c.create("pods", pod("hog", cpu="1500m"))
    assert await bound_node(c, "hog") == "n1"
    await c.create("pods", pod("big", cpu="1"))
    evs = await eventually(lambda: events_for(c, "big", "FailedScheduling"), what="FailedScheduling event")
    assert evs[0]["type"] == "Warning"
    msg = evs[0]["message"]
    assert msg.startswith("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint {k: v}. "
                          "preemption: 0/3 nodes are available: 1 "), msg
    assert msg.endswith(", 2 Preemption is not helpful for scheduling."), msg
    cond = await scheduled_condition(c, "big")
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == evs[0]["message"]


async def test_pending_pod_is_placed_when_a_node_is_added(cluster):
    c = cluster.client
    await create_nodes(c, node("small", cpu="1"))
    sched = await cluster.start()
    await c.create("pods", pod("waits", cpu="3"))
    await scheduled_condition(c, "waits")
    await eventually(lambda: _async(sched.queue.where("default/waits") == "unschedulable"),
                     what="the pod in the unschedulable queue")
    await create_nodes(c, node("roomy", cpu="4"))
    assert await bound_node(c, "waits") == "roomy"


async def test_pending_pod_is_placed_when_a_pod_is_deleted(cluster):
    c = cluster.client
    await create_nodes(c, node("only", cpu="2"))
    await cluster.start()
    await c.create("pods", pod("first", cpu="2"))
    assert await bound_node(c, "first") == "only"
    await c.create("pods", pod("second", cpu="2"))
    await scheduled_condition(c, "second")
    await c.delete("pods", "first", "default", grace_period_seconds=0)
    assert await bound_node(c, "second") == "only"


async def test_finished_pods_free_their_node(cluster):
    c = cluster.client
    await create_nodes(c, node("only", cpu="2"))
    await cluster.start()
    await c.create("pods", pod("job", cpu="2"))
    assert await bound_node(c, "job") == "only"
    await c.create("pods", pod("next", cpu="2"))
    await scheduled_condition(c, "next")
    await c.patch("pods", "job", {"status": {"phase": "Succeeded"}}, "default", subresource="status")
    assert await bound_node(c, "next") == "only"


async def _async(v):
    return v


async def _act_as_kubelet(c, stop: asyncio.Event) -> None:
    """Finish graceful deletions at once, as a kubelet would after stopping the containers."""
    while not stop.is_set():
        for p in (await c.list("pods"))["items"]:
            m = p["metadata"]
            if m.get("deletionTimestamp"):
                try:
                    await c.delete("pods", m["name"], m["namespace"], grace_period_seconds=0)
                except Exception:
                    pass
        await asyncio.sleep(0.1)


async def test_preemption_of_a_lower_priority_pod(cluster):
    c = cluster.client
    await c.create("priorityclasses.scheduling.k8s.io",
                   {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                    "metadata": {"name": "test-high"}, "value": 1000})
    try:
        await create_nodes(c, node("n1", cpu="2"), node("n2", cpu="2"))
        await cluster.start()
        await c.create("pods", pod("low-a", cpu="2", priority=10))
        await c.create("pods", pod("low-b", cpu="1500m", priority=5))
        victims_node = {await bound_node(c, "low-a"): "low-a", await bound_node(c, "low-b"): "low-b"}
        assert set(victims_node) == {"n1", "n2"}
        stop = asyncio.Event()
        kubelet = asyncio.create_task(_act_as_kubelet(c, stop))
        try:
            await c.create("pods", pod("high", cpu="2", priority=1000))
            where = await bound_node(c, "high", timeout=30)
        finally:
            stop.set()
            await kubelet
        # The least disruptive victim: the pod of the lowest priority.
        assert victims_node[where] == "low-b"
        names = {p["metadata"]["name"] for p in (await c.list("pods", "default"))["items"]}
        assert names == {"low-a", "high"}
        high = await c.get("pods", "high", "default")
        assert high["status"].get("nominatedNodeName") == where
        failed = await events_for(c, "high", "FailedScheduling")
        assert failed and failed[0]["message"].startswith("0/2 nodes are available: 2 Insufficient cpu.")
    finally:
        await c.delete("priorityclasses.scheduling.k8s.io", "test-high")


async def test_no_node_double_booked_under_concurrent_pods(cluster):
    c = cluster.client
    await create_nodes(c, *(node(f"n{i}", cpu="4", memory="4Gi") for i in range(5)))
    await cluster.start()
    # 5 nodes x 4 cpu hold 40 pods of 500m; 60 arrive at once.
    await asyncio.gather(*(c.create("pods", pod(f"p{i}", cpu="500m", memory="100Mi")) for i in range(60)))

    async def settled():
        pods = (await c.list("pods", "default"))["items"]
        bound = [p for p in pods if p["spec"].get("nodeName")]
        failed = [p for p in pods if any(x.get("type") == "PodScheduled" and x.get("status") == "False"
                                         for x in (p.get("status") or {}).get("conditions") or ())]
        return (bound, pods) if len(bound) + len(failed) == 60 else None

    bound, pods = await eventually(settled, 60, "every pod bound or marked unschedulable")
    assert len(bound) == 40
    per_node: dict[str, int] = defaultdict(int)
    for p in bound:
        per_node[p["spec"]["nodeName"]] += resources.pod_requests(p)["cpu"]
    assert all(v <= 4000 for v in per_node.values()), per_node
    assert sum(per_node.values()) == 40 * 500


async def test_why_pending_over_http(cluster):
    c = cluster.client
    await create_nodes(c, node("n1", cpu="1"), node("n2", cpu="2"), node("n3", taints=TAINT))
    sched = await cluster.start()
    await c.create("pods", pod("huge", cpu="3"))
    await scheduled_condition(c, "huge")
    port = free_port()
    runner = await start_http("127.0.0.1", port, routes(lambda: sched))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/debug/why-pending/default/huge") as resp:
                assert resp.status == 200
                body = await resp.json()
            async with http.get(f"http://127.0.0.1:{port}/debug/why-pending/default/nope") as resp:
                assert resp.status == 404
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
    finally:
        await runner.cleanup()
    assert body["pod"] == "default/huge"
    assert body["queue"] in ("unschedulable", "backoff", "active", "in-flight")
    by_node = {n["node"]: n for n in body["nodes"]}
    assert by_node["n2"]["plugin"] == "NodeResourcesFit"
    assert by_node["n2"]["reasons"] == ["Insufficient cpu"]
    assert by_node["n2"]["headroom"]["cpu"] == "2"
    assert by_node["n3"]["plugin"] == "TaintToleration"
    assert body["summary"].startswith("0/3 nodes are available:")
    assert any("to at most 2" in s for s in body["suggestions"]), body["suggestions"]
    assert 'scheduler_schedule_attempts_total{profile="default-scheduler",result="unschedulable"}' in text
    assert 'scheduler_pending_pods{queue="unschedulable"}' in text
