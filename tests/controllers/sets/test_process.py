"""``navarch controller-manager`` as its own process runs the DaemonSet and StatefulSet
controllers: a stateful set comes up in order, a daemon set reaches its node, both report
workqueue metrics, and the process stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import aiohttp
import pytest

from tests.controllers.sets.helpers import (
    DS,
    STS,
    HandKubelet,
    daemonset,
    eventually,
    pods_of,
    statefulset,
)
from tests.fixtures.apiserver import REPO, free_port


@pytest.fixture
def log(tmp_path):
    with open(tmp_path / "controller-manager.log", "wb") as f:
        yield f


async def test_controller_manager_process_runs_daemonsets_and_statefulsets(client, apiserver, log):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch", "controller-manager", "--kubeconfig", str(apiserver.kubeconfig),
        "--controllers=daemonset,statefulset", "--port", str(port),
        stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    node_name = "proc-" + uuid.uuid4().hex[:6]
    kubelet = await HandKubelet(client, node_name=node_name).start()
    try:
        await client.create(STS, statefulset("web", 2))

        async def web_up():
            pods = await pods_of(client, "web")
            names = [p["metadata"]["name"] for p in pods]
            st = (await client.get(STS, "web")).get("status") or {}
            return pods if names == ["web-0", "web-1"] and st.get("readyReplicas") == 2 else None
        await eventually(web_up, timeout=60, what="web-0 and web-1 ready")

        await client.patch("nodes", node_name, {"metadata": {"labels": {"proc": node_name}}})
        await client.create(DS, daemonset("agent", pod_spec={"nodeSelector": {"proc": node_name}}))

        async def agent_up():
            st = (await client.get(DS, "agent")).get("status") or {}
            return st if st.get("numberReady") == 1 and st.get("desiredNumberScheduled") == 1 else None
        await eventually(agent_up, timeout=60, what="the daemon pod ready")
        pods = await pods_of(client, "agent")
        assert [p["spec"]["nodeName"] for p in pods] == [node_name]

        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
        for name in ("daemonset", "statefulset"):
            assert f'workqueue_adds_total{{name="{name}"}}' in text
    finally:
        await kubelet.stop()
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, "the controller manager did not stop cleanly on SIGTERM"
