"""The reader side of the watch fan-out benchmark (``bench.api.watch_fanout``): many watches on
pods, read in a process of their own so that reading them does not slow the creates being timed.

    python -m bench._watchers URL NAMESPACE RESOURCE_VERSION WATCHERS PODS OUTPUT

It owns the reading: the watch protocol (``WatchStream``) and the search of event lines
(``added_names``), opening ``WATCHERS`` watches of the namespace's pods from
``RESOURCE_VERSION``, and recording when each watcher received each pod. Once every watch has
answered 200 it prints ``ready``; it then reads until every watcher has ``PODS`` ADDED events (or
300 s pass) and writes to ``OUTPUT`` the arrival times (``time.perf_counter()``, CLOCK_MONOTONIC
on Linux, so comparable with the creator's clock) as a native array('d') of WATCHERS x PODS
doubles, watcher-major: slot ``w * PODS + i`` is when watcher ``w`` received pod ``fan-<i>``, NaN
if it never did. Last it prints one JSON line: ``complete`` (watchers that got every pod),
``one_order`` (all got them in the same order), ``cpu`` (its CPU seconds from ``ready`` to the
end of reading), ``deliveries`` (ADDED events received in all) and ``end`` (perf_counter when
reading ended).

The loop is uvloop's: with the protocol called straight from it, a read costs less than on
asyncio's own loop (at 50 creates/s, ~14 us of CPU per delivery against ~19 us; when the reads
batch several events, ~4.1 us against ~4.4 us).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from array import array
from collections.abc import Callable

import orjson
import uvloop


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


def arrivals(streams: list[WatchStream], pods: int) -> array:
    """Watcher-major arrival times: slot ``w * pods + i`` is when ``streams[w]`` got ``fan-<i>``
    (its first such event), NaN if it did not."""
    out = array("d", [math.nan]) * (len(streams) * pods)
    for w, st in enumerate(streams):
        base = w * pods
        names = st.names
        i = 0
        for now, upto in st.reads:
            for name in names[i:upto]:
                if name.startswith(b"fan-") and name[4:].isdigit():
                    k = int(name[4:])
                    if k < pods and math.isnan(out[base + k]):
                        out[base + k] = now
            i = upto
    return out


async def read_watches(url: str, ns: str, rv: str, watchers: int, pods: int,
                       timeout: float = 300.0) -> tuple[array, dict] | None:
    """Open the watches, say ``ready``, read; the arrival times and the summary (None if a watch
    was refused)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    request = (f"GET /api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv} HTTP/1.1\r\n"
               f"Host: {host}:{port}\r\nAccept: application/json\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    streams: list[WatchStream] = []
    try:
        for _ in range(watchers):
            _, stream = await loop.create_connection(lambda: WatchStream(lambda st: len(st.names) >= pods),
                                                     host, int(port))
            stream.transport.write(request)
            streams.append(stream)
        statuses = await asyncio.wait_for(asyncio.gather(*(st.head for st in streams)), 120)
        if any(status != 200 for status in statuses):
            print(f"bench._watchers: watch failed: {sorted(set(statuses))}", file=sys.stderr, flush=True)
            return None
        print("ready", flush=True)
        cpu = time.process_time()
        await asyncio.wait([st.closed for st in streams], timeout=timeout)
        end = time.perf_counter()
        cpu = time.process_time() - cpu
    finally:
        for st in streams:
            st.transport.close()
    got = [st.names for st in streams]
    every = {f"fan-{i}".encode() for i in range(pods)}
    return arrivals(streams, pods), {
        "complete": sum(1 for names in got if len(names) == pods and set(names) == every),
        "one_order": all(names == got[0] for names in got),
        "cpu": cpu,
        "deliveries": sum(len(names) for names in got),
        "end": end,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="bench._watchers")
    p.add_argument("url")
    p.add_argument("namespace")
    p.add_argument("resource_version")
    p.add_argument("watchers", type=int)
    p.add_argument("pods", type=int)
    p.add_argument("output")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to read for at most")
    a = p.parse_args(argv)
    result = uvloop.run(read_watches(a.url, a.namespace, a.resource_version, a.watchers, a.pods, a.timeout))
    if result is None:
        return 1
    times, summary = result
    with open(a.output, "wb") as f:
        times.tofile(f)
    print(orjson.dumps(summary).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
