"""Real kubectl against DaemonSets and StatefulSets these controllers roll out: ``rollout
status``, ``rollout history`` and ``rollout undo`` read and write the ControllerRevisions."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid

import pytest

from controller_manager.controllers.daemonset import DaemonSetController
from controller_manager.controllers.statefulset import StatefulSetController
from tests.controllers.sets.helpers import (
    DS,
    REVISIONS,
    STS,
    Cluster,
    Controllers,
    HandKubelet,
    daemonset,
    eventually,
    pods_of,
    statefulset,
)
from tests.fixtures.apiserver import ApiServer

KUBECTL = "/usr/bin/kubectl"


@pytest.fixture
def apiserver(tmp_path):
    """A server per test: the daemon set runs on every node of the cluster."""
    server = ApiServer(tmp_path / "apiserver").start()
    yield server
    server.stop()


@pytest.fixture
def kubectl(apiserver, client, tmp_path):
    exe = KUBECTL if os.path.exists(KUBECTL) else shutil.which("kubectl")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is required")
        pytest.skip("kubectl not installed")
    base = [exe, "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir", str(tmp_path / "kcache"),
            "-n", client.namespace]

    async def run(*args: str, timeout: float = 90) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(*base, *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode, out.decode(), err.decode()
    return run


def images(pods: list[dict]) -> list[str]:
    return [p["spec"]["containers"][0]["image"] for p in pods if not p["metadata"].get("deletionTimestamp")]


async def test_daemonset_rollout_status_history_and_undo(client, kubectl):
    cluster = await Cluster(client, 2, "k" + uuid.uuid4().hex[:4] + "-").start()
    ctrls = await Controllers(client, [DaemonSetController]).start()
    try:
        await client.create(DS, daemonset("agent"))
        code, out, err = await kubectl("rollout", "status", "daemonset/agent", "--timeout=60s")
        assert code == 0, err
        assert out.strip().endswith('daemon set "agent" successfully rolled out')
        code, _, err = await kubectl("set", "image", "daemonset/agent", "app=busybox:2")
        assert code == 0, err
        code, out, err = await kubectl("rollout", "status", "daemonset/agent", "--timeout=60s")
        assert code == 0, err
        assert 'daemon set "agent" successfully rolled out' in out
        assert images(await pods_of(client, "agent")) == ["busybox:2"] * 2
        code, out, err = await kubectl("rollout", "history", "daemonset/agent")
        assert code == 0, err
        rows = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
        assert rows == ["1", "2"]
        code, out, err = await kubectl("rollout", "undo", "daemonset/agent")
        assert code == 0, err
        assert "daemonset.apps/agent rolled back" in out
        ds = await client.get(DS, "agent")
        assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"

        async def undone():
            pods = await pods_of(client, "agent")
            return pods if images(pods) == ["busybox:1"] * 2 and len(pods) == 2 else None
        await eventually(undone, timeout=60, what="pods back on busybox:1")
        code, out, err = await kubectl("rollout", "status", "daemonset/agent", "--timeout=60s")
        assert code == 0, err
        revisions = sorted((r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0]["image"])
                           for r in (await client.list(REVISIONS, client.namespace))["items"])
        assert revisions == [(2, "busybox:2"), (3, "busybox:1")]
    finally:
        await ctrls.stop()
        await cluster.stop()


async def test_statefulset_rollout_status_and_undo(client, kubectl):
    kubelet = await HandKubelet(client).start()
    ctrls = await Controllers(client, [StatefulSetController]).start()
    try:
        await client.create(STS, statefulset("web", 3))
        code, out, err = await kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
        assert code == 0, err
        first = (await client.get(STS, "web"))["status"]["updateRevision"]
        # The API server defaults partition to 0, so kubectl reports a partitioned roll out.
        assert out.strip().endswith("partitioned roll out complete: 3 new pods have been updated...")
        code, _, err = await kubectl("set", "image", "statefulset/web", "app=busybox:2")
        assert code == 0, err
        code, out, err = await kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
        assert code == 0, err
        second = (await client.get(STS, "web"))["status"]["updateRevision"]
        assert second != first
        assert out.strip().endswith("partitioned roll out complete: 3 new pods have been updated...")
        assert images(await pods_of(client, "web")) == ["busybox:2"] * 3
        code, out, err = await kubectl("rollout", "undo", "statefulset/web")
        assert code == 0, err
        assert "statefulset.apps/web rolled back" in out
        code, out, err = await kubectl("rollout", "status", "statefulset/web", "--timeout=60s")
        assert code == 0, err
        assert (await client.get(STS, "web"))["status"]["currentRevision"] == first
        assert images(await pods_of(client, "web")) == ["busybox:1"] * 3
    finally:
        await ctrls.stop()
        await kubelet.stop()
