"""API server benchmarks: create throughput and latency, watch fan-out, large lists.

    python -m bench.api [--quick] [--skip-100k] [--http-client navarch|aiohttp]

Everything runs on this machine in one go so the figures can be compared: the API server on
SQLite and on etcd (each its own process), raw etcd puts and a bare aiohttp echo server driven by
the same load generator (this process), which is the ceiling of any Python HTTP write path here.
Beside raw etcd stands the etcd floor (``bench.etcd_floor``, in one process and in two): HTTP and
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
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
    """The etcd floor (``bench.etcd_floor``) in one process and in two, against raw etcd."""
    for processes in (1, 2):
        procs, url = start_servers(["-m", "bench.etcd_floor", endpoint], processes)
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


def added_names(data: bytes, pos: int, end: int, out: list[bytes]) -> None:
    """Append the object names of the ADDED events in ``data[pos:end]`` (whole watch lines).

    Nothing is copied but the names: a line's end is found with a one-byte find (memchr), and only
    its start is searched, as the first "name" of an event is its object's metadata.name.
    """
    find = data.find
    starts = data.startswith
    while pos < end:
        nl = find(b"\n", pos, end)
        if starts(b'{"type":"ADDED",', pos):
            j = find(b'"name":"', pos, nl) + 8
            out.append(data[j:find(b'"', j, nl)])
        pos = nl + 1


class WatchStream(asyncio.Protocol):
    """One watch read over a bare connection: an HTTP/1.1 response head, then a chunked body
    decoded here; the names of the ADDED events go to ``names``, and each read that brought some
    to ``reads`` as (time, len(names) after it).

    A thousand of these are read by one process, which must cost less than the server does per
    event: a protocol is called by the loop directly (no stream reader, future and task wake-up
    per read as with an aiohttp response), and the body is searched where it lies in what was
    read (slicing a 2.7 KB event costs as much as finding what is in it).
    """

    def __init__(self, done: Callable[[WatchStream], bool]):
        self.done = done
        self.names: list[bytes] = []
        self.reads: list[tuple[float, int]] = []
        self.head: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._raw = b""          # bytes received and not yet decoded
        self._in_head = True
        self._left = 0           # bytes of the current chunk's data still to come
        self._crlf = False       # the current chunk's data is in, its CRLF is not
        self._line = bytearray()  # the start of a line whose end has not come yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(exc or ConnectionError("closed before the response head"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        raw = self._raw + data if self._raw else data
        pos, n = 0, len(raw)
        if self._in_head:
            i = raw.find(b"\r\n\r\n")
            if i < 0:
                self._raw = raw
                return
            lines = raw[:i].split(b"\r\n")
            headers = {k.strip().lower(): v.strip().lower() for k, _, v in (h.partition(b":") for h in lines[1:])}
            if headers.get(b"transfer-encoding") != b"chunked":
                raise RuntimeError(f"watch response not chunked: {lines[0]!r}")
            self._in_head = False
            self.head.set_result(int(lines[0].split()[1]))
            pos = i + 4
        names = self.names
        before = len(names)
        find = raw.find
        starts = raw.startswith
        body = self._body
        while pos < n:
            if self._left:                  # the rest of a chunk begun in an earlier read
                take = min(self._left, n - pos)
                body(raw, pos, pos + take)
                pos += take
                self._left -= take
                self._crlf = not self._left
                continue
            if self._crlf:
                if n - pos < 2:
                    break
                pos += 2
                self._crlf = False
            # A chunk: size line, data, CRLF; usually whole in this read.
            i = find(b"\r\n", pos)
            if i < 0:
                break
            size = int(raw[pos:i].split(b";", 1)[0], 16)
            if size == 0:                   # the last chunk: the server ended the watch
                pos = n
                self.transport.close()
                break
            start = i + 2
            stop = start + size
            if stop + 2 > n:
                pos = start
                self._left = size
                continue
            pos = stop + 2
            if not self._line and raw[stop - 1] == 10 and find(b"\n", start, stop - 1) < 0:
                # One whole line (as this server writes them): its start is all there is to read.
                if starts(b'{"type":"ADDED",', start):
                    j = find(b'"name":"', start, stop) + 8
                    names.append(raw[j:find(b'"', j, stop)])
            else:
                body(raw, start, stop)
        self._raw = raw[pos:] if pos < n else b""
        if len(names) > before:
            self.reads.append((now, len(names)))
            if self.done(self):
                self.transport.close()

    def _body(self, raw: bytes, start: int, stop: int) -> None:
        """Chunk data ``raw[start:stop]`` that is not one whole line."""
        if self._line:
            nl = raw.find(b"\n", start, stop)
            if nl < 0:
                self._line += raw[start:stop]
                return
            line = self._line + raw[start:nl + 1]
            self._line = bytearray()
            added_names(bytes(line), 0, len(line), self.names)
            start = nl + 1
        end = raw.rfind(b"\n", start, stop) + 1
        if end > start:
            added_names(raw, start, end, self.names)
            start = end
        if start < stop:
            self._line += raw[start:stop]


async def watch_fanout(url: str, watchers: int, pods: int, pid: int | None = None,
                       rate: float | None = None) -> None:
    """``watchers`` concurrent watches on pods while ``pods`` are created by 16 clients as fast as
    the server takes them (or, with ``rate``, started at that many per second whatever the
    responses); every watcher must see every create, all in one order. Latency: from the create
    request's start to each watcher's receipt.

    The watchers are read by this one process (see WatchStream), so reading must cost less than
    serving; each read's events are found with bytes.find (added_names), which on lines of
    ~2.7 KB costs a fraction of a regex over them or of splitting them. Beside the figures: the
    CPU time per delivery of the server and of this process while pods are created and delivered.
    """
    ns = "fanout" if rate is None else f"fanout-{rate:g}"
    async with aiohttp.ClientSession(url) as s:
        await ensure_namespace(s, ns)
        async with s.get(f"/api/v1/namespaces/{ns}/pods?limit=1") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
    sent: dict[bytes, float] = {}
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (f"GET /api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv} HTTP/1.1\r\n"
               f"Host: {host}:{port}\r\nAccept: application/json\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    streams: list[WatchStream] = []
    for _ in range(watchers):
        _, stream = await loop.create_connection(lambda: WatchStream(lambda st: len(st.names) >= pods),
                                                 host, int(port))
        stream.transport.write(request)
        streams.append(stream)
    statuses = await asyncio.wait_for(asyncio.gather(*(st.head for st in streams)), 120)
    if any(st != 200 for st in statuses):
        raise RuntimeError(f"watch failed: {sorted(set(statuses))}")
    await asyncio.sleep(0.5)
    async with aiohttp.ClientSession(url) as s:
        create_lat: list[float] = []

        async def create(i: int) -> None:
            name = f"fan-{i}"
            sent[name.encode()] = t = time.perf_counter()
            async with s.post(f"/api/v1/namespaces/{ns}/pods", data=pod_body(name),
                              headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 201:
                    raise RuntimeError(f"create failed: {r.status}")
            create_lat.append((time.perf_counter() - t) * 1000)

        server_cpu = cpu_seconds(pid) if pid is not None else 0.0
        client_cpu = time.process_time()
        start = time.perf_counter()
        if rate is None:
            sem = asyncio.Semaphore(16)

            async def bounded(i: int) -> None:
                async with sem:
                    await create(i)

            await asyncio.gather(*(bounded(i) for i in range(pods)))
        else:
            creates = []
            for i in range(pods):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                creates.append(asyncio.create_task(create(i)))
            await asyncio.gather(*creates)
        await asyncio.wait([st.closed for st in streams], timeout=300)
        elapsed = time.perf_counter() - start
        server_cpu = cpu_seconds(pid) - server_cpu if pid is not None else 0.0
        client_cpu = time.process_time() - client_cpu
    for st in streams:
        st.transport.close()
    lat: list[float] = []
    for st in streams:
        names = st.names
        i = 0
        for now, upto in st.reads:
            lat.extend([(now - sent[n]) * 1000 for n in names[i:upto]])
            i = upto
    got = [st.names for st in streams]
    every = {f"fan-{i}".encode() for i in range(pods)}
    complete = sum(1 for names in got if len(names) == pods and set(names) == every)
    one_order = all(names == got[0] for names in got)
    deliveries = len(lat)
    cpu = (f"; CPU per delivery: server {server_cpu / max(deliveries, 1) * 1e6:.1f} us, "
           f"this client {client_cpu / max(deliveries, 1) * 1e6:.1f} us" if pid is not None else "")
    how = "16 creators" if rate is None else f"{rate:g} creates/s"
    print(f"  {watchers} watchers x {pods} pods ({how}): {complete}/{watchers} watchers got every event"
          f"{'' if one_order else ' (NOT all in one order)'}; {deliveries} deliveries in {elapsed:.1f} s; "
          f"create-to-delivery p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms (the creates themselves: "
          f"p50 {pct(create_lat, 50):.0f} ms, p99 {pct(create_lat, 99):.0f} ms)" + cpu, flush=True)


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
            # Beside it, creates at a fixed rate (a third of what 16 creators reach on a quiet
            # 2-core machine): the latency when the server is not saturated.
            await watch_fanout(fan.url, watchers, pods, fan.process.pid, rate=50)
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
