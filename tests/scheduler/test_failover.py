"""Two ``navarch scheduler --leader-elect`` processes: one schedules; the other takes over when the
leader is killed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import aiohttp

from tests.fixtures.apiserver import REPO, free_port
from tests.scheduler.builders import bound_node, create_nodes, node, pod

LEASE = "leases.coordination.k8s.io"


def _start(kubeconfig, port: int, log_path) -> subprocess.Popen:
    args = [sys.executable, "-m", "navarch", "scheduler", "--kubeconfig", str(kubeconfig), "--leader-elect",
            "--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s",
            "--leader-elect-retry-period", "500ms", "--port", str(port)]
    with open(log_path, "ab") as logf:
        return subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))


async def _leading(port: int) -> bool:
    """A replica serves the cache summary only while it leads (and has synced)."""
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/debug/cache", timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _wait_leader(ports: list[int], timeout: float = 30.0) -> int:
    for _ in range(int(timeout * 10)):
        for p in ports:
            if await _leading(p):
                return p
        await asyncio.sleep(0.1)
    raise AssertionError("no scheduler replica became leader")


async def test_standby_takes_over_when_the_leader_dies(cluster, apiserver, tmp_path):
    c = cluster.client
    await create_nodes(c, node("n1"))
    ports = [free_port(), free_port()]
    procs = {p: _start(apiserver.kubeconfig, p, tmp_path / f"sched-{p}.log") for p in ports}
    try:
        leader = await _wait_leader(ports)
        standby = next(p for p in ports if p != leader)
        await c.create("pods", pod("before"))
        assert await bound_node(c, "before") == "n1"
        lease = await c.get(LEASE, "navarch-scheduler", "kube-system")
        first_holder = lease["spec"]["holderIdentity"]
        assert not await _leading(standby)

        procs[leader].kill()
        procs[leader].wait()
        await c.create("pods", pod("after"))
        assert await bound_node(c, "after", timeout=30) == "n1"
        assert await _wait_leader([standby], timeout=5) == standby
        lease = await c.get(LEASE, "navarch-scheduler", "kube-system")
        assert lease["spec"]["holderIdentity"] != first_holder
        assert lease["spec"].get("leaseTransitions", 0) >= 1
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
