"""``navarch simulate-nodes`` as a process: SIGTERM leaves the nodes, a restart takes them over
(pods included), ``--cleanup`` deletes them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys

import aiohttp

from kubelet.sim.app import main
from kubelet.sim.nodes import LEASE_NAMESPACE, LEASES
from tests.fixtures.apiserver import REPO, free_port
from tests.sim.conftest import short_name
from tests.sim.helpers import condition, eventually, first_container, gone, make_pod, pod_when


class SimProcess:
    def __init__(self, kubeconfig, log_path, *args: str):
        self.args = [sys.executable, "-m", "navarch", "simulate-nodes", "--kubeconfig", str(kubeconfig), *args]
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> SimProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        return self

    async def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, 30)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]


@contextlib.asynccontextmanager
async def running(sim: SimProcess):
    sim.start()
    try:
        yield sim
    finally:
        sim.kill()


async def scrape(port: int) -> str | None:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    except aiohttp.ClientError:
        return None
    return text if "navarch_sim_nodes 2.0" in text else None


def running_ready(pod: dict) -> bool:
    ready = condition(pod, "Ready")
    return pod.get("status", {}).get("phase") == "Running" and bool(ready) and ready["status"] == "True"


async def test_restart_takes_over_nodes_and_pods_and_cleanup_deletes(client, apiserver, namespace, request,
                                                                     tmp_path):
    prefix = short_name(request) + "-"
    args = ("--count", "2", "--name-prefix", prefix, "--lease-renew-interval", "1s",
            "--node-status-update-frequency", "1s")
    node = f"{prefix}0"

    async def ready(name):
        try:
            n = await client.get("nodes", name)
        except Exception:  # noqa: BLE001 - not registered yet
            return None
        c = condition(n, "Ready")
        return n if c and c["status"] == "True" else None

    port = free_port()
    first = SimProcess(apiserver.kubeconfig, tmp_path / "first.log", *args, "--port", str(port))
    async with running(first):
        registered = await eventually(lambda: ready(node), what="node registered")
        await eventually(lambda: ready(f"{prefix}1"), what="second node registered")
        metrics = await eventually(lambda: scrape(port), what="metrics served")
        assert "navarch_sim_nodes 2.0" in metrics and "navarch_sim_lease_renewals_total" in metrics
        await client.create("pods", make_pod("survivor", namespace))
        await client.bind(namespace, "survivor", node)
        before = await pod_when(client, namespace, "survivor", running_ready)
        assert await first.terminate() == 0, first.log()

    # Stopped: the nodes stay, and their Leases are renewed no more.
    lease = await client.get(LEASES, node, LEASE_NAMESPACE)
    await asyncio.sleep(2.5)
    assert (await client.get(LEASES, node, LEASE_NAMESPACE))["spec"]["renewTime"] == lease["spec"]["renewTime"]
    # As the node lifecycle controller would report it once the Lease expired.
    stale = await client.get("nodes", node)
    conditions = [dict(c, status="Unknown", reason="NodeStatusUnknown") if c["type"] == "Ready" else c
                  for c in stale["status"]["conditions"]]
    await client.patch("nodes", node, {"status": {"conditions": conditions}}, subresource="status")

    second = SimProcess(apiserver.kubeconfig, tmp_path / "second.log", *args, "--cleanup")
    async with running(second):
        again = await eventually(lambda: ready(node), what="node Ready again")
        assert again["metadata"]["uid"] == registered["metadata"]["uid"], "taken over, not recreated"

        async def renewed():
            current = await client.get(LEASES, node, LEASE_NAMESPACE)
            return current["spec"]["renewTime"] != lease["spec"]["renewTime"]

        await eventually(renewed, what="lease renewed by the new process")
        pod = await pod_when(client, namespace, "survivor", running_ready)
        assert pod["status"]["podIP"] == before["status"]["podIP"]
        assert first_container(pod)["containerID"] == first_container(before)["containerID"]
        assert first_container(pod)["restartCount"] == 0
        # The new process plays the node agent for the old pod too: deletion completes.
        await client.delete("pods", "survivor", namespace)
        await eventually(lambda: gone(client, "pods", "survivor", namespace), what="pod gone")
        assert await second.terminate() == 0, second.log()

    assert await gone(client, "nodes", node) and await gone(client, "nodes", f"{prefix}1")


def test_bad_flags_are_refused_with_the_flag_named(capsys):
    for argv, flag in ((["--taints", "dedicated=x"], "--taints"), (["--labels", "novalue"], "--labels"),
                       (["--count", "300", "--pod-cidr", "10.0.0.0/16"], "--pod-cidr"),
                       (["--memory", "lots"], "--memory"), (["--restart-backoff", "soon"], "--restart-backoff")):
        assert main(argv) == 2
        assert flag in capsys.readouterr().err


async def test_a_foreign_node_of_the_same_name_stops_the_process(client, apiserver, request, tmp_path):
    name = short_name(request) + "-0"
    await client.create("nodes", {"metadata": {"name": name}})
    try:
        sim = SimProcess(apiserver.kubeconfig, tmp_path / "sim.log", "--count", "1", "--name-prefix",
                         short_name(request) + "-", "--cleanup")
        async with running(sim):
            code = await asyncio.to_thread(sim.proc.wait, 60)
        assert code == 1, sim.log()
        assert "not a simulated node" in sim.log()
        assert not await gone(client, "nodes", name), "a node it refused is never deleted"
    finally:
        await client.delete("nodes", name)
