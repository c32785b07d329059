"""API server benchmarks: create throughput and latency, watch fan-out, large lists.

    python -m bench.api [--quick] [--skip-100k]

Everything runs on this machine in one go so the figures can be compared: the API server on
SQLite and on etcd (each its own process), raw etcd puts and a bare aiohttp echo server driven by
the same load generator (this process), which is the ceiling of any Python HTTP write path here.
Beside each create rate the server's CPU time per request is printed (all its threads): on a
machine shared with other work it moves far less than the rates do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from tests.fixtures.apiserver import ApiServer, free_port
from tests.fixtures.etcd import running_etcd

REPO = Path(__file__).resolve().parents[1]


def pod_body(name: str) -> bytes:
    return orjson.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web", "shard": name[-1]},
                     "annotations": {"bench.navarch.io/note": "x" * 200}},
        "spec": {"containers": [{"name": "web", "image": "registry.local/web:1.0",
                                 "ports": [{"containerPort": 8080, "name": "http"}],
                                 "env": [{"name": f"E{i}", "value": "v" * 20} for i in range(8)],
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]},
    })


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_note(pid: int | None, before: float, requests: int) -> str:
    """Server CPU per request: steadier than rates on a machine shared with other work."""
    if pid is None:
        return ""
    return f"  server CPU {(cpu_seconds(pid) - before) / requests * 1e6:5.0f} us/req"


async def ensure_namespace(session: aiohttp.ClientSession, ns: str) -> None:
    async with session.post("/api/v1/namespaces", data=orjson.dumps(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            headers={"Content-Type": "application/json"}) as r:
        assert r.status in (201, 409), await r.text()


async def closed_loop(url: str, path: str, total: int, concurrency: int, prefix: str) -> tuple[float, list[float]]:
    """``total`` creates by ``concurrency`` workers back to back: (creates/s, latencies in ms)."""
    lat: list[float] = []
    counter = iter(range(total))
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=conn) as s:
        async def worker() -> None:
            for i in counter:
                body = pod_body(f"{prefix}-{i}")
                t = time.perf_counter()
                async with s.post(path, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    if r.status not in (200, 201):
                        raise RuntimeError(f"create failed: {r.status}")
                lat.append((time.perf_counter() - t) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return total / elapsed, lat


async def open_loop(url: str, path: str, rate: int, seconds: float, prefix: str) -> tuple[float, list[float]]:
    """Creates offered at ``rate`` per second regardless of responses: (achieved/s, latencies ms)."""
    lat: list[float] = []
    conn = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(url, connector=conn) as s:
        async def one(i: int) -> None:
            t = time.perf_counter()
            async with s.post(path, data=pod_body(f"{prefix}-{i}"),
                              headers={"Content-Type": "application/json"}) as r:
                await r.read()
            lat.append((time.perf_counter() - t) * 1000)

        n = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return n / elapsed, lat


async def raw_etcd_puts(endpoint: str, total: int, concurrency: int) -> float:
    import aetcd

    host, port = endpoint.split(":")
    body = pod_body("raw-etcd-0000")
    async with aetcd.Client(host=host, port=int(port)) as client:
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                await client.put(f"/raw/{concurrency}/{i}".encode(), body)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - start)


ECHO_SERVER = """
import orjson, sys, uvloop
from aiohttp import web
async def echo(request):
    obj = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps(obj), status=201, content_type="application/json")
app = web.Application()
app.router.add_post("/{tail:.*}", echo)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def start_echo() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)])
    url = f"http://127.0.0.1:{port}"
    import urllib.request
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/x", data=b"{}", timeout=0.5)
            break
        except Exception:
            time.sleep(0.05)
    return proc, url


async def create_series(label: str, url: str, n: int, results: dict, pid: int | None = None) -> None:
    async with aiohttp.ClientSession(url) as s:
        await ensure_namespace(s, "bench")
    for conc in (1, 16, 64):
        total = n if conc > 1 else max(n // 4, 200)
        before = cpu_seconds(pid) if pid is not None else 0.0
        rate, lat = await closed_loop(url, "/api/v1/namespaces/bench/pods", total, conc, f"{label}-c{conc}")
        results[(label, conc)] = rate
        print(f"  {label:8s} {conc:3d} clients: {rate:7.0f} creates/s  p50 {pct(lat, 50):6.1f} ms  "
              f"p99 {pct(lat, 99):6.1f} ms" + cpu_note(pid, before, total), flush=True)


async def watch_fanout(url: str, watchers: int, pods: int) -> None:
    """``watchers`` concurrent watches on pods while ``pods`` are created; every watcher must see
    every create. Latency: from the create request's start to each watcher's receipt."""
    ns = "fanout"
    async with aiohttp.ClientSession(url) as s:
        await ensure_namespace(s, ns)
        async with s.get(f"/api/v1/namespaces/{ns}/pods?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    lat: list[float] = []
    seen = [0] * watchers
    name_re = re.compile(rb'"name":"(fan-\d+)"')
    conn = aiohttp.TCPConnector(limit=0)
    ready = asyncio.Event()
    opened = [0]
    async with aiohttp.ClientSession(url, connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        async def watcher(idx: int) -> None:
            async with s.get(f"/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}") as r:
                opened[0] += 1
                if opened[0] == watchers:
                    ready.set()
                while seen[idx] < pods:
                    line = await r.content.readline()
                    if not line:
                        break
                    now = time.perf_counter()
                    m = name_re.search(line)
                    if m and line.startswith(b'{"type":"ADDED"'):
                        seen[idx] += 1
                        lat.append((now - sent[m.group(1).decode()]) * 1000)

        tasks = [asyncio.create_task(watcher(i)) for i in range(watchers)]
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(0.5)

        async def create(i: int) -> None:
            name = f"fan-{i}"
            sent[name] = time.perf_counter()
            async with s.post(f"/api/v1/namespaces/{ns}/pods", data=pod_body(name),
                              headers={"Content-Type": "application/json"}) as r:
                await r.read()

        start = time.perf_counter()
        sem = asyncio.Semaphore(16)

        async def bounded(i: int) -> None:
            async with sem:
                await create(i)

        await asyncio.gather(*(bounded(i) for i in range(pods)))
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 300)
        except TimeoutError:
            for t in tasks:
                t.cancel()
        elapsed = time.perf_counter() - start
    complete = sum(1 for x in seen if x == pods)
    print(f"  {watchers} watchers x {pods} pods: {complete}/{watchers} watchers got every event; "
          f"{len(lat)} deliveries in {elapsed:.1f} s; create-to-delivery p50 {pct(lat, 50):.0f} ms, "
          f"p99 {pct(lat, 99):.0f} ms", flush=True)


async def big_list(server: ApiServer, total: int) -> None:
    url = server.url
    pid = server.process.pid
    async with aiohttp.ClientSession(url) as s:
        await ensure_namespace(s, "big")
    base_rss = rss_mb(pid)
    done = 0
    step = 10_000
    print(f"  apiserver RSS before: {base_rss:.0f} MB", flush=True)
    while done < total:
        n = min(step, total - done)
        rate, _ = await closed_loop(url, "/api/v1/namespaces/big/pods", n, 64, f"big{done // step}")
        done += n
        print(f"  {done:6d} pods stored ({rate:.0f}/s); apiserver RSS {rss_mb(pid):.0f} MB "
              f"(+{(rss_mb(pid) - base_rss) / (done / 10_000):.0f} MB per 10k pods)", flush=True)
    conn = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(url, connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        for label, q in (("full LIST (consistent, from storage)", ""),
                         ("full LIST (resourceVersion=0, watch cache)", "?resourceVersion=0")):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                async with s.get("/api/v1/namespaces/big/pods" + q) as r:
                    body = await r.read()
                times.append(time.perf_counter() - t)
            print(f"  {label}: {min(times):.2f} s best of 3 ({len(body) / 1e6:.0f} MB)", flush=True)
        for label, q in (("500-item page (storage)", "?limit=500"),
                         ("500-item page (watch cache)", "?limit=500&resourceVersion=0")):
            times = []
            for _ in range(20):
                t = time.perf_counter()
                async with s.get("/api/v1/namespaces/big/pods" + q) as r:
                    await r.read()
                times.append((time.perf_counter() - t) * 1000)
            print(f"  {label}: p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms", flush=True)


async def main_async(args) -> None:
    n = 1000 if args.quick else 4000
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, running_etcd(os.path.join(tmp, "etcd")) as etcd:
        print("== creates (pods, ~1.6 KB), closed loop", flush=True)
        echo_proc, echo_url = start_echo()
        try:
            for conc in (1, 16, 64):
                total = n if conc > 1 else max(n // 4, 200)
                before = cpu_seconds(echo_proc.pid)
                rate, lat = await closed_loop(echo_url, "/echo", total, conc, "echo")
                results[("echo", conc)] = rate
                print(f"  {'echo':8s} {conc:3d} clients: {rate:7.0f} req/s     p50 {pct(lat, 50):6.1f} ms  "
                      f"p99 {pct(lat, 99):6.1f} ms" + cpu_note(echo_proc.pid, before, total)
                      + "   (aiohttp echo: ceiling)", flush=True)
        finally:
            echo_proc.terminate()
            echo_proc.wait()
        for conc in (1, 16, 64):
            total = n if conc > 1 else max(n // 4, 200)
            rate = await raw_etcd_puts(etcd.endpoint, total, conc)
            results[("raw-etcd", conc)] = rate
            print(f"  {'raw etcd':8s} {conc:3d} clients: {rate:7.0f} puts/s (aetcd, same bytes)", flush=True)
        sqlite = ApiServer(os.path.join(tmp, "sqlite")).start()
        try:
            await create_series("sqlite", sqlite.url, n, results, sqlite.process.pid)
            rate, lat = await open_loop(sqlite.url, "/api/v1/namespaces/bench/pods", 500, 10, "open")
            print(f"  sqlite   500/s offered for 10 s: achieved {rate:.0f}/s, p50 {pct(lat, 50):.1f} ms, "
                  f"p99 {pct(lat, 99):.1f} ms", flush=True)
        finally:
            sqlite.stop()
        on_etcd = ApiServer(os.path.join(tmp, "on-etcd"), etcd_servers=etcd.client_url).start()
        try:
            await create_series("etcd", on_etcd.url, n, results, on_etcd.process.pid)
            rate, lat = await open_loop(on_etcd.url, "/api/v1/namespaces/bench/pods", 500, 10, "open")
            print(f"  etcd     500/s offered for 10 s: achieved {rate:.0f}/s, p50 {pct(lat, 50):.1f} ms, "
                  f"p99 {pct(lat, 99):.1f} ms", flush=True)
        finally:
            on_etcd.stop()
        print("== ratios", flush=True)
        for conc in (1, 16, 64):
            print(f"  {conc:3d} clients: sqlite/echo {results[('sqlite', conc)] / results[('echo', conc)]:.2f}, "
                  f"etcd-apiserver/raw-etcd {results[('etcd', conc)] / results[('raw-etcd', conc)]:.2f}",
                  flush=True)
        print("== watch fan-out (SQLite)", flush=True)
        fan = ApiServer(os.path.join(tmp, "fanout")).start()
        try:
            await watch_fanout(fan.url, 100 if args.quick else 1000, 200 if args.quick else 1000)
        finally:
            fan.stop()
        if not args.skip_100k:
            print("== large lists (SQLite)", flush=True)
            big = ApiServer(os.path.join(tmp, "big")).start()
            try:
                await big_list(big, 20_000 if args.quick else 100_000)
            finally:
                big.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.api")
    p.add_argument("--quick", action="store_true", help="smaller runs")
    p.add_argument("--skip-100k", action="store_true")
    args = p.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
