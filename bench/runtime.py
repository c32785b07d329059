"""Runtime benchmark: pod (sandbox + one container) start latency through the runc driver beside
the raw cost of the same work done by a shell script, and 50 pods started at once.

Run (root): ``.venv/bin/python -m bench.runtime [--pods 50]``. Prints figures; asserts nothing.

- driver, sequential: ``run_sandbox`` + ``create_container`` + ``start_container`` per pod (netns
  + CNI bridge/host-local/loopback, overlay rootfs, OCI spec, shim, runc create + start).
- raw, sequential: one ``sh`` script per pod doing ``ip netns add`` + CNI ADD (bridge, loopback)
  by the plugin binaries + ``runc run -d`` of a prepared bundle over a plain rootfs directory.
- driver, concurrent: all pods at once; time until every container runs, the daemon's RSS (this
  process: the driver runs in it) and the shims' RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from runtime.driver import ContainerSpec, ImageInfo, Resources, SandboxSpec, SecurityContext
from runtime.linux import RuncDriver, cgroups, syscalls
from runtime.linux import spec as ocispec
from runtime.linux.sandbox import Namespaces
from tests.fixtures.oci import build_busybox_rootfs

BRIDGE = "nvbench0"
CIDR = "10.251.0.0/16"
CNI_DIR = "/usr/lib/cni"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def rss_kib(pid: int | str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages (the interpreter, libraries) split among sharers."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sandbox_spec(root: Path, i: int) -> SandboxSpec:
    sid = uuid.uuid4().hex * 2
    return SandboxSpec(id=sid, name=f"bench-{i}", namespace="bench", uid=str(uuid.uuid4()), hostname=f"bench-{i}",
                       host_network=False, dns=None, port_mappings=[], cgroup_parent="",
                       state_dir=root / "sandboxes" / sid)


def container_spec(root: Path, sb: SandboxSpec, layer: Path) -> ContainerSpec:
    cid = uuid.uuid4().hex * 2
    return ContainerSpec(
        id=cid, sandbox_id=sb.id, name="sleep",
        image=ImageInfo(id="sha256:" + "0" * 64, config={"Env": ["PATH=/bin"], "Cmd": ["sleep", "100000"]},
                        layer_dirs=[layer]),
        command=[], args=[], working_dir="", envs=[], mounts=[], log_path=str(root / "logs" / f"{cid}.log"),
        tty=False, stdin=False, stdin_once=False, resources=Resources(), security=SecurityContext(),
        state_dir=root / "containers" / cid)


async def driver_pod(driver: RuncDriver, root: Path, layer: Path, i: int) -> tuple[float, SandboxSpec, ContainerSpec]:
    t0 = time.perf_counter()
    sb = sandbox_spec(root, i)
    net = await driver.run_sandbox(sb)
    c = container_spec(root, sb, layer)
    await driver.create_container(c, sb, net)
    await driver.start_container(c)
    return time.perf_counter() - t0, sb, c


async def teardown(driver: RuncDriver, pods: list[tuple[SandboxSpec, ContainerSpec]]) -> None:
    async def one(sb: SandboxSpec, c: ContainerSpec) -> None:
        await driver.stop_container(c, 0)
        await driver.remove_container(c)
        await driver.stop_sandbox(sb)
        await driver.remove_sandbox(sb)
    await asyncio.gather(*(one(sb, c) for sb, c in pods))


RAW_SCRIPT = r"""
set -e
ip netns add "$NS"
export CNI_NETNS=/var/run/netns/$NS CNI_CONTAINERID=$ID CNI_PATH={cni}
CNI_COMMAND=ADD CNI_IFNAME=lo {cni}/loopback < "$B/lo.json" > /dev/null
CNI_COMMAND=ADD CNI_IFNAME=eth0 {cni}/bridge < "$B/net.json" > "$B/result.json"
runc --root "$RUNC_ROOT" run -d --bundle "$B" "$ID" < /dev/null > /dev/null 2>&1
"""

RAW_TEARDOWN = r"""
runc --root "$RUNC_ROOT" delete -f "$ID" 2>/dev/null
CNI_COMMAND=DEL CNI_NETNS=/var/run/netns/$NS CNI_CONTAINERID=$ID CNI_PATH={cni} CNI_IFNAME=eth0 \
  {cni}/bridge < "$B/net.json" > /dev/null
ip netns del "$NS"
"""


def raw_bundle(base: Path, rootfs: Path, i: int) -> tuple[Path, dict]:
    """A bundle and environment for one raw pod (prepared outside the timed part)."""
    ns, cid = f"nvbench-{os.getpid()}-{i}", f"raw-{uuid.uuid4().hex[:12]}"
    b = base / cid
    b.mkdir(parents=True)
    net = {"cniVersion": "1.0.0", "name": "navarch", "type": "bridge", "bridge": BRIDGE, "isGateway": True,
           "ipMasq": False, "ipam": {"type": "host-local", "ranges": [[{"subnet": CIDR}]],
                                     "dataDir": str(base / "ipam")}}
    (b / "net.json").write_bytes(orjson.dumps(net))
    (b / "lo.json").write_bytes(orjson.dumps({"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}))
    # The same OCI config the driver writes (mounts, capabilities, masks, namespaces), minus the
    # overlay: the raw script runs over the plain layer directory.
    spec = container_spec(base, sandbox_spec(base, i), rootfs)
    for name, data in (("hostname", ns.encode()), ("resolv.conf", b""), ("hosts", b"127.0.0.1 localhost\n")):
        (b / name).write_bytes(data)
    config = ocispec.build(spec, rootfs=str(rootfs), namespaces=Namespaces(f"/var/run/netns/{ns}", "", ""),
                           pod_dir=b, hostname=ns, cgroups_path=f"/navarch-bench/{cid}", user=(0, 0, []))
    config["linux"]["namespaces"].append({"type": "uts"})
    config["hostname"] = ns
    (b / "config.json").write_bytes(orjson.dumps(config))
    env = dict(os.environ, NS=ns, ID=cid, B=str(b), RUNC_ROOT=str(base / "runc"))
    return b, env


class Raw:
    """Raw pods by shell script, one at a time; torn down together at the end."""

    def __init__(self, base: Path, rootfs: Path):
        self.base, self.rootfs = base, rootfs
        self.envs: list[dict] = []

    def prepare(self, i: int) -> dict:
        env = raw_bundle(self.base, self.rootfs, i)[1]
        self.envs.append(env)
        return env

    @staticmethod
    def start(env: dict) -> float:
        t0 = time.perf_counter()
        subprocess.run(["sh", "-c", RAW_SCRIPT.format(cni=CNI_DIR)], env=env, check=True)
        return time.perf_counter() - t0

    def teardown(self) -> None:
        for env in self.envs:
            subprocess.run(["sh", "-c", RAW_TEARDOWN.format(cni=CNI_DIR)], env=env, capture_output=True)


async def run(pods: int) -> None:
    base = Path(tempfile.mkdtemp(prefix="navarch-bench-"))
    try:
        layer = build_busybox_rootfs(base / "layer")
        root = base / "root"

        driver = RuncDriver(root, pod_cidr=CIDR, bridge=BRIDGE)
        await driver.start([], [])
        warm = await driver_pod(driver, root, layer, -1)       # creates the bridge, warms caches
        await teardown(driver, [warm[1:]])

        # Driver and raw pods alternate so that both see the same load on a shared machine.
        seq, raw, made = [], [], []
        rawpods = Raw(base / "raw", layer)
        try:
            for i in range(pods):
                dt, sb, c = await driver_pod(driver, root, layer, i)
                seq.append(dt)
                made.append((sb, c))
                env = await asyncio.to_thread(rawpods.prepare, i)
                raw.append(await asyncio.to_thread(Raw.start, env))
        finally:
            await asyncio.to_thread(rawpods.teardown)
            await teardown(driver, made)

        print(f"pod start latency over {pods} pods, sequential (seconds)")
        print(f"  {'':10} {'p50':>8} {'p99':>8} {'mean':>8}")
        print(f"  {'driver':10} {pct(seq, 50):8.3f} {pct(seq, 99):8.3f} {statistics.mean(seq):8.3f}")
        print(f"  {'raw sh':10} {pct(raw, 50):8.3f} {pct(raw, 99):8.3f} {statistics.mean(raw):8.3f}")
        print(f"  driver/raw p50 ratio: {pct(seq, 50) / pct(raw, 50):.2f}  (target <= 1.5)")

        rss_before = rss_kib()
        t0 = time.perf_counter()
        results = await asyncio.gather(*(driver_pod(driver, root, layer, i) for i in range(pods)))
        all_running = time.perf_counter() - t0
        states = await asyncio.gather(*(driver.container_state(c) for _, _, c in results))
        running = sum(1 for s in states if s.state == "RUNNING")
        shims = [int((c.state_dir / "shim.pid").read_text()) for _, _, c in results]
        shim_rss = sum(rss_kib(p) for p in shims)
        shim_pss = sum(pss_kib(p) for p in shims)
        print(f"{pods} pods concurrently: all running after {all_running:.2f}s ({running}/{pods} running); "
              f"per-pod p50 {pct([r[0] for r in results], 50):.2f}s p99 {pct([r[0] for r in results], 99):.2f}s")
        print(f"  daemon RSS {rss_kib() / 1024:.1f} MiB (before: {rss_before / 1024:.1f} MiB); "
              f"shims RSS {shim_rss / 1024:.1f} MiB total ({shim_rss / 1024 / max(1, len(shims)):.1f} MiB each), "
              f"PSS {shim_pss / 1024:.1f} MiB total")
        t0 = time.perf_counter()
        await teardown(driver, [r[1:] for r in results])
        print(f"  teardown of {pods} pods concurrently: {time.perf_counter() - t0:.2f}s")
        await driver.close()
    finally:
        await asyncio.to_thread(cleanup, base)


def cleanup(base: Path) -> None:
    for point in syscalls.mounts_under(str(base)):
        syscalls.umount(point)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
    for d in cgroups.dirs("/navarch-bench"):     # the raw pods' cgroup parent
        try:
            os.rmdir(d)
        except OSError:
            pass


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench.runtime")
    p.add_argument("--pods", type=int, default=50)
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.runtime needs root (runc, netns, CNI)")
        return 1
    asyncio.run(run(args.pods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
