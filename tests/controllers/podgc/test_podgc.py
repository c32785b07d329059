"""The pod garbage collector against a real API server, its passes driven by a FakeClock.

Pods and nodes are written by the test (standing in for kubelets and administrators); a pod that
is to be force-deleted but must stay readable afterwards carries the test's own finalizer.
"""

from __future__ import annotations

import asyncio

from controller_manager.base import ControllerConfig
from controller_manager.controllers.podgc import OUT_OF_SERVICE, PodGCController
from controller_manager.manager import available
from tests.controllers.lifecycle.helpers import Running, eventually, settled
from tests.controllers.podgc.helpers import (
    HOLD,
    PERIOD,
    add_node,
    add_pod,
    condition,
    gc_pass,
    node_seen,
    pod_names,
    seen,
    terminating,
)

QUARANTINE = 40          # seconds, as Kubernetes waits before calling a missing node's pods orphans


async def start(client, clock, **config) -> tuple[Running, PodGCController]:
    running = await Running(client, [PodGCController], clock=clock, config=ControllerConfig(**config)).start()
    ctl = running["podgc"]
    await eventually(lambda: ctl.passes >= 1, what="the first pass")
    return running, ctl


async def test_discovered_by_the_manager():
    assert available()["podgc"] is PodGCController


async def test_a_pass_every_check_period(client, clock):
    running, ctl = await start(client, clock)
    try:
        for _ in range(3):
            before = ctl.passes
            await clock.advance(PERIOD - 0.5)
            await settled(ctl)
            assert ctl.passes == before
            await clock.advance(0.5)
            await eventually(lambda before=before: ctl.passes == before + 1, what="the next pass")
    finally:
        await running.stop()


async def test_terminated_pods_over_threshold_evicted_then_oldest_first(client, clock):
    others = [p for p in (await client.list("pods"))["items"]
              if p["status"].get("phase") in ("Succeeded", "Failed")]
    assert others == [], "terminated pods of other tests would count against the threshold"
    # Created a second apart (creationTimestamp has whole seconds), names against the age order.
    running, ctl = await start(client, clock, terminated_pod_gc_threshold=3)
    try:
        await add_pod(client, "c-oldest", phase="Succeeded")
        await asyncio.sleep(1.1)
        await add_pod(client, "b-middle", phase="Failed")
        await asyncio.sleep(1.1)
        await add_pod(client, "a-newest", phase="Succeeded")
        await add_pod(client, "running", phase="Running")
        await add_pod(client, "pending", phase=None)
        await seen(ctl, client, "c-oldest", "b-middle", "a-newest", "running", "pending")
        await gc_pass(clock, ctl)
        assert await pod_names(client) == {"c-oldest", "b-middle", "a-newest", "running", "pending"}

        # The newest of all, but evicted: it goes first, then the oldest.
        await add_pod(client, "z-evicted", phase="Failed", reason="Evicted")
        await add_pod(client, "y-done", phase="Succeeded")
        await seen(ctl, client, "z-evicted", "y-done")
        await gc_pass(clock, ctl)
        assert await pod_names(client) == {"b-middle", "a-newest", "y-done", "running", "pending"}

        await gc_pass(clock, ctl)
        assert await pod_names(client) == {"b-middle", "a-newest", "y-done", "running", "pending"}
    finally:
        await running.stop()


async def test_threshold_zero_keeps_terminated_pods(client, clock):
    running, ctl = await start(client, clock, terminated_pod_gc_threshold=0)
    try:
        await add_pod(client, "done", phase="Succeeded")
        await add_pod(client, "failed", phase="Failed")
        await seen(ctl, client, "done", "failed")
        await gc_pass(clock, ctl)
        assert await pod_names(client) == {"done", "failed"}
    finally:
        await running.stop()


async def test_orphans_of_a_deleted_node_go_after_the_quarantine(client, nodes, clock):
    gone_node = await add_node(client, nodes, clock, "gone")
    back_node = await add_node(client, nodes, clock, "back")
    live_node = await add_node(client, nodes, clock, "live")
    running, ctl = await start(client, clock)
    try:
        ready = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        await add_pod(client, "held", node=gone_node, finalizers=[HOLD], conditions=[ready])
        await add_pod(client, "orphan", node=gone_node)
        await add_pod(client, "orphan-done", node=gone_node, phase="Succeeded")
        await add_pod(client, "returns", node=back_node)
        await add_pod(client, "stays", node=live_node)
        await seen(ctl, client, "held", "orphan", "orphan-done", "returns", "stays")
        await client.delete("nodes", gone_node)
        await client.delete("nodes", back_node)
        await node_seen(ctl, gone_node, present=False)
        await node_seen(ctl, back_node, present=False)

        await gc_pass(clock, ctl)                     # both nodes found missing: quarantined
        assert set(ctl.quarantine) == {gone_node, back_node}
        await add_node(client, nodes, clock, "back")
        await node_seen(ctl, back_node)
        for _ in range(QUARANTINE // 20 - 1):         # passes every 20 s within the quarantine
            await gc_pass(clock, ctl)
            assert await pod_names(client) == {"held", "orphan", "orphan-done", "returns", "stays"}
            assert not (await client.get("pods", "held"))["metadata"].get("deletionTimestamp")
        await gc_pass(clock, ctl)                     # the quarantine is over
        assert await pod_names(client) == {"held", "returns", "stays"}

        held = await client.get("pods", "held")
        assert held["metadata"]["deletionTimestamp"]
        assert held["metadata"]["deletionGracePeriodSeconds"] == 0
        assert held["status"]["phase"] == "Failed"
        target = condition(held, "DisruptionTarget")
        assert target is not None, held["status"]
        assert (target["status"], target["reason"], target["message"]) == \
            ("True", "DeletionByPodGC", "PodGC: node no longer exists")
        assert condition(held, "Ready") == ready, "the kubelet's conditions are kept"
        returns = await client.get("pods", "returns")
        assert returns["status"]["phase"] == "Running"
        assert not returns["metadata"].get("deletionTimestamp")
        assert ctl.quarantine == {}
    finally:
        await running.stop()


async def test_node_missing_only_from_the_cache_is_checked_live(client, nodes, clock):
    """A node the informer lost but the API server still has keeps its pods."""
    name = await add_node(client, nodes, clock, "stale")
    running, ctl = await start(client, clock)
    try:
        await add_pod(client, "kept", node=name)
        await seen(ctl, client, "kept")
        await node_seen(ctl, name)
        ctl.nodes.store.delete(name)                 # a cache that fell behind
        for _ in range(4):
            await gc_pass(clock, ctl)
        pod = await client.get("pods", "kept")
        assert pod["status"]["phase"] == "Running"
        assert not pod["metadata"].get("deletionTimestamp")
    finally:
        await running.stop()


async def test_unscheduled_terminating_pods_are_force_deleted(client, nodes, clock):
    live = await add_node(client, nodes, clock, "live")
    running, ctl = await start(client, clock)
    try:
        await add_pod(client, "never-bound", phase="Pending", finalizers=[HOLD])
        await terminating(client, "never-bound")
        await add_pod(client, "never-bound-done", phase="Failed", finalizers=[HOLD])
        await terminating(client, "never-bound-done")
        await add_pod(client, "waiting", phase="Pending")
        await add_pod(client, "bound", node=live)
        await terminating(client, "bound")
        await seen(ctl, client, "never-bound", "never-bound-done", "waiting", "bound")
        await gc_pass(clock, ctl)
        unbound = await client.get("pods", "never-bound")
        assert unbound["status"]["phase"] == "Failed"
        assert condition(unbound, "DisruptionTarget") is None
        assert (await client.get("pods", "never-bound-done"))["status"]["phase"] == "Failed"
        assert (await client.get("pods", "waiting"))["status"]["phase"] == "Pending"
        bound = await client.get("pods", "bound")
        assert bound["status"]["phase"] == "Running"
        assert bound["metadata"]["deletionGracePeriodSeconds"] == 30

        await client.patch("pods", "never-bound", {"metadata": {"finalizers": None}})
        await eventually(lambda: pod_names_without(client, "never-bound"), what="never-bound deleted")
    finally:
        await running.stop()


async def pod_names_without(client, name: str) -> bool:
    return name not in await pod_names(client)


async def test_terminating_pods_on_out_of_service_nodes(client, nodes, clock):
    taint = [{"key": OUT_OF_SERVICE, "value": "nodeshutdown", "effect": "NoExecute"}]
    down = await add_node(client, nodes, clock, "down", ready="False", taints=taint)
    unknown = await add_node(client, nodes, clock, "unknown", ready="Unknown", taints=taint)
    ready = await add_node(client, nodes, clock, "ready", taints=taint)
    untainted = await add_node(client, nodes, clock, "untainted", ready="False")
    running, ctl = await start(client, clock)
    try:
        for name, node in (("down-t", down), ("unknown-t", unknown), ("ready-t", ready), ("untainted-t", untainted)):
            await add_pod(client, name, node=node)
            await terminating(client, name)
        await add_pod(client, "down-running", node=down)
        await seen(ctl, client, "down-t", "unknown-t", "ready-t", "untainted-t", "down-running")
        await gc_pass(clock, ctl)
        assert await pod_names(client) == {"ready-t", "untainted-t", "down-running"}
        for name in ("ready-t", "untainted-t"):
            assert (await client.get("pods", name))["metadata"]["deletionGracePeriodSeconds"] == 30
        assert not (await client.get("pods", "down-running"))["metadata"].get("deletionTimestamp")
    finally:
        await running.stop()
