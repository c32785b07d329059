"""``navarch controller-manager`` as its own process with the endpoints, slice, job, cronjob and TTL
controllers: a Service gets Endpoints and a slice, a Job runs to completion on simulated nodes
and is deleted after its TTL; ``/metrics`` counts each controller's queue."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request

import pytest

from api import errors
from kubelet.sim.config import SimConfig
from kubelet.sim.simulator import Simulator
from tests.controllers.batch.helpers import CRONJOBS, JOBS, Binder, conditions, cronjob, eventually, job
from tests.controllers.endpoints.helpers import pod, service
from tests.fixtures.apiserver import REPO, free_port

CONTROLLERS = "endpoint,endpointslice,job,cronjob,ttl-after-finished"


@pytest.fixture
async def cluster(client):
    sim = Simulator(client, SimConfig(count=1, name_prefix=client.namespace + "-", lease_renew_interval=1.0,
                                      cleanup=True))
    await sim.start()
    binder = await Binder(client, [client.namespace + "-0"]).start()
    yield
    await binder.stop()
    await sim.stop()


async def test_controller_manager_process(client, apiserver, cluster, tmp_path):
    port = free_port()
    log = await asyncio.to_thread(open, tmp_path / "controller-manager.log", "wb")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "navarch", "controller-manager", "--kubeconfig", str(apiserver.kubeconfig),
            f"--controllers={CONTROLLERS}", "--port", str(port), stdout=log, stderr=asyncio.subprocess.STDOUT,
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    finally:
        log.close()
    try:
        await client.create("services", service("web", {"app": "web"}))
        await client.create("pods", pod("a", {"app": "web"}))      # bound by the binder, run by the simulator

        async def endpoints():
            try:
                ep = await client.get("endpoints", "web")
            except errors.NotFound:
                return None
            slices = (await client.list("endpointslices.discovery.k8s.io", client.namespace))["items"]
            return ep if ep.get("subsets") and slices and slices[0].get("endpoints") else None

        ep = await eventually(endpoints, timeout=60, what="endpoints and a slice")
        ip = (await client.get("pods", "a"))["status"]["podIP"]
        assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == [ip]

        await client.create(JOBS, job("once", ttlSecondsAfterFinished=2))
        await client.create(CRONJOBS, cronjob("idle", "0 0 1 1 *", suspend=True))

        async def complete():
            try:
                j = await client.get(JOBS, "once")
            except errors.NotFound:
                return "deleted"
            return j if "Complete" in conditions(j) else None

        assert await eventually(complete, timeout=60, what="the job complete") is not None

        async def deleted():
            return await complete() == "deleted"

        await eventually(deleted, timeout=60, what="the job deleted after its TTL")

        def metrics() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return r.read().decode()

        text = await asyncio.to_thread(metrics)
        for name in CONTROLLERS.split(","):
            assert f'workqueue_adds_total{{name="{name}"}}' in text, name
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, (tmp_path / "controller-manager.log").read_text()[-3000:]
