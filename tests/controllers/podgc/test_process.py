"""``navarch controller-manager --controllers=podgc`` as its own process, on the real clock: its
first pass, made at start, ends an unscheduled terminating pod; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.controllers.lifecycle.helpers import eventually
from tests.controllers.podgc.helpers import HOLD, add_pod, terminating
from tests.fixtures.apiserver import REPO, free_port


@pytest.fixture
def log(tmp_path):
    with open(tmp_path / "controller-manager.log", "wb") as f:
        yield f


async def test_controller_manager_process_runs_podgc(client, apiserver, log):
    await add_pod(client, "unbound", phase="Pending", finalizers=[HOLD])
    await terminating(client, "unbound")
    await add_pod(client, "waiting", phase="Pending")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "navarch", "controller-manager", "--kubeconfig", str(apiserver.kubeconfig),
        "--controllers=podgc", "--port", str(free_port()),
        stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        async def failed():
            return (await client.get("pods", "unbound"))["status"]["phase"] == "Failed"
        await eventually(failed, timeout=60, what="the unscheduled terminating pod made Failed by the process")
        assert (await client.get("pods", "waiting"))["status"]["phase"] == "Pending"
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, "the controller manager did not stop cleanly on SIGTERM"
    text = (await asyncio.to_thread(Path(log.name).read_bytes)).decode(errors="replace")
    assert "PodGC is force deleting Pod" in text and f"{client.namespace}/unbound" in text, text[-2000:]
