"""Deployments end to end with the real processes: ``navarch scheduler``,
``navarch simulate-nodes`` and ``navarch controller-manager --controllers replicaset,deployment``
against a real API server, read by real kubectl.

Pods are held back by scheduling, the way a real cluster holds them: a template whose
nodeSelector no node satisfies stays Pending until a test labels a node to open that gate.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from controller_manager import deploymentutil as du
from controller_manager.common import is_pod_ready
from tests.controllers.workloads.helpers import deployment, eventually
from tests.fixtures.apiserver import REPO
from tests.fixtures.require import require

DEP = "deployments.apps"
RS = "replicasets.apps"
KUBECTL = "/usr/bin/kubectl"
NODES = 3


@pytest.fixture(scope="module")
def components(apiserver, tmp_path_factory):
    """The scheduler, three simulated nodes and the controller manager, stopped by PID."""
    logs = tmp_path_factory.mktemp("components")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    kc = str(apiserver.kubeconfig)
    commands = {
        "scheduler": ["scheduler", "--kubeconfig", kc, "--port", "-1"],
        "simulate-nodes": ["simulate-nodes", "--kubeconfig", kc, "--count", str(NODES), "--name-prefix",
                           "wl-", "--pod-startup-delay", "200ms"],
        "controller-manager": ["controller-manager", "--kubeconfig", kc, "--controllers",
                               "replicaset,deployment", "--port", "-1"],
    }
    procs = {}
    try:
        for name, args in commands.items():
            with open(logs / f"{name}.log", "ab") as log:
                procs[name] = subprocess.Popen([sys.executable, "-m", "navarch", *args], stdout=log,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                                               env=env)
        yield logs
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def kubectl(apiserver, client, tmp_path):
    require(KUBECTL)
    base = [KUBECTL, "--kubeconfig", str(apiserver.kubeconfig), "--cache-dir", str(tmp_path / "kcache"),
            "-n", client.namespace]

    async def run(*args: str, timeout: float = 90) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(*base, *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return proc.returncode, out.decode(), err.decode()

    run.base = base
    return run


@pytest.fixture
async def nodes(client, components):
    async def ready():
        items = (await client.list("nodes", label_selector=None))["items"]
        mine = [n for n in items if n["metadata"]["name"].startswith("wl-") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or [])]
        return mine if len(mine) == NODES else None

    return await eventually(ready, timeout=60, what="simulated nodes Ready")


def gated(d: dict, gate: str) -> dict:
    d["spec"]["template"]["spec"]["nodeSelector"] = {gate: "open"}
    return d


async def open_gate(client, gate: str) -> None:
    for i in range(NODES):
        await client.patch("nodes", f"wl-{i}", {"metadata": {"labels": {gate: "open"}}})


async def test_rollout_status_stage_by_stage_on_simulated_nodes(client, nodes, kubectl):
    """kubectl rollout status reports each stage of a first rollout and an update, as against
    Kubernetes: waiting for availability, new replicas updated, old replicas terminating, done."""
    gate1, gate2 = f"gate1-{client.namespace}", f"gate2-{client.namespace}"
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await client.create(DEP, gated(deployment("web", 3, strategy=strategy), gate1))
    proc = await asyncio.create_subprocess_exec(*kubectl.base, "rollout", "status", "deployment/web",
                                                "--timeout=120s", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            lines.append(raw.decode().rstrip("\n"))

    reader = asyncio.create_task(read())

    async def saw(text: str):
        return any(text in ln for ln in lines) or None

    await eventually(lambda: saw('Waiting for deployment "web" rollout to finish: 0 of 3 updated replicas are '
                                 'available...'), timeout=60, what="waiting for availability")
    await open_gate(client, gate1)
    assert await asyncio.wait_for(proc.wait(), 90) == 0
    await reader
    assert lines[-1] == 'deployment "web" successfully rolled out', lines

    # The update: new pods held back by a second gate, so the stages can be seen one by one.
    await client.patch(DEP, "web", {"spec": {"template": {"spec": {
        "nodeSelector": {gate2: "open"}, "containers": [{"name": "app", "image": "busybox:2"}]}}}})

    async def status_says(text: str):
        code, out, err = await kubectl("rollout", "status", "deployment/web", "--watch=false")
        assert code == 0, err
        return out.strip() == text or None

    await eventually(lambda: status_says('Waiting for deployment "web" rollout to finish: 1 out of 3 new '
                                         'replicas have been updated...'), timeout=60, what="1 of 3 updated")
    lines.clear()
    proc = await asyncio.create_subprocess_exec(*kubectl.base, "rollout", "status", "deployment/web",
                                                "--timeout=120s", stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    reader = asyncio.create_task(read())
    await open_gate(client, gate2)
    assert await asyncio.wait_for(proc.wait(), 90) == 0
    await reader
    assert lines[-1] == 'deployment "web" successfully rolled out', lines
    assert all(ln.startswith('Waiting for deployment "web" rollout to finish: ') for ln in lines[:-1]), lines
    d = await client.get(DEP, "web")
    assert d["metadata"]["annotations"][du.REVISION] == "2"


async def test_scale_and_rolling_update_keep_availability_on_simulated_nodes(client, nodes, kubectl):
    replicas = 6
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}}
    await client.create(DEP, deployment("ru", 2, strategy=strategy))
    code, out, err = await kubectl("scale", "deployment/ru", f"--replicas={replicas}")
    assert code == 0, err
    code, out, err = await kubectl("rollout", "status", "deployment/ru", "--timeout=90s")
    assert code == 0, (out, err)

    listing = await client.list("pods", client.namespace, label_selector="app=ru")
    pods = {p["metadata"]["name"]: p for p in listing["items"]}
    assert len(pods) == replicas and all(p["spec"].get("nodeName", "").startswith("wl-") for p in pods.values())
    lows: list[int] = []

    def available() -> int:
        return sum(1 for p in pods.values() if is_pod_ready(p) and not p["metadata"].get("deletionTimestamp"))

    async def watch() -> None:
        async with client.watch("pods", client.namespace, label_selector="app=ru",
                                resource_version=listing["metadata"]["resourceVersion"]) as w:
            async for etype, p in w:
                if etype == "BOOKMARK":
                    continue
                if etype == "DELETED":
                    pods.pop(p["metadata"]["name"], None)
                else:
                    pods[p["metadata"]["name"]] = p
                lows.append(available())

    watcher = asyncio.create_task(watch())
    try:
        code, out, err = await kubectl("set", "image", "deployment/ru", "app=busybox:2")
        assert code == 0, err
        code, out, err = await kubectl("rollout", "status", "deployment/ru", "--timeout=90s")
        assert code == 0, (out, err)
        await asyncio.sleep(0.5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert len(lows) > 2 * replicas
    assert min(lows) >= replicas - 1, lows

    code, out, err = await kubectl("rollout", "undo", "deployment/ru")
    assert code == 0, err
    code, out, err = await kubectl("rollout", "status", "deployment/ru", "--timeout=90s")
    assert code == 0, (out, err)
    d = await client.get(DEP, "ru")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert d["metadata"]["annotations"][du.REVISION] == "3"
    code, out, err = await kubectl("scale", "deployment/ru", "--replicas=1")
    assert code == 0, err

    async def one_left():
        live = [p for p in (await client.list("pods", client.namespace, label_selector="app=ru"))["items"]
                if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 1 or None

    await eventually(one_left, timeout=60, what="scaled down to one pod")
