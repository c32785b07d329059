"""Benchmark: a Deployment scaled from 0 to many replicas on many simulated nodes, then rolled.

    python -m bench.deployment [--replicas 10000] [--nodes 1000] [--sim auto|navarch|builtin]
                               [--server URL --kubeconfig FILE]

Starts (unless ``--server``) ``navarch apiserver`` on a temporary SQLite store, then
``navarch scheduler``, ``navarch controller-manager --controllers replicaset,deployment`` and the
nodes: ``navarch simulate-nodes --count N`` when the simulator is installed (``--sim auto``), or
a built-in stand-in in this process that registers N Ready nodes and reports every bound pod
Running and Ready at once (``--sim builtin``). Every process it starts it stops by PID.

With ``--create-only`` no nodes and no scheduler run: only the pod creation is measured (the
ReplicaSet controller and the API server alone).

Figures printed:

* scale-up: seconds from ``replicas: N`` to N pods created (the ReplicaSet's status.replicas)
  and the creation rate, then to N available (Deployment status.availableReplicas);
* rolling update: seconds from the template change to the rollout complete (all N updated and
  available, nothing old left), with the 25%/25% defaults;
* controller-manager: CPU seconds used and resident memory (now and peak) after each phase,
  and its work queue figures from /metrics;
* CPU seconds each process (API server, scheduler, controller-manager, simulated nodes) used in
  each phase, and per pod created or replaced.

``--profile DIR`` samples the controller-manager, the API server and the simulator with py-spy
(``record -r 200 -f raw``) through the scale-up and writes ``DIR/<process>.txt`` plus a summary
of the heaviest functions (own time and with callees) per process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from api import errors  # noqa: E402
from client.events import rfc3339  # noqa: E402
from client.informer import Informer  # noqa: E402
from client.rest import Client  # noqa: E402
from tests.fixtures.apiserver import ApiServer, free_port  # noqa: E402

NS = "bench-deploy"
DEP = "deployments.apps"
RS = "replicasets.apps"


# --- processes ------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Proc:
    """A component run as ``python -m navarch <args>``, logging to a file, stopped by PID."""

    def __init__(self, name: str, args: list[str], log_dir: Path):
        self.name = name
        self.log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.p = subprocess.Popen([sys.executable, "-m", "navarch", *args], stdout=self.log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO, env=env)

    @property
    def pid(self) -> int:
        return self.p.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.p.pid)

    def memory(self) -> tuple[int, int]:
        """(resident, peak resident) bytes."""
        rss = hwm = 0
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
        return rss, hwm

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def simulator_installed() -> bool:
    try:
        import kubelet.sim.app  # noqa: F401
    except ImportError:
        return False
    return True


# --- the built-in node stand-in -------------------------------------------------------------

class BuiltinNodes:
    """N Ready nodes, and bound pods reported Running and Ready (no containers, no delay)."""

    def __init__(self, client: Client, count: int, concurrency: int = 32):
        self.client = client
        self.count = count
        self.sem = asyncio.Semaphore(concurrency)
        self.informer = Informer(client, "pods", NS)
        self.pending: set[str] = set()

    async def start(self) -> None:
        async def register(i: int) -> None:
            alloc = {"cpu": "32", "memory": "256Gi", "pods": "110"}
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": f"sim-{i}", "labels": {"kubernetes.io/hostname": f"sim-{i}"}},
                    "status": {"capacity": alloc, "allocatable": alloc,
                               "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
            async with self.sem:
                with contextlib.suppress(errors.AlreadyExists):
                    await self.client.create("nodes", node)

        await asyncio.gather(*(register(i) for i in range(self.count)))
        self.informer.add_event_handler(on_add=self._see, on_update=lambda o, n: self._see(n))
        self.informer.start()
        await self.informer.wait_for_cache_sync()

    async def stop(self) -> None:
        await self.informer.stop()

    def _see(self, pod: dict) -> None:
        md = pod["metadata"]
        key = md["name"]
        if key in self.pending:
            return
        if md.get("deletionTimestamp"):
            self.pending.add(key)
            asyncio.create_task(self._finish(pod))
        elif pod["spec"].get("nodeName") and pod["status"].get("phase") == "Pending":
            self.pending.add(key)
            asyncio.create_task(self._run(pod))

    async def _finish(self, pod: dict) -> None:
        md = pod["metadata"]
        try:
            async with self.sem:
                await self.client.delete("pods", md["name"], NS, grace_period_seconds=0)
        except errors.NotFound:
            pass
        finally:
            self.pending.discard(md["name"])

    async def _run(self, pod: dict) -> None:
        md = pod["metadata"]
        now = rfc3339(time.time())
        conds = [{"type": t, "status": "True", "lastTransitionTime": now}
                 for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        status = {"phase": "Running", "startTime": now, "conditions": conds,
                  "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": True,
                                         "restartCount": 0, "started": True,
                                         "state": {"running": {"startedAt": now}}}
                                        for c in pod["spec"]["containers"]]}
        try:
            async with self.sem:
                await self.client.patch("pods", md["name"], {"status": status}, NS, subresource="status")
        except (errors.NotFound, errors.Conflict):
            pass
        finally:
            self.pending.discard(md["name"])


# --- measuring ------------------------------------------------------------------------------

def deployment(replicas: int, image: str) -> dict:
    labels = {"app": "bench"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench", "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "resources": {"requests": {"cpu": "10m"}}}],
                                           "terminationGracePeriodSeconds": 0}}}}


RUNNING: list[Proc] = []


class CpuMeter:
    """CPU seconds each watched process used between ``mark()`` and ``report()``."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self._at: dict[str, float] = {}

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid

    def mark(self) -> None:
        self._at = {name: self._cpu(pid) for name, pid in self.pids.items()}

    @staticmethod
    def _cpu(pid: int) -> float:
        try:
            return cpu_seconds(pid)
        except OSError:
            return 0.0

    def report(self, phase: str, pods: int) -> None:
        parts = []
        for name, pid in self.pids.items():
            used = self._cpu(pid) - self._at.get(name, 0.0)
            parts.append(f"{name} {used:.1f} s ({used / max(pods, 1) * 1000:.2f} ms/pod)")
        print(f"cpu during {phase}: " + ", ".join(parts), flush=True)


async def api_requests(client: Client) -> dict[str, float]:
    """The API server's request counts (apiserver_request_total) by verb, resource and subresource."""
    import re

    text = (await client.request("GET", "/metrics", raw=True)).decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if labels.get("verb") == "WATCH":
            continue
        key = f"{labels.get('verb')} {labels.get('resource')}" + (
            f"/{labels['subresource']}" if labels.get("subresource") else "")
        out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def report_requests(before: dict[str, float], after: dict[str, float], phase: str, pods: int) -> None:
    diff = {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) >= 1}
    parts = [f"{k} {v:.0f}" for k, v in sorted(diff.items(), key=lambda kv: -kv[1])]
    print(f"API requests during {phase}: {sum(diff.values()) / max(pods, 1):.2f} per pod: "
          + ", ".join(parts), flush=True)


class Profiler:
    """py-spy sampling some processes until ``stop()``; then a summary of each profile."""

    def __init__(self, out_dir: Path, pids: dict[str, int]):
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        spy = Path(sys.executable).with_name("py-spy")
        self.procs = {name: subprocess.Popen([str(spy), "record", "-p", str(pid), "-r", "200", "-f", "raw",
                                              "-o", str(out_dir / f"{name}.txt")],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for name, pid in pids.items()}

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for name in self.procs:
            path = self.out_dir / f"{name}.txt"
            if path.exists():
                summary = summarize_profile(path)
                (self.out_dir / f"{name}.summary.txt").write_text(summary)
                print(f"profile of {name}: {path}\n{summary}", flush=True)


def summarize_profile(path: Path, top: int = 25) -> str:
    """The functions with the most samples in a py-spy raw profile: own samples and with callees."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            total[f] = total.get(f, 0) + n
    def table(d: dict[str, int]) -> list[str]:
        return [f"  {c * 100 / max(samples, 1):5.1f}%  {f}" for f, c in sorted(d.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join([f"{samples} samples; own time:", *table(own), "with callees:", *table(total)])


async def wait_for(check, what: str, timeout: float, every: float = 0.5) -> float:
    t0 = time.perf_counter()
    while True:
        if await check():
            return time.perf_counter() - t0
        dead = [p.name for p in RUNNING if not p.alive()]
        if dead:
            raise TimeoutError(f"{what}: {', '.join(dead)} exited")
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        await asyncio.sleep(every)


async def dep_status(client: Client) -> tuple[dict, dict]:
    d = await client.get(DEP, "bench", NS)
    return d, d.get("status") or {}


async def rolled_out(client: Client, n: int) -> bool:
    d, st = await dep_status(client)
    def g(f: str) -> int:
        return int(st.get(f) or 0)

    return (g("observedGeneration") >= int(d["metadata"].get("generation") or 0) and g("updatedReplicas") == n
            and g("replicas") == n and g("availableReplicas") == n)


def report_cm(cm: Proc, phase: str) -> None:
    rss, hwm = cm.memory()
    print(f"controller-manager after {phase}: cpu {cm.cpu_seconds():.1f} s, rss {rss / 2**20:.0f} MiB "
          f"(peak {hwm / 2**20:.0f} MiB)", flush=True)


async def metrics(port: int) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        return await r.text()


def queue_figures(text: str) -> list[str]:
    keep = ("workqueue_adds_total", "workqueue_retries_total", "workqueue_work_duration_seconds_sum",
            "workqueue_work_duration_seconds_count")
    return [ln for ln in text.splitlines() if ln.startswith(keep) and
            ('name="replicaset"' in ln or 'name="deployment"' in ln)]


async def run(args: argparse.Namespace, url: str, kubeconfig: str, log_dir: Path,
              server_pid: int | None = None) -> None:
    procs = RUNNING
    meter = CpuMeter()
    if server_pid is not None:
        meter.watch("apiserver", server_pid)
    nodes: BuiltinNodes | None = None
    cm_port = free_port()
    async with Client(url, timeout=120) as client:
        try:
            sim = args.sim
            if sim == "auto":
                sim = "navarch" if simulator_installed() else "builtin"
            t0 = time.perf_counter()
            if args.create_only:
                pass
            elif sim == "navarch":
                # A /24 of pod addresses per node: 1000 nodes need more than a /16.
                procs.append(Proc("simulate-nodes", ["simulate-nodes", "--kubeconfig", kubeconfig, "--count",
                                                     str(args.nodes), "--pod-cidr", "10.64.0.0/10",
                                                     "--max-inflight", "64"], log_dir))
            else:
                nodes = BuiltinNodes(client, args.nodes)
                await nodes.start()

            async def nodes_ready() -> bool:
                items = (await client.list_all("nodes"))["items"]
                return sum(1 for n in items if any(c.get("type") == "Ready" and c.get("status") == "True"
                                                   for c in (n.get("status") or {}).get("conditions") or [])
                           ) >= args.nodes

            if not args.create_only:
                took = await wait_for(nodes_ready, "nodes", 600, every=1.0)
                print(f"nodes: {args.nodes} Ready in {time.perf_counter() - t0:.1f} s ({sim} simulator; "
                      f"last check {took:.1f} s)", flush=True)
                procs.append(Proc("scheduler", ["scheduler", "--kubeconfig", kubeconfig, "--port", "-1"],
                                  log_dir))
            cm = Proc("controller-manager", ["controller-manager", "--kubeconfig", kubeconfig,
                                             "--controllers", "replicaset,deployment",
                                             "--port", str(cm_port)], log_dir)
            procs.append(cm)
            for p in procs:
                meter.watch(p.name, p.pid)
            with contextlib.suppress(errors.AlreadyExists):
                await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NS}})
            await client.create(DEP, deployment(0, "registry.local/app:1"), NS)
            await wait_for(lambda: rolled_out(client, 0), "empty deployment observed", 120)
            report_cm(cm, "start")

            n = args.replicas
            profiler = Profiler(Path(args.profile), dict(meter.pids)) if args.profile else None
            meter.mark()
            requests_before = await api_requests(client)
            t0 = time.perf_counter()
            await client.set_scale(DEP, "bench", n, NS)

            async def created() -> bool:
                rss = (await client.list(RS, NS))["items"]
                return sum(int((r.get("status") or {}).get("replicas") or 0) for r in rss) >= n

            t_created = await wait_for(created, "pods created", args.timeout)
            print(f"scale-up: {n} pods created in {t_created:.1f} s ({n / t_created:.0f} pods/s by the "
                  f"ReplicaSet controller)", flush=True)
            meter.report("pod creation", n)
            if args.create_only:
                report_requests(requests_before, await api_requests(client), "pod creation", n)
                report_cm(cm, "pod creation")
                if profiler is not None:
                    profiler.stop()
                return

            async def available() -> bool:
                _, st = await dep_status(client)
                return int(st.get("availableReplicas") or 0) >= n

            t_avail = await wait_for(available, "pods available", args.timeout)
            print(f"scale-up: {n} available {time.perf_counter() - t0:.1f} s after the scale "
                  f"({t_avail:.1f} s after the last was created)", flush=True)
            report_cm(cm, "scale-up")
            meter.report("scale-up", n)
            report_requests(requests_before, await api_requests(client), "scale-up", n)
            if profiler is not None:
                profiler.stop()

            meter.mark()
            requests_before = await api_requests(client)
            t0 = time.perf_counter()
            await client.patch(DEP, "bench", {"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "registry.local/app:2"}]}}}}, NS)
            await wait_for(lambda: rolled_out(client, n), "rolling update", args.timeout, every=1.0)
            took = time.perf_counter() - t0
            print(f"rolling update: {n} pods replaced in {took:.1f} s ({n / took:.0f} pods/s)", flush=True)
            report_cm(cm, "rolling update")
            meter.report("rolling update", n)
            report_requests(requests_before, await api_requests(client), "rolling update", n)
            with contextlib.suppress(Exception):
                for line in queue_figures(await metrics(cm_port)):
                    print(f"  {line}")
        finally:
            if nodes is not None:
                await nodes.stop()
            for p in reversed(procs):
                p.stop()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.deployment")
    ap.add_argument("--replicas", type=int, default=10_000)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--sim", choices=("auto", "navarch", "builtin"), default="auto")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed for each phase")
    ap.add_argument("--server", help="use this API server instead of starting one")
    ap.add_argument("--kubeconfig", help="kubeconfig of --server")
    ap.add_argument("--create-only", action="store_true",
                    help="no nodes, no scheduler: measure only the ReplicaSet controller creating the pods")
    ap.add_argument("--profile", metavar="DIR", help="py-spy the processes through the scale-up into DIR")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        log_dir = Path(tmp)
        server = None
        if args.server:
            url, kubeconfig = args.server, args.kubeconfig
            if not kubeconfig:
                ap.error("--server needs --kubeconfig (for the components it starts)")
        else:
            server = ApiServer(log_dir / "apiserver").start()
            url, kubeconfig = server.url, str(server.kubeconfig)
        try:
            asyncio.run(run(args, url, kubeconfig, log_dir,
                            server.process.pid if server is not None and server.process else None))
        except TimeoutError as e:
            print(f"failed: {e}; logs were in {log_dir}")
            for name in ("controller-manager", "scheduler", "simulate-nodes"):
                path = log_dir / f"{name}.log"
                if path.exists():
                    print(f"--- {name} (tail)\n" + "\n".join(path.read_text(errors="replace").splitlines()[-20:]))
            return 1
        finally:
            if server is not None:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
