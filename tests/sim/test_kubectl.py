"""What kubectl shows of simulated nodes and their pods: real-looking state."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from tests.sim.helpers import condition, make_pod, pod_when

KUBECTL = shutil.which("kubectl")


async def kubectl(kubeconfig, *args: str) -> str:
    if KUBECTL is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not installed")
        pytest.skip("kubectl is not installed")
    proc = await asyncio.create_subprocess_exec(KUBECTL, "--kubeconfig", str(kubeconfig), *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_kubectl_sees_ready_nodes_and_running_pods(client, apiserver, simulate, namespace):
    sim = await simulate(count=2)
    node = f"{sim.cfg.name_prefix}1"
    rows = {line.split()[0]: line.split() for line in
            (await kubectl(apiserver.kubeconfig, "get", "nodes", "-o", "wide")).splitlines()[1:]}
    assert rows[node][1] == "Ready"
    assert "v1.32.0-sim" in rows[node] and "10.250.0.2" in rows[node]

    await client.create("pods", make_pod("shown", namespace))
    await client.bind(namespace, "shown", node)
    pod = await pod_when(client, namespace, "shown", lambda p: (condition(p, "Ready") or {}).get("status") == "True")
    out = await kubectl(apiserver.kubeconfig, "get", "pods", "-n", namespace, "-o", "wide")
    row = out.splitlines()[1].split()
    assert row[:5] == ["shown", "1/1", "Running", "0", row[4]]
    assert pod["status"]["podIP"] in row and node in row

    described = await kubectl(apiserver.kubeconfig, "describe", "node", node)
    assert "KubeletReady" in described and "10.250.0.2" in described
