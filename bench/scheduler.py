"""Scheduler benchmarks, after kube-scheduler's scheduler_perf (SchedulingBasic, anti-affinity).

    python -m bench.scheduler [--nodes 500,5000] [--pods 10000] [--quick] [--only algo,e2e,backlog,anti,requests]
                              [--profile]

- ``e2e``: the real API server (SQLite) and ``navarch scheduler`` as its own process. Nodes are
  Node objects created through the API (capacity, allocatable, Ready), as simulated nodes
  register them; then the pods are created as fast as the API takes them. Throughput counts
  from the first create to the last binding seen on a watch.
- ``algo``: the scheduler's algorithm alone in this process: cache preloaded with the nodes,
  pods pushed straight into the queue, binding stubbed (no API). Shows what the scheduling cycle
  itself costs; ``--profile`` prints where the time goes.
- ``backlog``: end to end, but every pod exists before the scheduler starts: its own pace with
  real bindings, not bounded by how fast the API creates pods.
- ``anti``: 2000 pods with required inter-pod anti-affinity (groups of 5 that must not share a
  node) on 500 nodes, with the algorithm alone and end to end.
- ``requests``: what each request of a scheduled pod costs the API server, in its CPU time:
  the pod's create, its binding, the ``Scheduled`` event, each sent alone (16 at a time) with
  one all-pods watch open (as the scheduler's informer), then with three (scheduler, bench and a
  controller-manager's), to show the cost of a watch delivery.

Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.fixtures.apiserver import ApiServer, free_port

REPO = Path(__file__).resolve().parents[1]


# -- objects --------------------------------------------------------------------------------------

def node_obj(i: int) -> dict:
    name = f"node-{i:05d}"
    alloc = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "topology.kubernetes.io/zone": f"zone-{i % 3}"}},
            "spec": {},
            "status": {"capacity": dict(alloc), "allocatable": dict(alloc),
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def pod_obj(i: int, anti: bool = False, namespace: str = "bench") -> dict:
    meta: dict[str, Any] = {"name": f"pod-{i:06d}", "namespace": namespace, "labels": {"app": "bench"}}
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.local/pause:3.9",
                                            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}
    if anti:
        group = f"g{i // 5}"
        meta["labels"] = {"app": "bench", "group": group}
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"group": group}}, "topologyKey": "kubernetes.io/hostname"}]}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


# -- the algorithm alone --------------------------------------------------------------------------

class StubClient:
    """Stands in for the API: bindings and status writes succeed at once."""

    def __init__(self) -> None:
        self.bound = 0

    async def bind(self, namespace: str, name: str, node: str) -> None:
        self.bound += 1

    async def patch(self, *a: Any, **kw: Any) -> dict:
        return {}

    async def create(self, resource: Any, obj: dict, *a: Any, **kw: Any) -> dict:
        return obj


class NullRecorder:
    def event(self, *a: Any) -> None: ...

    def normal(self, *a: Any) -> None: ...

    def warning(self, *a: Any) -> None: ...

    async def stop(self, flush: bool = True) -> None: ...


async def algo(nodes: int, pods: int, anti: bool = False, profile: bool = False) -> dict:
    from scheduler.scheduler import Scheduler

    client = StubClient()
    sched = Scheduler(client, recorder=NullRecorder())  # type: ignore[arg-type]
    for i in range(nodes):
        sched.cache.add_node(node_obj(i))
    objs = []
    for i in range(pods):
        p = pod_obj(i, anti)
        p["metadata"]["uid"] = f"uid-{i}"
        p["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        p["spec"]["schedulerName"] = "default-scheduler"
        objs.append(p)
    for p in objs:
        sched.queue.add(p)

    async def until_done() -> None:
        while sched.scheduled + sched.failed_attempts < pods:
            await asyncio.sleep(0.01)
        await sched.queue.close()

    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    await asyncio.gather(sched.schedule_loop(), until_done())
    await sched.wait_for_bindings()
    if prof:
        prof.disable()
    dt = time.perf_counter() - t0
    out = {"scenario": "algo" + ("-anti" if anti else ""), "nodes": nodes, "pods": pods,
           "scheduled": sched.scheduled, "seconds": round(dt, 2), "pods_per_s": round(sched.scheduled / dt, 1)}
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
        out["profile"] = s.getvalue()
    return out


# -- end to end -----------------------------------------------------------------------------------

async def _create_all(url: str, path: str, bodies: list[bytes], concurrency: int) -> float:
    """Create everything as fast as the API takes it; returns the wall time of the first create.
    Sent with the project's client, whose transport costs the load generator little CPU on
    a machine it shares with the server and the scheduler."""
    from api import errors
    from client.rest import Client

    it = iter(bodies)
    first = time.perf_counter()
    async with Client(url, pool_size=concurrency) as c:
        async def worker() -> None:
            for body in it:
                for _ in range(20):
                    try:
                        await c.request("POST", path, body=body)
                        break
                    except errors.AlreadyExists:
                        break
                    except (errors.TooManyRequests, errors.InternalError, errors.ServiceUnavailable):
                        await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"create failed 20 times: {path}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return first


async def _count_bound(url: str, total: int, done: asyncio.Future, progress: dict) -> None:
    """Watch pods in the bench namespace; resolve ``done`` when ``total`` are bound."""
    bound: set[str] = set()
    async with aiohttp.ClientSession(url) as s:
        rv = None
        while True:
            params = {"watch": "1", "allowWatchBookmarks": "true", "timeoutSeconds": "600"}
            if rv:
                params["resourceVersion"] = rv
            async with s.get("/api/v1/namespaces/bench/pods", params=params,
                             timeout=aiohttp.ClientTimeout(total=None)) as r:
                async for line in r.content:
                    # Only events of bound pods are worth decoding ("f:nodeName" in managedFields
                    # does not match); resuming re-delivers the others, which changes no count.
                    if b'"nodeName":' not in line:
                        continue
                    ev = orjson.loads(line)
                    obj = ev.get("object") or {}
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.get("type") in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                        bound.add(obj["metadata"]["name"])
                        progress["bound"] = len(bound)
                        if len(bound) >= total and not done.done():
                            progress["last"] = time.perf_counter()
                            done.set_result(None)
                            return


def _cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time a live process has used so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_scheduler(kubeconfig: Path, log_path: Path, port: int) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "navarch", "scheduler", "--kubeconfig", str(kubeconfig),
             "--port", str(port), "--v", "warning"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))


async def _wait_synced(port: int, nodes: int) -> None:
    """Until the scheduler's cache holds every node (it serves /debug/cache once synced)."""
    async with aiohttp.ClientSession() as s:
        for _ in range(1200):
            try:
                async with s.get(f"http://127.0.0.1:{port}/debug/cache") as r:
                    if r.status == 200 and (await r.json())["nodes"] >= nodes:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the scheduler did not sync")


async def e2e(nodes: int, pods: int, anti: bool = False, concurrency: int = 32, backlog: bool = False) -> dict:
    """``backlog``: create every pod first, then start the scheduler (its own speed with real
    bindings, not bounded by how fast pods are created)."""
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        server = ApiServer(Path(tmp) / "api").start()
        sched_proc = None
        try:
            url = server.url
            async with aiohttp.ClientSession(url) as s:
                async with s.post("/api/v1/namespaces", data=orjson.dumps(
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}),
                        headers={"Content-Type": "application/json"}) as r:
                    assert r.status in (201, 409), await r.text()
            t = time.perf_counter()
            await _create_all(url, "/api/v1/nodes", [orjson.dumps(node_obj(i)) for i in range(nodes)], concurrency)
            nodes_s = time.perf_counter() - t
            port = free_port()
            log_path = Path(tmp) / "scheduler.log"
            done: asyncio.Future = asyncio.get_running_loop().create_future()
            progress: dict = {"bound": 0}
            bodies = [orjson.dumps(pod_obj(i, anti)) for i in range(pods)]
            api_pid = getattr(getattr(server, "process", None), "pid", None)
            api_cpu0 = _cpu_seconds(api_pid)
            if backlog:
                t = time.perf_counter()
                await _create_all(url, "/api/v1/namespaces/bench/pods", bodies, concurrency)
                created_s = time.perf_counter() - t
                watcher = asyncio.create_task(_count_bound(url, pods, done, progress))
                first = time.perf_counter()
                sched_proc = await asyncio.to_thread(_start_scheduler, server.kubeconfig, log_path, port)
            else:
                sched_proc = await asyncio.to_thread(_start_scheduler, server.kubeconfig, log_path, port)
                await _wait_synced(port, nodes)
                watcher = asyncio.create_task(_count_bound(url, pods, done, progress))
                first = await _create_all(url, "/api/v1/namespaces/bench/pods", bodies, concurrency)
                created_s = time.perf_counter() - first
            try:
                await asyncio.wait_for(asyncio.shield(done), timeout=max(120, pods / 20))
            except TimeoutError:
                pass
            watcher.cancel()
            last = progress.get("last", time.perf_counter())
            bound = progress["bound"]
            # CPU each process spent per bound pod: what the pods cost where (the machine's
            # cores are shared, so wall time alone does not say who was the limit).
            sched_cpu = _cpu_seconds(sched_proc.pid)
            api_cpu = _cpu_seconds(api_pid) - api_cpu0
            return {"scenario": "e2e" + ("-anti" if anti else "") + ("-backlog" if backlog else ""),
                    "nodes": nodes, "pods": pods,
                    "node_create_s": round(nodes_s, 1), "pods_created_per_s": round(pods / created_s, 1),
                    "bound": bound, "seconds": round(last - first, 2),
                    "pods_per_s": round(bound / (last - first), 1),
                    "scheduler_cpu_ms_per_pod": round(sched_cpu * 1000 / max(bound, 1), 2),
                    "apiserver_cpu_ms_per_pod": round(api_cpu * 1000 / max(bound, 1), 2)}
        finally:
            if sched_proc is not None:
                sched_proc.terminate()
                try:
                    sched_proc.wait(15)
                except subprocess.TimeoutExpired:
                    sched_proc.kill()
                    sched_proc.wait()
            server.stop()


# -- what each request costs the API server -------------------------------------------------------

async def _drain_watch(url: str, path: str, stop: asyncio.Event, seen: list[int]) -> None:
    async with aiohttp.ClientSession(url) as s:
        async with s.get(path, params={"watch": "1", "timeoutSeconds": "600"},
                         timeout=aiohttp.ClientTimeout(total=None)) as r:
            while not stop.is_set():
                line = await r.content.readline()
                if not line:
                    return
                seen[0] += 1


async def requests_cost(nodes: int, pods: int, watchers_list: tuple[int, ...] = (1, 3)) -> list[dict]:
    """API server CPU per request type (ms), with so many all-pods watches open."""
    return [await _requests_cost(nodes, pods, w) for w in watchers_list]


async def _requests_cost(nodes: int, pods: int, watchers: int) -> dict:
    from client.events import EventRecorder
    from client.rest import Client

    with tempfile.TemporaryDirectory(prefix="bench-sched-req-") as tmp:
        server = ApiServer(Path(tmp) / "api").start()
        pid = server.process.pid if server.process else None
        stop = asyncio.Event()
        seen = [0]
        tasks: list[asyncio.Task] = []
        try:
            async with Client(server.url) as c:
                await c.create("namespaces", {"metadata": {"name": "bench"}})
                for i in range(nodes):
                    await c.create("nodes", node_obj(i))
                tasks = [asyncio.create_task(_drain_watch(server.url, "/api/v1/pods", stop, seen))
                         for _ in range(watchers)]
                await asyncio.sleep(0.5)
                sem = asyncio.Semaphore(16)
                created: list[dict] = []
                recorder = EventRecorder(c, "default-scheduler", writers=16, queue_size=pods + 1)

                async def create(i: int) -> None:
                    async with sem:
                        created.append(await c.create("pods", pod_obj(i), "bench"))

                async def bind(i: int) -> None:
                    async with sem:
                        await c.bind("bench", f"pod-{i:06d}", f"node-{i % nodes:05d}")

                async def events() -> None:
                    for p in created:
                        name = p["metadata"]["name"]
                        recorder.normal(p, "Scheduled", f"Successfully assigned bench/{name} to node-x")
                    await recorder.flush()

                row: dict[str, Any] = {"scenario": "requests", "nodes": nodes, "pods": pods,
                                       "pod_watches": watchers}
                for label, run in (("create_pod", lambda: asyncio.gather(*(create(i) for i in range(pods)))),
                                   ("binding", lambda: asyncio.gather(*(bind(i) for i in range(pods)))),
                                   ("event", events)):
                    cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
                    await run()
                    await asyncio.sleep(0.3)   # deliveries to the watches settle
                    row[f"{label}_ms"] = round((_cpu_seconds(pid) - cpu0) * 1000 / pods, 3)
                    row[f"{label}_per_s"] = round(pods / (time.perf_counter() - t0), 1)
                await recorder.stop()
                row["watch_events_seen"] = seen[0]
                return row
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            server.stop()


# -- main -----------------------------------------------------------------------------------------

def _print(result: dict) -> None:
    prof = result.pop("profile", None)
    print("  ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    if prof:
        print(prof, flush=True)


async def _run(args: argparse.Namespace) -> None:
    node_counts = [int(n) for n in args.nodes.split(",")]
    only = set(args.only.split(",")) if args.only else {"algo", "e2e", "backlog", "anti"}
    if "requests" in only:
        for row in await requests_cost(min(node_counts), min(args.pods, 5000)):
            _print(row)
    if "algo" in only:
        for n in node_counts:
            _print(await algo(n, args.pods, profile=args.profile))
    if "e2e" in only:
        for n in node_counts:
            _print(await e2e(n, args.pods))
    if "backlog" in only:
        for n in node_counts:
            _print(await e2e(n, args.pods, backlog=True))
    if "anti" in only:
        _print(await algo(500, args.anti_pods, anti=True, profile=args.profile))
        _print(await e2e(500, args.anti_pods, anti=True))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.scheduler")
    p.add_argument("--nodes", default="500,5000")
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--anti-pods", type=int, default=2000)
    p.add_argument("--only", help="comma-separated: algo, e2e, backlog, anti, requests")
    p.add_argument("--quick", action="store_true", help="500 nodes, 2000 pods, 500 anti-affinity pods")
    p.add_argument("--profile", action="store_true", help="cProfile the algorithm-only runs")
    args = p.parse_args(argv)
    if args.quick:
        args.nodes, args.pods, args.anti_pods = "500", 2000, 500
    import logging

    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
