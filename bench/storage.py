"""Storage benchmark: writes/s through each driver at 1, 16 and 64 concurrent writers, plain aetcd
puts for comparison, and list/get speed over 100k keys.

Run: ``.venv/bin/python -m bench.storage [--seconds 3] [--list-keys 100000] [--only sqlite|etcd]``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

import aetcd

from apiserver.storage.etcd import EtcdBackend
from apiserver.storage.sqlite import SQLiteBackend
from tests.fixtures.etcd import running_etcd

VALUE = os.urandom(768).hex().encode()   # 1536 bytes, incompressible like a serialized object
LEVELS = (1, 16, 64)


async def rate(op: Callable[[str], Awaitable[object]], writers: int, seconds: float, tag: str) -> float:
    """Operations/s with ``writers`` tasks calling ``op(key)`` on fresh keys for ``seconds``."""
    counter = itertools.count()
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op(f"/registry/bench/{tag}/{writers}/{next(counter):08d}")
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(writers)))
    return done / (time.perf_counter() - start)


async def bench_puts(name: str, op: Callable[[str], Awaitable[object]], seconds: float) -> None:
    figures = []
    for writers in LEVELS:
        figures.append(f"{writers:>2} writers {await rate(op, writers, seconds, name):8.0f}/s")
    print(f"{name:<16} " + "   ".join(figures), flush=True)


async def bench_reads(name: str, backend, keys: int) -> None:
    prefix = f"/registry/bench-list/{name}/"
    batch = 2000
    for start in range(0, keys, batch):
        await asyncio.gather(*(backend.create(f"{prefix}{i:07d}", VALUE)
                               for i in range(start, min(keys, start + batch))))
    t = time.perf_counter()
    result = await backend.list(prefix)
    full = time.perf_counter() - t
    assert len(result.items) == keys
    t = time.perf_counter()
    pages, start_key = 0, ""
    while True:
        page = await backend.list(prefix, start_key=start_key, limit=500, revision=result.revision)
        pages += 1
        if not page.more:
            break
        start_key = page.items[-1].key + "\x00"
    paged = time.perf_counter() - t
    t = time.perf_counter()
    n = 2000
    for i in range(n):
        await backend.get(f"{prefix}{(i * 7919) % keys:07d}")
    get_us = (time.perf_counter() - t) / n * 1e6
    print(f"{name:<16} list {keys} keys: {full:.2f}s whole, {paged:.2f}s in {pages} pages of 500; "
          f"get {get_us:.0f}us each (sequential)", flush=True)


async def run_sqlite(seconds: float, list_keys: int) -> None:
    with tempfile.TemporaryDirectory(prefix="navarch-bench-") as d:
        backend = await SQLiteBackend.open(os.path.join(d, "bench.db"))
        try:
            await bench_puts("sqlite create", lambda k: backend.create(k, VALUE), seconds)
            if list_keys:
                await bench_reads("sqlite", backend, list_keys)
        finally:
            await backend.close()


async def run_etcd(seconds: float, list_keys: int) -> None:
    with tempfile.TemporaryDirectory(prefix="navarch-bench-etcd-") as d, running_etcd(d) as server:
        backend = await EtcdBackend.open([server.endpoint])
        raw = aetcd.Client(host="127.0.0.1", port=server.client_port)
        try:
            await bench_puts("etcd create", lambda k: backend.create(k, VALUE), seconds)
            await bench_puts("aetcd raw put", lambda k: raw.put(k.encode(), VALUE), seconds)
            if list_keys:
                await bench_reads("etcd", backend, list_keys)
        finally:
            await raw.close()
            await backend.close()


async def run(args: argparse.Namespace) -> None:
    print(f"value size {len(VALUE)} bytes, {args.seconds:g}s per figure", flush=True)
    if args.only in (None, "sqlite"):
        await run_sqlite(args.seconds, args.list_keys)
    if args.only in (None, "etcd"):
        await run_etcd(args.seconds, args.list_keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    parser.add_argument("--list-keys", type=int, default=100_000, help="keys for the read test (0: skip)")
    parser.add_argument("--only", choices=["sqlite", "etcd"])
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
