"""minReadySeconds in virtual time: the controllers run against a real API server with a
FakeClock, and pods are reported ready at the fake clock's time."""

from __future__ import annotations

import uuid

import pytest

from client.clock import FakeClock
from controller_manager.controllers.daemonset import DaemonSetController
from controller_manager.controllers.statefulset import StatefulSetController
from tests.controllers.sets.helpers import (
    DS,
    STS,
    Controllers,
    HandKubelet,
    advance,
    daemonset,
    events_for,
    eventually,
    pods_of,
    quiesce,
    statefulset,
)


@pytest.fixture
def clock():
    return FakeClock()


async def test_ordered_ready_waits_for_min_ready_seconds(client, clock):
    ctrls = await Controllers(client, [StatefulSetController], clock=clock).start()
    ctrl = ctrls["statefulset"]
    kubelet = await HandKubelet(client, clock=clock).start()
    try:
        await client.create(STS, statefulset("web", 2, minReadySeconds=30))

        async def web0_ready():
            pods = await pods_of(client, "web")
            return pods if len(pods) == 1 and (pods[0].get("status") or {}).get("phase") == "Running" else None
        await eventually(web0_ready, what="web-0 running")
        await advance(clock, 29, ctrl)
        assert [p["metadata"]["name"] for p in await pods_of(client, "web")] == ["web-0"]
        sts = await client.get(STS, "web")
        assert sts["status"].get("readyReplicas") == 1 and not sts["status"].get("availableReplicas")
        await advance(clock, 2, ctrl)

        async def two():
            pods = await pods_of(client, "web")
            return pods if len(pods) == 2 else None
        await eventually(two, what="web-1 once web-0 is available")
    finally:
        await kubelet.stop()
        await ctrls.stop()


async def test_daemonset_availability_counts_min_ready_seconds(client, clock):
    node_name = "vt-" + uuid.uuid4().hex[:6]
    ctrls = await Controllers(client, [DaemonSetController], clock=clock).start()
    ctrl = ctrls["daemonset"]
    kubelet = await HandKubelet(client, node_name=node_name, clock=clock).start()
    try:
        # The daemon set selects only the hand-driven node (the module's server has others).
        await client.patch("nodes", node_name, {"metadata": {"labels": {"vt": node_name}}})
        await client.create(DS, daemonset("agent", minReadySeconds=10, pod_spec={"nodeSelector": {"vt": node_name}}))

        async def ready_status():
            st = (await client.get(DS, "agent")).get("status") or {}
            return st if st.get("numberReady") == 1 else None
        st = await eventually(ready_status, what="the daemon pod ready")
        assert st.get("numberAvailable", 0) == 0 and st["numberUnavailable"] == 1
        await advance(clock, 11, ctrl)
        await quiesce(ctrl)
        st = (await client.get(DS, "agent"))["status"]
        assert st["numberAvailable"] == 1 and st.get("numberUnavailable", 0) == 0
    finally:
        await kubelet.stop()
        await ctrls.stop()


async def test_failed_daemon_pods_are_replaced_with_a_back_off(client, clock):
    node_name = "vt-" + uuid.uuid4().hex[:6]
    ctrls = await Controllers(client, [DaemonSetController], clock=clock).start()
    ctrl = ctrls["daemonset"]
    kubelet = await HandKubelet(client, node_name=node_name, clock=clock).start()

    async def running_pod(not_uid: str | None = None):
        pods = [p for p in await pods_of(client, "agent") if not p["metadata"].get("deletionTimestamp")]
        ok = (len(pods) == 1 and (pods[0].get("status") or {}).get("phase") == "Running"
              and pods[0]["metadata"]["uid"] != not_uid)
        return pods[0] if ok else None

    async def fail(pod: dict) -> None:
        await client.patch("pods", pod["metadata"]["name"], {"status": {"phase": "Failed"}}, subresource="status")

    try:
        await client.patch("nodes", node_name, {"metadata": {"labels": {"vt": node_name}}})
        await client.create(DS, daemonset("agent", pod_spec={"nodeSelector": {"vt": node_name}}))
        first = await eventually(running_pod, what="the daemon pod running")
        await fail(first)
        second = await eventually(lambda: running_pod(first["metadata"]["uid"]), what="a first replacement")
        await fail(second)
        await quiesce(ctrl)
        await advance(clock, 0.5, ctrl)
        left = await client.get("pods", second["metadata"]["name"])
        assert left["status"]["phase"] == "Failed" and not left["metadata"].get("deletionTimestamp")
        await advance(clock, 0.6, ctrl)
        await eventually(lambda: running_pod(second["metadata"]["uid"]), what="a replacement after the back-off")
    finally:
        await kubelet.stop()
        await ctrls.stop()
    failed = [m for t, r, m in await events_for(client, "agent") if r == "FailedDaemonPod"]
    assert len(failed) == 2
