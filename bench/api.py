"""API server benchmarks: create throughput and latency, watch fan-out, large lists.

    python -m bench.api [--quick] [--skip-100k] [--http-client navarch|aiohttp]

Everything runs on this machine in one go so the figures can be compared: the API server on
SQLite and on etcd (each its own process), raw etcd puts and a bare aiohttp echo server driven by
the same load generator (this process), which is the ceiling of any Python HTTP write path here.
Beside raw etcd stands the etcd floor (``bench._etcd_floor``, in one process and in two): HTTP and
one etcd create transaction through the project's driver and nothing else, the ceiling of any
etcd-backed Python write path here.
Beside each create rate the server's CPU time per request is printed (all its threads): on a
machine shared with other work it moves far less than the rates do.

The load generator sends its creates with the project's own client transport (``client.rest``,
~0.13 ms of CPU per request) unless told ``--http-client aiohttp`` (~0.3 ms): on two cores the
generator's CPU is taken from the server's, so the leaner one measures the server more nearly.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
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


HTTP_CLIENT = ["navarch"]      # which transport the load generator's creates go through


class Poster:
    """POSTs of JSON bodies to one server over ``limit`` kept-alive connections, through the
    chosen transport; a response other than 200/201 raises."""

    def __init__(self, url: str, limit: int):
        self.url, self.limit = url, limit
        self._client = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Poster:
        if HTTP_CLIENT[0] == "aiohttp":
            self._session = aiohttp.ClientSession(self.url, connector=aiohttp.TCPConnector(limit=self.limit))
        else:
            from client.rest import Client
            self._client = Client(self.url, pool_size=self.limit)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()
        if self._client is not None:
            await self._client.close()

    async def post(self, path: str, body: bytes) -> None:
        if self._client is not None:
            await self._client.request("POST", path, body=body, content_type="application/json", raw=True)
            return
        async with self._session.post(path, data=body, headers={"Content-Type": "application/json"}) as r:
            await r.read()
            if r.status not in (200, 201):
                raise RuntimeError(f"create failed: {r.status}")


async def closed_loop(url: str, path: str, total: int, concurrency: int, prefix: str) -> tuple[float, list[float]]:
    """``total`` creates by ``concurrency`` workers back to back: (creates/s, latencies in ms)."""
    lat: list[float] = []
    counter = iter(range(total))
    async with Poster(url, concurrency) as poster:
        async def worker() -> None:
            for i in counter:
                body = pod_body(f"{prefix}-{i}")
                t = time.perf_counter()
                await poster.post(path, body)
                lat.append((time.perf_counter() - t) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return total / elapsed, lat


async def open_loop(url: str, path: str, rate: int, seconds: float, prefix: str) -> tuple[float, list[float]]:
    """Creates offered at ``rate`` per second regardless of responses: (achieved/s, latencies ms)."""
    lat: list[float] = []
    async with Poster(url, 256) as poster:
        async def one(i: int) -> None:
            t = time.perf_counter()
            await poster.post(path, pod_body(f"{prefix}-{i}"))
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


def start_servers(argv: list[str], processes: int = 1) -> tuple[list[subprocess.Popen], str]:
    """``processes`` copies of a small POST server (``argv`` + its port) sharing one port; returns
    once it answers."""
    port = free_port()
    procs = [subprocess.Popen([sys.executable, *argv, str(port)], cwd=REPO) for _ in range(processes)]
    url = f"http://127.0.0.1:{port}"
    import urllib.request
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/x", data=b'{"metadata": {}}', timeout=0.5)
            break
        except Exception:
            if any(p.poll() is not None for p in procs):
                stop_servers(procs)
                raise RuntimeError(f"{' '.join(argv)} exited before it answered") from None
            time.sleep(0.05)
    return procs, url


def stop_servers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait()


async def floor_series(endpoint: str, n: int, results: dict) -> None:
    """The etcd floor (``bench._etcd_floor``) in one process and in two, against raw etcd."""
    for processes in (1, 2):
        procs, url = start_servers(["-m", "bench._etcd_floor", endpoint], processes)
        try:
            await closed_loop(url, "/x", max(n // 4, 200), 16, "floor-warm")
            for conc in (1, 16, 64):
                total = n if conc > 1 else max(n // 4, 200)
                before = sum(cpu_seconds(p.pid) for p in procs)
                rate, lat = await closed_loop(url, "/x", total, conc, f"floor{processes}-c{conc}")
                used = (sum(cpu_seconds(p.pid) for p in procs) - before) / total * 1000
                results[(f"floor{processes}", conc)] = rate
                print(f"  {f'floor x{processes}':8s} {conc:3d} clients: {rate:7.0f} creates/s  "
                      f"p50 {pct(lat, 50):6.1f} ms  p99 {pct(lat, 99):6.1f} ms  server CPU {used:.2f} ms/req"
                      f"   (HTTP + one etcd txn, {processes} process{'es' if processes > 1 else ''})",
                      flush=True)
        finally:
            stop_servers(procs)


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


_fanout_runs = itertools.count(1)


def load_arrivals(path: str, n: int) -> array:
    """The ``n`` arrival times bench._watchers wrote to ``path`` (a native array('d'))."""
    arrived = array("d")
    with open(path, "rb") as f:
        arrived.fromfile(f, n)
    return arrived


async def watch_fanout(url: str, watchers: int, pods: int, pid: int | None = None,
                       rate: float | None = None) -> None:
    """``watchers`` concurrent watches on pods while ``pods`` are created by 16 clients as fast as
    the server takes them (or, with ``rate``, started at that many per second whatever the
    responses); every watcher must see every create, all in one order. Latency: from the create
    request's start to each watcher's receipt.

    The watchers are read by a child process (``python -m bench._watchers``): reading a thousand
    of them costs ~5 us of CPU per delivery, a thousand deliveries per create, which would fill
    this process's core and queue the creates behind the reads, so that the latency measured
    would be largely the load generator's own. This process only sends the creates, through
    ``Poster`` (the transport ``--http-client`` chose, as ``closed_loop`` does). Beside the
    figures: the CPU time per delivery of the server, of the reader process and of this one while
    pods are created and delivered. Each call watches and creates in a namespace of its own, so
    that it may be run more than once on one server.

    On two cores the server and the reader take about one each when 16 creators run: the creates
    are no longer held back by the reads, the reader falls behind (the events wait in its sockets'
    receive queues) and the latency includes that backlog; ``rate`` measures it below saturation.
    """
    ns = f"fanout-{os.getpid()}-{next(_fanout_runs)}"
    async with aiohttp.ClientSession(url) as s:
        await ensure_namespace(s, ns)
        async with s.get(f"/api/v1/namespaces/{ns}/pods?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
    fd, out = tempfile.mkstemp(prefix="bench-fanout-", suffix=".f64")
    os.close(fd)
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench._watchers", url, ns, str(rv), str(watchers), str(pods), out,
        cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(reader.stdout.readline(), 180)
        if line.strip() != b"ready":
            raise RuntimeError(f"bench._watchers did not get its watches ready ({line!r}, "
                               f"exit {await reader.wait()})")
        await asyncio.sleep(0.5)
        # Send times are time.perf_counter(), which on Linux is CLOCK_MONOTONIC, one clock for
        # every process on the machine: the reader's arrival times are on it too.
        sent = array("d", [math.nan]) * pods
        create_lat: list[float] = []
        async with Poster(url, 16 if rate is None else 256) as poster:
            path = f"/api/v1/namespaces/{ns}/pods"

            async def create(i: int) -> None:
                body = pod_body(f"fan-{i}")
                sent[i] = t = time.perf_counter()
                await poster.post(path, body)
                create_lat.append((time.perf_counter() - t) * 1000)

            server_cpu = cpu_seconds(pid) if pid is not None else 0.0
            client_cpu = time.process_time()
            start = time.perf_counter()
            if rate is None:
                counter = iter(range(pods))

                async def creator() -> None:
                    for i in counter:
                        await create(i)

                await asyncio.gather(*(creator() for _ in range(16)))
            else:
                creates = []
                for i in range(pods):
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    creates.append(asyncio.create_task(create(i)))
                await asyncio.gather(*creates)
        line = await asyncio.wait_for(reader.stdout.readline(), 420)
        server_cpu = cpu_seconds(pid) - server_cpu if pid is not None else 0.0
        client_cpu = time.process_time() - client_cpu
        if await reader.wait() != 0 or not line:
            raise RuntimeError(f"bench._watchers failed (exit {reader.returncode})")
        summary = orjson.loads(line)
        arrived = load_arrivals(out, watchers * pods)
    finally:
        if reader.returncode is None:
            os.kill(reader.pid, signal.SIGKILL)
            await reader.wait()
        os.unlink(out)
    lat = [(got - t) * 1000 for got, t in zip(arrived, sent * watchers, strict=True) if not math.isnan(got)]
    complete, deliveries = summary["complete"], summary["deliveries"]
    elapsed = summary["end"] - start
    cpu = (f"; CPU per delivery: server {server_cpu / max(deliveries, 1) * 1e6:.1f} us, "
           f"reader process {summary['cpu'] / max(deliveries, 1) * 1e6:.1f} us, "
           f"this process {client_cpu / max(deliveries, 1) * 1e6:.1f} us" if pid is not None else "")
    how = "16 creators" if rate is None else f"{rate:g} creates/s"
    print(f"  {watchers} watchers x {pods} pods ({how}): {complete}/{watchers} watchers got every event"
          f"{'' if summary['one_order'] else ' (NOT all in one order)'}; {deliveries} deliveries in "
          f"{elapsed:.1f} s; create-to-delivery p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms "
          f"(the creates themselves: p50 {pct(create_lat, 50):.0f} ms, p99 {pct(create_lat, 99):.0f} ms)"
          + cpu, flush=True)


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
        print(f"== creates (pods, ~1.6 KB), closed loop; load generator: {HTTP_CLIENT[0]} client", flush=True)
        echo_procs, echo_url = start_servers(["-c", ECHO_SERVER])
        echo_proc = echo_procs[0]
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
            stop_servers(echo_procs)
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
        await floor_series(etcd.endpoint, n, results)
        print("== ratios", flush=True)
        for conc in (1, 16, 64):
            print(f"  {conc:3d} clients: sqlite/echo {results[('sqlite', conc)] / results[('echo', conc)]:.2f}, "
                  f"etcd-apiserver/raw-etcd {results[('etcd', conc)] / results[('raw-etcd', conc)]:.2f} "
                  f"(floor/raw-etcd: one process {results[('floor1', conc)] / results[('raw-etcd', conc)]:.2f}, "
                  f"two {results[('floor2', conc)] / results[('raw-etcd', conc)]:.2f})",
                  flush=True)
        print("== watch fan-out (SQLite)", flush=True)
        fan = ApiServer(os.path.join(tmp, "fanout")).start()
        try:
            watchers, pods = (100, 200) if args.quick else (1000, 1000)
            await watch_fanout(fan.url, watchers, pods, fan.process.pid)
            # Beside it, creates at fixed rates (16 creators reach ~230/s on a quiet 2-core
            # machine, where server and reader then take a core each): the latency below saturation.
            for rate in (50, 150):
                await watch_fanout(fan.url, watchers, pods, fan.process.pid, rate=rate)
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
    p.add_argument("--http-client", choices=("navarch", "aiohttp"), default="navarch",
                   help="transport of the load generator's creates (default: the project's client)")
    args = p.parse_args(argv)
    HTTP_CLIENT[0] = args.http_client
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
