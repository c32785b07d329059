"""``navarch controller-manager`` as its own process with these controllers: the default service
account appears, a namespace deletion completes, and a node gets its pod range."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time

import pytest

from api import errors
from tests.controllers.lifecycle.helpers import configmap, eventually, gone, node
from tests.fixtures.apiserver import REPO, free_port

CONTROLLERS = "garbagecollector,namespace,serviceaccount,nodeipam,nodelifecycle,taint-eviction-controller"


@pytest.fixture
def log(tmp_path):
    with open(tmp_path / "controller-manager.log", "wb") as f:
        yield f


async def test_controller_manager_process(client, apiserver, log):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch", "controller-manager", "--kubeconfig", str(apiserver.kubeconfig),
        f"--controllers={CONTROLLERS}", "--cluster-cidr", "10.77.0.0/16", "--port", str(port),
        stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    name = f"{client.namespace}-proc"
    try:
        ns = client.namespace

        async def default_sa():
            with contextlib.suppress(errors.NotFound):
                return await client.get("serviceaccounts", "default", ns)
            return None
        await eventually(default_sa, timeout=60, what="default service account from the process")

        await client.create("nodes", node(name, time.time()))

        async def cidr():
            return (await client.get("nodes", name))["spec"].get("podCIDR")
        assert (await eventually(cidr, what="pod CIDR")).startswith("10.77.")

        await client.create("configmaps", configmap("c"))
        await client.delete("namespaces", ns)
        await eventually(lambda: gone(client, "namespaces", ns), what="namespace deleted by the process")
    finally:
        with contextlib.suppress(errors.NotFound):
            await client.delete("nodes", name)
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, "the controller manager did not stop cleanly on SIGTERM"
