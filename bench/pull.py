"""Image pull benchmark: throughput of pulling a ~100 MB image from a local docker-registry into the
image store (download, verify, unpack), beside ``skopeo copy`` of the same image to a local dir
(download and verify only).

Run: ``.venv/bin/python -m bench.pull [--mb 100] [--runs 3]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import structlog

from runtime.images import ImageStore
from tests.fixtures import oci


def build_image(work: Path, mb: int) -> tuple[Path, oci.ImageParts]:
    """busybox plus one gzip layer holding ``mb`` MB of random (incompressible) data."""
    src = work / "random"
    (src / "data").mkdir(parents=True)
    with (src / "data" / "random.bin").open("wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    extra = oci.layer_tar_from_dir(src, work / "random.tar")
    shutil.rmtree(src)
    layout = work / "layout"
    parts = oci.write_busybox_layout(layout, work, extra_layers=[extra])
    extra.unlink()
    return layout, parts


async def pull_once(ref: str, root: Path) -> tuple[float, float]:
    """(seconds for the pull, seconds for pulling it again once present)."""
    store = ImageStore(root)
    try:
        start = time.perf_counter()
        await store.pull(ref)
        first = time.perf_counter() - start
        start = time.perf_counter()
        await store.pull(ref)
        return first, time.perf_counter() - start
    finally:
        await store.close()


def skopeo_once(ref: str, dest: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}"],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the random layer in MB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        work = Path(tmp)
        registry, proc = oci.start_registry(work / "registry")
        try:
            print(f"building busybox + {args.mb} MB random layer ...", flush=True)
            layout, parts = build_image(work / "image", args.mb)
            ref = oci.push_layout(layout, "latest", registry.address, "big")
            total = parts.config.size + sum(b.size for b in parts.layers)
            print(f"image {ref}: {total / 1e6:.1f} MB in {len(parts.layers)} layers (gzip)", flush=True)
            ours, theirs, again = [], [], []
            for i in range(args.runs):
                root = work / f"store-{i}"
                first, second = asyncio.run(pull_once(ref, root))
                ours.append(first)
                again.append(second)
                shutil.rmtree(root)
                dest = work / f"skopeo-{i}"
                theirs.append(skopeo_once(ref, dest))
                shutil.rmtree(dest)
            for name, times in (("navarch pull (download+verify+unpack)", ours),
                                ("skopeo copy to dir (download+verify)", theirs)):
                med = statistics.median(times)
                print(f"{name:40s} median {med:6.2f}s  {total / 1e6 / med:7.1f} MB/s  "
                      f"(runs: {', '.join(f'{t:.2f}s' for t in times)})", flush=True)
            print(f"ratio navarch/skopeo time: {statistics.median(ours) / statistics.median(theirs):.2f}x")
            print(f"pull of the image once present (HEAD only): median {statistics.median(again) * 1000:.1f} ms")
        finally:
            oci.stop_process(proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
