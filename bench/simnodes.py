"""Benchmark: thousands of simulated nodes in one process. Prints registration time, lease
renewal throughput, memory, and how fast bound pods come up.

    python -m bench.simnodes [--nodes 5000] [--pods 2000] [--window 30] [--server URL]

Without ``--server`` it starts ``python -m navarch apiserver`` on a free port with a temporary
SQLite data dir (stopped by PID at the end). The simulator runs in this process. Figures:

* register: seconds until every Node exists (created with status; concurrency ``--max-inflight``);
* leases: renewals/s achieved over ``--window`` seconds with the renew interval asked
  (``--lease-renew-interval``, default 10 s: the demand is nodes / interval per second), and the
  longest gap any node's Lease went without renewal (should stay near the interval);
* rss: resident memory of the simulator process after registration, and per node;
* pods: ``--pods`` pods created already bound (``spec.nodeName``) across the nodes; seconds
  until the simulator has reported every one Running, and status writes/s.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from client.rest import Client  # noqa: E402
from kubelet.sim.config import SimConfig  # noqa: E402
from kubelet.sim.lifecycle import RUNNING  # noqa: E402
from kubelet.sim.simulator import Simulator  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def watch_lease_gaps(sim: Simulator, stop: asyncio.Event) -> float:
    """Poll the keeper's own record of renewals: the longest time any node went unrenewed."""
    last: dict[str, str] = {}
    since: dict[str, float] = {}
    worst = 0.0
    while not stop.is_set():
        now = time.monotonic()
        for name, lease in list(sim.nodes.leases.items()):
            stamp = lease["spec"]["renewTime"]
            if last.get(name) != stamp:
                if name in since:
                    worst = max(worst, now - since[name])
                last[name] = stamp
                since[name] = now
        await asyncio.sleep(0.2)
    return worst


async def run(url: str, args: argparse.Namespace) -> None:
    cfg = SimConfig(count=args.nodes, name_prefix="bench-", pod_cidr="100.64.0.0/10",
                    lease_renew_interval=args.lease_renew_interval, max_inflight=args.max_inflight,
                    node_status_update_frequency=60.0, cleanup=False)
    async with Client(url, timeout=120, pool_size=max(100, args.max_inflight)) as client:
        gc.collect()
        rss0 = rss_bytes()
        sim = Simulator(client, cfg)
        t0 = time.perf_counter()
        await sim.start()
        seconds = time.perf_counter() - t0
        print(f"register: {args.nodes} nodes in {sim.registration_seconds:.1f} s "
              f"({args.nodes / max(sim.registration_seconds or seconds, 1e-9):.0f} nodes/s); "
              f"start-up including informers {seconds:.1f} s")
        gc.collect()
        rss = rss_bytes()
        print(f"rss: {rss / 2**20:.0f} MiB ({(rss - rss0) / 2**20:.0f} MiB grown, "
              f"{(rss - rss0) / max(args.nodes, 1) / 1024:.1f} KiB per node)")

        stop = asyncio.Event()
        gaps = asyncio.create_task(watch_lease_gaps(sim, stop))
        r0, t1 = sim.nodes.lease_renewals, time.perf_counter()
        await asyncio.sleep(args.window)
        renewed, elapsed = sim.nodes.lease_renewals - r0, time.perf_counter() - t1
        stop.set()
        worst = await gaps
        demand = args.nodes / args.lease_renew_interval
        print(f"leases: {renewed / elapsed:.0f} renewals/s over {elapsed:.0f} s "
              f"(demand {demand:.0f}/s at a {args.lease_renew_interval:g} s interval); "
              f"longest gap {worst:.1f} s")

        if args.pods:
            namespace = f"bench-sim-{int(time.time())}"
            await client.create("namespaces", {"metadata": {"name": namespace}})
            sem = asyncio.Semaphore(32)
            w0 = sim.pods.status_writes

            async def one(i: int) -> None:
                pod = {"metadata": {"name": f"p{i:05d}", "namespace": namespace},
                       "spec": {"nodeName": cfg.node_name(i % args.nodes),
                                "containers": [{"name": "c", "image": "registry.local/app:1"}]}}
                async with sem:
                    await client.create("pods", pod, namespace)

            stop = asyncio.Event()
            gaps = asyncio.create_task(watch_lease_gaps(sim, stop))
            t2 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(args.pods)))
            created = time.perf_counter() - t2

            def reported() -> int:
                return sum(1 for s in sim.pods.states.values()
                           if s.stage == RUNNING and (s.written or {}).get("phase") == "Running")

            while reported() < args.pods and time.perf_counter() - t2 < args.pod_timeout:
                await asyncio.sleep(0.1)
            up = time.perf_counter() - t2
            writes = sim.pods.status_writes - w0
            stop.set()
            worst = await gaps
            done = reported()
            what = "all Running" if done == args.pods else f"only {done} Running (gave up)"
            print(f"pods: {args.pods} created in {created:.1f} s; {what} after {up:.1f} s "
                  f"({writes} status writes, {writes / up:.0f}/s); longest lease gap meanwhile {worst:.1f} s")
            await client.delete("namespaces", namespace)
        await sim.stop()
        print(f"rss at the end: {rss_bytes() / 2**20:.0f} MiB")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.simnodes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--pods", type=int, default=2000)
    p.add_argument("--window", type=float, default=30.0, help="seconds to measure lease renewals over")
    p.add_argument("--lease-renew-interval", type=float, default=10.0)
    p.add_argument("--max-inflight", type=int, default=32)
    p.add_argument("--pod-timeout", type=float, default=300.0, help="seconds to wait for the pods to run")
    p.add_argument("--server", help="an API server URL; default: start one on SQLite")
    args = p.parse_args(argv)
    if args.server:
        asyncio.run(run(args.server, args))
        return 0
    from tests.fixtures.apiserver import ApiServer

    with tempfile.TemporaryDirectory(prefix="bench-simnodes-") as tmp:
        server = ApiServer(tmp).start()
        try:
            asyncio.run(run(server.url, args))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
