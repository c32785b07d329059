"""The pod simulator in virtual time against a recording fake of the client: many pods cost no
task each, and exits, restarts and kills land at their due times."""

from __future__ import annotations

import asyncio
import contextlib

from api import errors
from client.clock import FakeClock
from client.informer import object_key
from client.workqueue import run_workers
from kubelet.sim.config import SimConfig
from kubelet.sim.pods import PodSimulator
from kubelet.sim.writes import WriteGate
from tests.sim.helpers import make_pod


class RecordingClient:
    """Stores pods in a dict and applies status patches to them, bumping resourceVersion."""

    def __init__(self, pods: dict[str, dict]):
        self.pods = pods
        self.rv = 100
        self.patches: list[tuple[str, dict]] = []
        self.deletes: list[str] = []

    async def patch(self, resource, name, body, namespace=None, *, subresource=None, **_):
        assert resource == "pods" and subresource == "status"
        key = f"{namespace}/{name}"
        pod = self.pods.get(key)
        if pod is None:
            raise errors.NotFound(f"pods {name} not found")
        if body["metadata"]["uid"] != pod["metadata"]["uid"]:
            raise errors.Conflict("uid precondition")
        self.rv += 1
        pod = dict(pod, status=body["status"], metadata=dict(pod["metadata"], resourceVersion=str(self.rv)))
        self.pods[key] = pod
        self.patches.append((key, body["status"]))
        return pod

    async def delete(self, resource, name, namespace=None, **_):
        self.deletes.append(f"{namespace}/{name}")
        self.pods.pop(f"{namespace}/{name}", None)
        return {}


def bound(name: str, node: str, **kw) -> dict:
    pod = make_pod(name, "ns", **kw)
    pod["metadata"].update(uid=f"uid-{name}", resourceVersion="1")
    pod["spec"]["nodeName"] = node
    return pod


@contextlib.asynccontextmanager
async def simulator(cfg: SimConfig, clock: FakeClock):
    pods: dict[str, dict] = {}
    client = RecordingClient(pods)
    sim = PodSimulator(client, cfg, WriteGate(cfg.max_inflight), pod_cache=pods.get, clock=clock)
    workers = asyncio.create_task(run_workers(sim.queue, sim.sync, cfg.max_inflight))
    try:
        yield sim, client, pods
    finally:
        sim.queue.shut_down()
        workers.cancel()
        await asyncio.gather(workers, return_exceptions=True)


def phase(pods: dict, key: str) -> str | None:
    return (pods[key].get("status") or {}).get("phase")


async def test_a_thousand_pods_need_no_task_each_and_exit_on_time():
    clock = FakeClock()
    cfg = SimConfig(count=10, max_inflight=8)
    async with simulator(cfg, clock) as (sim, client, pods):
        await clock.settle()                          # workers started
        tasks_before = len(asyncio.all_tasks())
        for i in range(1000):
            pod = bound(f"p{i}", f"sim-{i % 10}", restart_policy="Never", exit_after="5s")
            pods[object_key(pod)] = pod
            sim.on_add(pod)
        assert await clock.run_until(lambda: all(phase(pods, k) == "Running" for k in pods), limit=0.5)
        # Waiting pods are entries in the queue's timer heap, not sleeping tasks.
        assert len(asyncio.all_tasks()) <= tasks_before + 3   # + the queue timer task and its two waits
        assert len(client.patches) == 1000
        ips = {p["status"]["podIP"] for p in pods.values()}
        assert len(ips) == 1000, "every pod has its own address"
        await clock.advance(4.9)
        assert all(phase(pods, k) == "Running" for k in pods)
        await clock.advance(0.2)
        assert all(phase(pods, k) == "Succeeded" for k in pods)
        assert len(client.patches) == 2000, "one write per change, nothing more"
        for pod in sim.ranges.values():
            assert len(pod) == 0, "terminal pods give their addresses back"


async def test_back_off_doubles_in_virtual_time():
    clock = FakeClock()
    cfg = SimConfig(count=1, restart_backoff=10, restart_backoff_max=40)
    async with simulator(cfg, clock) as (sim, client, pods):
        pod = bound("crash", "sim-0", restart_policy="Always", exit_after="1s", exit_code="1")
        pods["ns/crash"] = pod
        sim.on_add(pod)
        await clock.run_until(lambda: phase(pods, "ns/crash") == "Running", limit=0.1)
        starts = []

        def restarts() -> int:
            return pods["ns/crash"]["status"]["containerStatuses"][0]["restartCount"]

        for want in range(1, 6):
            assert await clock.run_until(lambda w=want: restarts() == w, limit=100)
            starts.append(clock.monotonic())
        gaps = [round(b - a) for a, b in zip(starts, starts[1:], strict=False)]
        # Each run lasts 1 s; the waits after it are 10, 20, 40, 40 s.
        assert gaps == [11, 21, 41, 41]


async def test_kill_waits_for_the_shorter_of_grace_and_termination_delay():
    clock = FakeClock()
    cfg = SimConfig(count=1, termination_delay=20)
    async with simulator(cfg, clock) as (sim, client, pods):
        pod = bound("victim", "sim-0")
        pods["ns/victim"] = pod
        sim.on_add(pod)
        await clock.run_until(lambda: phase(pods, "ns/victim") == "Running", limit=0.1)
        old = pods["ns/victim"]
        new = dict(old, metadata=dict(old["metadata"], deletionTimestamp="2030-01-01T00:00:00Z",
                                      deletionGracePeriodSeconds=5, resourceVersion="999"))
        pods["ns/victim"] = new
        sim.on_update(old, new)
        await clock.advance(4.9)
        assert client.deletes == []
        await clock.advance(0.2)
        assert client.deletes == ["ns/victim"]
        last = client.patches[-1][1]
        assert last["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
        assert last["phase"] == "Failed"
