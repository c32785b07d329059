"""navctl why-pending against a real scheduler process, plus rendering of partial answers and the
errors for an unknown pod and an unreachable scheduler."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from cli.cmd_whypending import render
from tests.cli.builders import node
from tests.fixtures.apiserver import REPO, free_port


@pytest.fixture
async def scheduler(apiserver, tmp_path):
    port = free_port()
    log = await asyncio.to_thread(open, tmp_path / "scheduler.log", "wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch", "scheduler", "--kubeconfig", str(apiserver.kubeconfig),
        "--port", str(port), stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(url + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.returncode is not None:
                    raise RuntimeError((tmp_path / "scheduler.log").read_text())
                await asyncio.sleep(0.1)
        yield url
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def test_explains_a_pod_that_fits_nowhere(navctl, api, ns, scheduler):
    taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    for n in (node(f"{ns}-small", cpu="1"), node(f"{ns}-mid", cpu="2"), node(f"{ns}-gpu", cpu="8")):
        if n["metadata"]["name"].endswith("gpu"):
            n["spec"]["taints"] = taint
        await api.create("nodes", n)
    await api.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge", "namespace": ns},
                              "spec": {"containers": [{"name": "c", "image": "busybox",
                                                       "resources": {"requests": {"cpu": "3"}}}]}})
    for _ in range(300):
        r = await navctl("why-pending", "huge", "-n", ns, "--scheduler", scheduler)
        if r.code == 0 and "Insufficient cpu" in r.out:
            break
        await asyncio.sleep(0.2)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith(f"Pod {ns}/huge: 0/")
    assert "nodes are available" in lines[0]
    mid = next(x for x in lines if x.startswith(f"{ns}-mid "))
    assert "NodeResourcesFit" in mid and "Insufficient cpu" in mid
    gpu = next(x for x in lines if x.startswith(f"{ns}-gpu "))
    assert "TaintToleration" in gpu
    assert "Headroom on the closest nodes (free allocatable):" in lines
    assert "Suggestions:" in lines
    assert any(x.startswith("  - ") for x in lines[lines.index("Suggestions:"):])

    r = await navctl.fails("why-pending", "ghost", "-n", ns, "--scheduler", scheduler)
    assert r.err == (f"error: the scheduler at {scheduler} answered 404: pod {ns}/ghost not found in the "
                     "scheduler's cache\n")


async def test_unreachable_scheduler(navctl):
    url = f"http://127.0.0.1:{free_port()}"
    r = await navctl.fails("why-pending", "x", "--scheduler", url)
    assert r.err.startswith(f"error: cannot reach the scheduler at {url}")


@pytest.mark.parametrize("doc,expected", [
    ({"pod": "default/web", "summary": "0/1 nodes are available: 1 Insufficient cpu.",
      "nodes": [{"node": "n1", "plugin": "NodeResourcesFit", "reasons": ["Insufficient cpu"],
                 "headroom": {"cpu": "500m", "memory": "1Gi"}}],
      "suggestions": ["lower the cpu request to 500m"]},
     ["Pod default/web: 0/1 nodes are available: 1 Insufficient cpu.", "",
      "NODE   PLUGIN             REASONS", "n1     NodeResourcesFit   Insufficient cpu", "",
      "Headroom on the closest nodes (free allocatable):", "NODE   CPU    MEMORY", "n1     500m   1Gi", "",
      "Suggestions:", "  - lower the cpu request to 500m"]),
    ({"pod": "default/web"}, ["Pod default/web"]),
    ({"nodes": [{"node": "n1"}], "queue": "backoff"},
     ["Queue: backoff", "", "NODE   PLUGIN   REASONS", "n1"]),
    ({"summary": "1/2 nodes can run the pod now: n2",
      "nodes": [{"node": "n2", "fits": True, "plugin": None, "reasons": []},
                {"node": "n1", "fits": False, "failures": [{"plugin": "A", "reasons": ["x"]},
                                                           {"plugin": "B", "reasons": ["y", "z"]}]}]},
     ["1/2 nodes can run the pod now: n2", "",
      "NODE   FITS   PLUGIN   REASONS", "n2     yes             -", "n1     no     A        x",
      "              B        y; z"]),
])
def test_render_prints_what_is_present(doc, expected):
    assert render(doc).splitlines() == expected
