"""Benchmark: an informer over many pods. Prints time to sync, memory, and events/s absorbed.

    python -m bench.informer [--pods 10000] [--events 5000] [--server URL | --fake]

Without ``--server`` it starts ``python -m navarch apiserver`` on a free port with a temporary
SQLite data dir (stopped by PID at the end); ``--fake`` uses the in-memory fake server of the
client tests instead. Figures:

* create: pods/s written by the seeding clients (the API server's write rate, for context);
* list: seconds for the same paged LIST without an informer (the server's and decoding's share);
* sync: seconds from ``start()`` to ``wait_for_cache_sync()`` (paged LIST of all pods);
* rss: resident memory grown by the process across the sync (cache plus whatever the LIST cost);
* events end-to-end: writes/s while a writer patches pods as fast as the server accepts and the
  informer applies every resulting watch event (bounded by the server);
* events in-process: watch events/s the informer's cache and dispatch absorb with no network,
  i.e. its own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from client.informer import Informer, object_key, strip_managed_fields  # noqa: E402
from client.rest import Client  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pod(i: int, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"bench-{i:05d}", "namespace": namespace,
                         "labels": {"app": f"app-{i % 50}", "bench": "informer"}},
            "spec": {"nodeName": f"node-{i % 100}",
                     "containers": [{"name": "c", "image": "registry.local/busybox:1.36",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def seed(client: Client, namespace: str, n: int, concurrency: int = 32) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await client.create("pods", pod(i, namespace))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0


async def run(url: str, pods: int, events: int, namespace: str, strip: bool = False) -> None:
    async with Client(url, timeout=120) as client:
        try:
            await client.create("namespaces", {"metadata": {"name": namespace}})
        except Exception:  # noqa: BLE001 - the fake server has no namespaces; exists is fine too
            pass
        seconds = await seed(client, namespace, pods)
        print(f"create: {pods} pods in {seconds:.1f} s ({pods / seconds:.0f} pods/s)")

        gc.collect()
        rss0 = rss_bytes()
        informer = Informer(client, "pods", namespace, page_size=500,
                            indexers={"node": lambda p: [p["spec"].get("nodeName", "")]},
                            transform=strip_managed_fields if strip else None)
        t0 = time.perf_counter()
        informer.start()
        await informer.wait_for_cache_sync()
        sync = time.perf_counter() - t0
        gc.collect()
        rss1 = rss_bytes()
        assert len(informer.store) == pods, len(informer.store)
        print(f"sync: {pods} pods in {sync:.2f} s ({pods / sync:.0f} objects/s, {informer.lists} list)")
        print(f"rss: +{(rss1 - rss0) / 2**20:.1f} MiB ({(rss1 - rss0) / pods / 1024:.1f} KiB per pod)")
        # After the RSS figure, so that its allocations do not pre-warm the heap the cache uses.
        t0 = time.perf_counter()
        listed = await client.list_all("pods", namespace, page_size=500)
        raw = time.perf_counter() - t0
        print(f"list: {len(listed['items'])} pods in {raw:.2f} s with list_all alone (server + decode)")
        del listed

        # End to end: writes through the server, applied by the informer from its watch.
        seen0 = informer.events
        sem = asyncio.Semaphore(32)

        async def touch(i: int) -> None:
            async with sem:
                await client.patch("pods", f"bench-{i % pods:05d}",
                                   {"metadata": {"annotations": {"bench/seq": str(i)}}}, namespace)

        t0 = time.perf_counter()
        await asyncio.gather(*(touch(i) for i in range(events)))
        write_done = time.perf_counter() - t0
        while informer.events - seen0 < events:
            await asyncio.sleep(0.005)
        absorbed = time.perf_counter() - t0
        print(f"events end-to-end: {events} in {absorbed:.2f} s ({events / absorbed:.0f}/s; "
              f"writes took {write_done:.2f} s, lag after last write {absorbed - write_done:.3f} s)")
        await informer.stop()

        # In-process: the cache and dispatch alone, one handler that just counts.
        counted = [0]
        informer.add_event_handler(on_update=lambda o, n: counted.__setitem__(0, counted[0] + 1))
        objs = list(informer.store._items.values())
        synthetic = []
        for i in range(max(events, 50_000)):
            o = dict(objs[i % len(objs)])
            o["metadata"] = dict(o["metadata"], resourceVersion=str(10**9 + i))
            synthetic.append(o)
        t0 = time.perf_counter()
        for o in synthetic:
            informer._apply("MODIFIED", o)
        applied = time.perf_counter() - t0
        for listener in informer._listeners:
            listener.ensure_running()
        await informer.wait_for_handlers()
        delivered = time.perf_counter() - t0
        print(f"events in-process: {len(synthetic)} applied in {applied:.2f} s "
              f"({len(synthetic) / applied:.0f}/s into the cache; {len(synthetic) / delivered:.0f}/s "
              f"including handler delivery)")
        assert counted[0] >= len(synthetic)
        assert object_key(synthetic[0]) in informer.store
        await informer.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=10_000)
    p.add_argument("--events", type=int, default=5_000)
    p.add_argument("--server", help="use this API server instead of starting one")
    p.add_argument("--fake", action="store_true", help="use the in-memory fake server of the client tests")
    p.add_argument("--namespace", default="bench-informer")
    p.add_argument("--strip-managed-fields", action="store_true", help="cache objects without managedFields")
    args = p.parse_args()

    if args.server:
        asyncio.run(run(args.server, args.pods, args.events, args.namespace, args.strip_managed_fields))
        return
    if args.fake:
        from tests.client.fakeserver import running_fake

        async def with_fake() -> None:
            async with running_fake() as fake:
                await run(fake.url, args.pods, args.events, args.namespace, args.strip_managed_fields)

        asyncio.run(with_fake())
        return
    from tests.fixtures.apiserver import ApiServer

    with tempfile.TemporaryDirectory(prefix="bench-informer-") as tmp:
        server = ApiServer(tmp).start()
        print(f"apiserver: {server.url} (SQLite in {tmp}, pid {server.process.pid if server.process else '?'})")
        try:
            asyncio.run(run(server.url, args.pods, args.events, args.namespace, args.strip_managed_fields))
        finally:
            server.stop()
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")


if __name__ == "__main__":
    main()
